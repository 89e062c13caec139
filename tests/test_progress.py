"""verbose=1 shows a progress bar on stderr in every call that can run for minutes, and
changes no result."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from skrob import (
    GaussianNoise,
    IntrinsicRobustnessEstimator,
    decision_based_distortion,
    diagnose,
    label_flip_rate,
    rpr_steps,
    sample_robustness,
)

X, Y = load_digits(return_X_y=True)
X = X[:300] / 16.0
Y = Y[:300]
MODEL = LogisticRegression(max_iter=500).fit(X, Y)


def _quiet_and_loud(capsys, func):
    quiet = func(0)
    assert capsys.readouterr().err == ""
    loud = func(1)
    return quiet, loud, capsys.readouterr().err


@pytest.mark.parametrize(
    "name, func, label",
    [
        (
            "rpr_steps",
            lambda v: rpr_steps(
                MODEL,
                X,
                Y,
                perturbation=GaussianNoise(0.3),
                max_steps=20,
                random_state=0,
                verbose=v,
            ),
            "RPR",
        ),
        (
            "label_flip_rate",
            lambda v: label_flip_rate(
                MODEL,
                X[:50],
                perturbation=GaussianNoise(0.3),
                n_samples=50,
                random_state=0,
                verbose=v,
            ),
            "label flips",
        ),
        (
            "decision_based_distortion",
            lambda v: decision_based_distortion(
                MODEL, X[:20], Y[:20], max_queries=200, clip=(0, 1), random_state=0, verbose=v
            ),
            "decision-based",
        ),
        ("sample_robustness", lambda v: sample_robustness(X, Y, verbose=v), "nearest other"),
        ("diagnose", lambda v: diagnose(X, Y, verbose=v).to_numpy(), "nearest of each class"),
        (
            "IntrinsicRobustnessEstimator",
            lambda v: (
                IntrinsicRobustnessEstimator(1.0, alpha=0.1, gamma=0.2, random_state=0, verbose=v)
                .fit(X + 1e-3 * v, np.linspace(0, 1, 300))  # a new hash: no cached lists
                .radii_
            ),
            "regions",
        ),
    ],
)
def test_progress_bar(capsys, name, func, label):
    quiet, loud, err = _quiet_and_loud(capsys, func)
    assert label in err, f"{name}: no '{label}' bar in {err[-300:]!r}"
    if name != "IntrinsicRobustnessEstimator":  # its data were shifted to skip the cache
        np.testing.assert_array_equal(quiet, loud)


def test_torch_progress_bars(capsys):
    torch = pytest.importorskip("torch")
    from skrob.torch import laplacian, minimal_distortion

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.Tanh(), torch.nn.Linear(16, 10))
    Xt = torch.as_tensor(X[:40], dtype=torch.float32)
    y = net(Xt).argmax(1)
    quiet, loud, err = _quiet_and_loud(capsys, lambda v: laplacian(net, Xt, verbose=v))
    assert "Laplacian" in err
    np.testing.assert_array_equal(quiet, loud)
    quiet, loud, err = _quiet_and_loud(
        capsys, lambda v: minimal_distortion(net, Xt, y, method="deepfool", verbose=v)
    )
    assert "minimal distortion" in err
    np.testing.assert_array_equal(quiet, loud)
