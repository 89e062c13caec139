"""The inverted-list backend (algorithm="approximate", Euclidean): an upper bound on the
exact reach, exact when every list is probed, high recall at the default nprobe."""

import importlib

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skrob import SampleRobustnessTransformer, sample_robustness
from skrob._search.ivf import ivf_nearest_other_label
from skrob._search.neighbors import nearest_other_label
from skrob._validation import encode_classes
from tests.conftest import make_tricky_data

# the module (the package's attribute of this name is the function)
sr = importlib.import_module("skrob.sample_robustness")


def _clustered(n, d, seed):
    """Clustered data of low intrinsic dimension with overlapping classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n)
    centers = rng.normal(size=(5, 8)) * 1.2
    Z = centers[y] + rng.normal(size=(n, 8))
    X = Z @ rng.normal(size=(8, d)) + 0.3 * rng.normal(size=(n, d))
    return X, y


def _check_bound(X, codes, reach, partner, exact):
    """Every reach is the float64 distance to a differently labelled partner, >= exact."""
    assert np.all(codes[partner] != codes)
    diff = X - X[partner]
    m = np.abs(diff).max(axis=1)
    direct = m * np.linalg.norm(diff / np.where(m > 0, m, 1.0)[:, None], axis=1)
    np.testing.assert_allclose(reach, direct, rtol=1e-12, atol=0)
    assert np.all(reach >= exact * (1 - 1e-12))


@pytest.mark.parametrize("scale", [1.0, 1e-300, 1e300])
def test_probing_every_list_is_exact(scale, global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    X, y = make_tricky_data(rng, n=600)
    X = X * scale
    _, codes = encode_classes(y)
    exact, _ = nearest_other_label(X, codes)
    # lists of 16 samples: ~13 per class, 38 lists in all; nprobe=64 probes all of them
    reach, partner = ivf_nearest_other_label(
        X, codes, nprobe=64, list_size=16, random_state=global_random_seed
    )
    np.testing.assert_array_equal(reach, exact)
    _check_bound(X, codes, reach, partner, exact)


def test_few_probes_give_an_upper_bound_and_high_recall(global_random_seed):
    X, y = _clustered(6000, 30, global_random_seed)
    _, codes = encode_classes(y)
    exact, _ = nearest_other_label(X, codes)
    reach, partner = ivf_nearest_other_label(X, codes, nprobe=1, random_state=global_random_seed)
    _check_bound(X, codes, reach, partner, exact)
    assert np.mean(reach == exact) < 1.0  # one list is not enough here: a real test
    reach, partner = ivf_nearest_other_label(X, codes, random_state=global_random_seed)
    _check_bound(X, codes, reach, partner, exact)
    assert np.mean(reach == exact) >= 0.99


def test_public_approximate_is_the_inverted_lists_for_euclidean():
    X, y = load_digits(return_X_y=True)
    exact = sample_robustness(X, y, algorithm="exact")
    approx = sample_robustness(X, y, algorithm="approximate", random_state=0)
    # digits: ~2 lists per class, all probed at nprobe=32
    np.testing.assert_array_equal(approx, exact)
    srt = SampleRobustnessTransformer(algorithm="approximate", nprobe=2, random_state=0)
    R = srt.fit(X, y).robustness_
    assert np.all(R >= exact - 1e-15)  # a reach at least the exact one
    np.testing.assert_array_equal(
        R, sample_robustness(X, y, algorithm="approximate", nprobe=2, random_state=0)
    )


def test_auto_takes_the_inverted_lists_from_the_threshold(monkeypatch):
    X, y = _clustered(3000, 20, 0)
    monkeypatch.setattr(sr, "AUTO_APPROXIMATE_MIN_SAMPLES", 3000)
    auto = sample_robustness(X, y, nprobe=1, random_state=0)
    np.testing.assert_array_equal(
        auto, sample_robustness(X, y, algorithm="approximate", nprobe=1, random_state=0)
    )
    assert not np.array_equal(auto, sample_robustness(X, y, algorithm="exact"))
    # regression, another metric and sparse X stay exact
    monkeypatch.setattr(sr, "AUTO_APPROXIMATE_MIN_SAMPLES", 10)
    np.testing.assert_array_equal(
        sample_robustness(X[:200], y[:200], metric="manhattan"),
        sample_robustness(X[:200], y[:200], metric="manhattan", algorithm="exact"),
    )
    t = X[:200, 0]
    np.testing.assert_array_equal(
        sample_robustness(X[:200], t), sample_robustness(X[:200], t, algorithm="exact")
    )


def test_nprobe_is_validated():
    X, y = load_digits(return_X_y=True)
    with pytest.raises(ValueError, match="nprobe"):
        sample_robustness(X, y, algorithm="approximate", nprobe=0)
    with pytest.raises(ValueError, match="classification only"):
        sample_robustness(X, X[:, 10] + 0.5, task="regression", algorithm="approximate")
