"""Exact minimal distortion (MILP) and certified radii (CROWN, IBP) of ReLU networks:
against closed forms on linear models, an enumeration of activation patterns on small
nets, and each other (certified <= exact <= attack on every sample)."""

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from scipy.optimize import linprog  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from torch import nn  # noqa: E402

from skrob.distortion._model_exact import halfspace_distance  # noqa: E402
from skrob.torch import (  # noqa: E402
    AdversarialDistortionScorer,
    certified_radius,
    minimal_distortion,
)
from skrob.torch._verify import relu_layers  # noqa: E402


def _trained(net, X, y, steps=200):
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(Xt), yt).backward()
        opt.step()
    return net.eval()


def _blobs(n, d, k, seed):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.25, 0.75, (k, d))
    y = rng.integers(0, k, n)
    X = np.clip(centres[y] + rng.normal(0, 0.08, (n, d)), 0, 1)
    return X, y


def _linear_exact(W, b, x, t, norm, lo=0.0, hi=1.0):
    """The minimal distortion of an affine classifier in the box: one half-space per class."""
    best = np.inf
    for j in range(W.shape[0]):
        if j == t:
            continue
        a = W[j] - W[t]
        m = (W[t] - W[j]) @ x + b[t] - b[j]
        room = np.where(a > 0, hi - x, x - lo)
        best = min(best, halfspace_distance(np.abs(a)[None], room[None], np.array([m]), norm)[0])
    return best


@pytest.mark.parametrize("norm", [np.inf, 1])
def test_exact_and_certified_equal_the_minimum_of_linear_models(norm):
    torch.manual_seed(0)
    X, y = _blobs(120, 5, 4, 0)
    net = _trained(nn.Linear(5, 4).double(), X, y)
    W, b = net.weight.detach().numpy(), net.bias.detach().numpy()
    ex = minimal_distortion(net, X[:20], y[:20], norm=norm, method="exact")
    for i in range(20):
        if np.isnan(ex[i]):
            continue
        ref = _linear_exact(W, b, X[i], y[i], norm)
        np.testing.assert_allclose(ex[i], ref, rtol=1e-6)
    if norm == np.inf:
        cr = certified_radius(net, X[:20], y[:20])
        ok = ~np.isnan(ex)
        np.testing.assert_allclose(cr[ok], ex[ok], rtol=1e-6)


def _pattern_enumeration(layers, x, t, lo, hi):
    """Exact minimal L∞ distortion of a one-hidden-layer ReLU net: every activation
    pattern is a polytope where the net is affine; one LP per pattern and class."""
    (W1, b1), (W2, b2) = layers
    h, d = W1.shape
    best = np.inf
    for pattern in itertools.product([0, 1], repeat=h):
        s = np.array(pattern, float)
        # pattern constraints: s=1 -> W1 x' + b1 >= 0; s=0 -> <= 0
        sign = np.where(s > 0, -1.0, 1.0)
        A_pat, b_pat = sign[:, None] * W1, -sign * b1
        Weff, beff = W2 @ (s[:, None] * W1), W2 @ (s * b1) + b2
        for j in range(W2.shape[0]):
            if j == t:
                continue
            a = Weff[t] - Weff[j]  # z_t − z_j <= 0
            A = np.vstack([np.c_[A_pat, np.zeros(h)], np.r_[a, 0]])
            A = np.vstack([A, np.c_[np.eye(d), -np.ones(d)], np.c_[-np.eye(d), -np.ones(d)]])
            rhs = np.r_[b_pat, beff[j] - beff[t], x, -x]
            res = linprog(
                np.r_[np.zeros(d), 1.0], A_ub=A, b_ub=rhs, bounds=[(lo, hi)] * d + [(0, None)]
            )
            if res.status == 0:
                best = min(best, res.fun)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_equals_activation_pattern_enumeration(seed):
    torch.manual_seed(seed)
    X, y = _blobs(150, 3, 3, seed)
    net = _trained(nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 3)).double(), X, y)
    layers = relu_layers(net, (3,))
    ex = minimal_distortion(net, X[:12], y[:12], method="exact")
    for i in np.flatnonzero(~np.isnan(ex)):
        ref = _pattern_enumeration(layers, X[i], y[i], 0.0, 1.0)
        np.testing.assert_allclose(ex[i], ref, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("norm", [np.inf, 2])
def test_certified_below_exact_below_attack(seed, norm):
    torch.manual_seed(seed)
    X, y = _blobs(200, 8, 4, seed)
    net = nn.Sequential(
        nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 4)
    ).double()
    net = _trained(net, X, y)
    attack = minimal_distortion(net, X[:25], y[:25], norm=norm)
    for method in ("crown", "ibp"):
        cr = certified_radius(net, X[:25], y[:25], norm=norm, method=method)
        ok = ~np.isnan(attack)
        assert np.all(cr[ok] <= attack[ok] * (1 + 1e-9))
        assert np.all(cr[ok] >= 0)
    crown = certified_radius(net, X[:25], y[:25], norm=norm)
    ibp = certified_radius(net, X[:25], y[:25], norm=norm, method="ibp")
    assert np.nanmean(crown) >= np.nanmean(ibp)  # CROWN's relaxation is the tighter one
    if norm == np.inf:
        ex = minimal_distortion(net, X[:25], y[:25], method="exact")
        ok = ~np.isnan(ex)
        assert np.all(crown[ok] <= ex[ok] * (1 + 1e-9))
        assert np.all(ex[ok] <= attack[ok] * (1 + 1e-9))
        scorer = {
            s: AdversarialDistortionScorer(statistic=s, epsilon=0.05)(net, X[:25], y[:25])
            for s in ("certified_accuracy", "robust_accuracy")
        }
        assert scorer["certified_accuracy"] <= scorer["robust_accuracy"]


def test_relu_layers_reproduce_conv_batchnorm_and_pipelines():
    torch.manual_seed(0)
    cnn = (
        nn.Sequential(
            nn.Conv2d(1, 3, 3),
            nn.BatchNorm2d(3),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(3 * 3 * 3, 4),
        )
        .double()
        .eval()
    )
    cnn[1].running_mean.uniform_(-0.5, 0.5)
    X = torch.rand(6, 1, 8, 8, dtype=torch.float64)
    layers = relu_layers(cnn, (1, 8, 8))
    z = X.flatten(1).numpy()
    for k, (W, b) in enumerate(layers):
        z = z @ W.T + b
        if k < len(layers) - 1:
            z = np.maximum(z, 0)
    np.testing.assert_allclose(z, cnn(X).detach().numpy(), atol=1e-10)
    assert np.all(certified_radius(cnn, X, cnn(X).argmax(1), input_shape=(1, 8, 8)) >= 0)


def test_pipeline_certified_radius_in_raw_units():
    skorch = pytest.importorskip("skorch")
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 10, (80, 3)).astype(np.float32)
    y = (X[:, 0] > 5).astype(np.int64)
    net = skorch.NeuralNetClassifier(
        nn.Sequential(nn.Linear(3, 2)),
        criterion=nn.CrossEntropyLoss,
        max_epochs=30,
        lr=0.1,
        verbose=0,
        train_split=None,
    )
    pipe = make_pipeline(StandardScaler(), net).fit(X, y)
    cr = certified_radius(pipe, X[:10], y[:10], clip=(0.0, 10.0))
    ex = minimal_distortion(pipe, X[:10], y[:10], clip=(0.0, 10.0), method="exact")
    ok = ~np.isnan(ex)
    np.testing.assert_allclose(cr[ok], ex[ok], rtol=1e-4)  # a linear model: both exact


@pytest.mark.parametrize(
    "net",
    [
        nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)),
        nn.Sequential(nn.Unflatten(1, (1, 2, 2)), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1, 3)),
    ],
)
def test_unsupported_layers_are_named(net):
    X = torch.rand(4, 4)
    with pytest.raises(ValueError, match="ReLU"):
        certified_radius(net, X, net(X).argmax(1))


def test_exact_needs_linf_or_l1():
    net = nn.Linear(4, 3)
    X = torch.rand(4, 4)
    with pytest.raises(ValueError, match="L∞ and L1"):
        minimal_distortion(net, X, net(X).argmax(1), norm=2, method="exact")
