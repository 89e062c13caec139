import numpy as np
import pytest

torch = pytest.importorskip("torch")

from numpy.testing import assert_allclose, assert_array_equal  # noqa: E402

from skrob.torch import (  # noqa: E402
    AdversarialDistortionScorer,
    common_correct_mask,
    minimal_distortion,
)

nn = torch.nn
METHODS = {
    np.inf: ["fab", "deepfool", "bim", "ifgsm", "auto"],
    2: ["fab", "deepfool", "ddn", "cw", "auto"],
}
EXACT = ("auto", "fab", "deepfool", "cw")  # within 1 % on linear models


def linear_case(seed, d=12, k=4):
    torch.manual_seed(seed)
    net = nn.Linear(d, k).double()
    with torch.no_grad():
        net.weight.mul_(5.0)
    X = (0.5 + 0.05 * torch.randn(40, d, dtype=torch.float64)).clamp(0.3, 0.7)
    return net, X, net(X).argmax(1)


def analytic(net, X, y, p):
    """min over j != y of (z_y − z_j) / ||w_y − w_j||_dual: the box does not bind here."""
    W, b = net.weight.detach().numpy(), net.bias.detach().numpy()
    Z = X.numpy() @ W.T + b
    out = []
    for z, c in zip(Z, y.numpy(), strict=True):
        diff = W[c] - W
        dual = np.abs(diff).sum(1) if p == np.inf else np.linalg.norm(diff, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (z[c] - z) / dual
        ratio[c] = np.inf
        out.append(ratio.min())
    return np.array(out)


@pytest.mark.parametrize("n_classes", [4, 10])
@pytest.mark.parametrize("p", [np.inf, 2])
def test_linear_models_within_one_percent_above_the_analytic_minimum(
    global_random_seed, p, n_classes
):
    net, X, y = linear_case(global_random_seed, k=n_classes)
    exact = analytic(net, X, y, p)
    for method in METHODS[p]:
        d, X_adv, ok = minimal_distortion(
            net, X, y, norm=p, method=method, clip=(0.0, 1.0), return_adversarial=True
        )
        assert ok.all(), method
        ratio = d / exact
        assert ratio.min() >= 1 - 1e-6, (method, ratio.min())  # never below the minimum
        # "auto", FAB and DeepFool (exact for linear models) within 1 %; the gradient
        # attacks can end on another class's boundary, or off the boundary's normal
        if method in EXACT:
            assert ratio.max() <= 1.01, method
        else:
            assert np.median(ratio) <= 1.25 and ratio.max() <= 2.5, method
        # the points really flip the prediction and stay in the box
        adv = torch.as_tensor(X_adv)
        assert (net(adv).argmax(1) != y).all()
        assert (adv >= 0).all() and (adv <= 1).all()
        norms = (adv - X).flatten(1)
        norms = norms.abs().amax(1) if p == np.inf else norms.norm(dim=1)
        assert_allclose(norms.numpy(), d, rtol=1e-12)


@pytest.mark.parametrize("p", [np.inf, 2])
def test_project_is_the_smallest_step_onto_the_hyperplane_inside_the_box(global_random_seed, p):
    """FAB's projection: against scipy's linear program (L-inf), by its KKT conditions (L2)."""
    from scipy.optimize import linprog

    from skrob.torch._attacks import _project

    rng = np.random.default_rng(global_random_seed)
    n, rows = 7, 40
    X = rng.uniform(0, 1, (rows, n))
    X[:, :2] = rng.choice([0.0, 1.0], (rows, 2))  # on the box's faces
    W = rng.normal(size=(rows, n))
    W[::4, 0] = 0.0  # zero weights
    c = rng.normal(scale=0.6, size=rows)
    c[::5] *= 20  # out of the box's reach
    d, feasible = _project(torch.as_tensor(W), torch.as_tensor(c), torch.as_tensor(X), 0.0, 1.0, p)
    d, feasible = d.numpy(), feasible.numpy()
    assert ((X + d >= -1e-12) & (X + d <= 1 + 1e-12)).all()
    assert 0 < feasible.sum() < rows
    for x, w, c_, d_, ok in zip(X, W, c, d, feasible, strict=True):
        # the box reaches w·d = c iff its farthest corner in the direction sign(c)·w does
        s = np.sign(c_)
        assert ok == (s * w @ np.where(s * w > 0, 1 - x, -x) >= abs(c_))
        if not ok:  # every coordinate at the box, towards the hyperplane
            assert_allclose(x + d_, np.where(s * w > 0, 1.0, np.where(w == 0, x, 0.0)))
            continue
        assert w @ d_ == pytest.approx(c_, abs=1e-10)
        if p == np.inf:  # min e subject to w·d = c, |d_i| <= e, the box
            A_ub = np.block([[np.eye(n), -np.ones((n, 1))], [-np.eye(n), -np.ones((n, 1))]])
            res = linprog(
                np.r_[np.zeros(n), 1.0],
                A_ub=A_ub,
                b_ub=np.zeros(2 * n),
                A_eq=np.r_[w, 0.0][None],
                b_eq=[c_],
                bounds=[(-xi, 1 - xi) for xi in x] + [(0, None)],
            )
            assert res.status == 0
            assert np.abs(d_).max() == pytest.approx(res.fun, rel=1e-7, abs=1e-12)
        else:  # KKT of min |d|^2, w·d = c, box: d = clip(λ w, box) for one λ
            inner = (x + d_ > 1e-9) & (x + d_ < 1 - 1e-9) & (w != 0)
            assert inner.any()
            lam = d_[inner] / w[inner]
            assert_allclose(lam, lam[0], rtol=1e-9)
            assert_allclose(d_, np.clip(lam[0] * w, -x, 1 - x), atol=1e-12)


def test_shrink_lands_on_the_boundary_and_never_moves_away():
    from skrob.torch._attacks import margin_loss as _margin_loss
    from skrob.torch._attacks import shrink as _shrink

    torch.manual_seed(0)
    net, X, y = linear_case(0)
    x_adv = (X + 0.3 * torch.randn_like(X)).clamp(0, 1)
    with torch.no_grad():
        hit = net(x_adv).argmax(1) != y
        assert 10 < hit.sum() < len(y)
        # linear model: the segment first crosses z_y = z_j at min_j m_j(0) / (m_j(0) − m_j(1))
        m_start = net(X).gather(1, y[:, None]) - net(X)
        m_end = net(x_adv).gather(1, y[:, None]) - net(x_adv)
        crossing = torch.where(m_end < 0, m_start / (m_start - m_end), torch.inf).amin(1)
        for steps in (1, 4, 8):
            out = _shrink(net, X, x_adv, y, _margin_loss(net(X), y), hit, steps=steps)
            assert (net(out[hit]).argmax(1) != y[hit]).all()
            assert_array_equal(out[~hit].numpy(), x_adv[~hit].numpy())
            t = ((out - X).norm(dim=1) / (x_adv - X).norm(dim=1))[hit]
            assert (t >= crossing[hit] * (1 - 1e-9)).all() and (t <= 1).all()
        # Illinois converges on the concave, piecewise-linear margin
        assert_allclose(t.numpy(), crossing[hit].numpy(), rtol=1e-3)
        # a tanh net: more steps only ever move closer, and stay adversarial
        mlp = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 4)).double()
        y2 = mlp(X).argmax(1)
        hit2 = mlp(x_adv).argmax(1) != y2
        assert hit2.any()
        prev = x_adv
        for steps in (1, 2, 4, 8):
            out2 = _shrink(mlp, X, x_adv, y2, _margin_loss(mlp(X), y2), hit2, steps=steps)
            assert (mlp(out2[hit2]).argmax(1) != y2[hit2]).all()
            assert ((out2 - X).norm(dim=1) <= (prev - X).norm(dim=1) + 1e-12).all()
            prev = out2


def test_binary_linear_model(global_random_seed):
    torch.manual_seed(global_random_seed)
    net = nn.Linear(8, 2).double()
    X = (0.5 + 0.03 * torch.randn(30, 8, dtype=torch.float64)).clamp(0.3, 0.7)
    y = net(X).argmax(1)
    w = (net.weight[1] - net.weight[0]).detach().numpy()
    margin = np.abs(X.numpy() @ w + (net.bias[1] - net.bias[0]).item())
    for p, dual in ((np.inf, np.abs(w).sum()), (2, np.linalg.norm(w))):
        d = minimal_distortion(net, X, y, norm=p)
        assert np.all(d >= margin / dual * (1 - 1e-6)) and np.all(d <= margin / dual * 1.01)


def test_misclassified_samples_are_nan_and_auto_is_the_minimum_of_its_attacks():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    X = torch.rand(30, 10, dtype=torch.float64)
    y = net(X).argmax(1)
    y[:5] = (y[:5] + 1) % 3  # wrong labels: misclassified
    for p in (np.inf, 2):
        auto = minimal_distortion(net, X, y, norm=p)
        assert np.isnan(auto[:5]).all() and np.isfinite(auto[5:]).all()
        # L-inf "auto" is FAB; L2 "auto" keeps the smaller of FAB's first step and DDN
        last = minimal_distortion(net, X, y, norm=p, method="fab" if p == np.inf else "ddn")
        if p == np.inf:
            assert_array_equal(auto, last)
        else:
            assert np.all(auto[5:] <= last[5:])


def test_common_correct_mask_and_scorer():
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.random((60, 4))
    y = (X[:, 0] > 0.5).astype(int)
    a = LogisticRegression().fit(X, y)
    b = DummyClassifier(strategy="constant", constant=1).fit(X, y)
    mask = common_correct_mask([a, b], X, y)
    assert_array_equal(mask, (a.predict(X) == y) & (y == 1))

    net, Xt, yt = linear_case(0)
    scorer = AdversarialDistortionScorer(norm=2, method="deepfool")
    assert scorer(net, Xt, yt) == pytest.approx(
        np.nanmean(minimal_distortion(net, Xt, yt, norm=2, method="deepfool"))
    )


def test_bad_input():
    net, X, y = linear_case(0)
    with pytest.raises(ValueError, match="norm. parameter of minimal_distortion must be"):
        minimal_distortion(net, X, y, norm=1)
    with pytest.raises(ValueError, match="L-inf attack"):
        minimal_distortion(net, X, y, norm=2, method="bim")
    with pytest.raises(ValueError, match="L2 attack"):
        minimal_distortion(net, X, y, method="ddn")
    with pytest.raises(ValueError, match="outside the box"):
        minimal_distortion(net, X + 1.0, y, clip=(0.0, 1.0))
    with pytest.raises(ValueError, match="one class index per sample"):
        minimal_distortion(net, X, y[:-1])
    with pytest.raises(ValueError, match="low < high"):
        minimal_distortion(net, X, y, clip=(1.0, 0.0))


@pytest.mark.parametrize("p", [np.inf, 2])
def test_skorch_nets_with_logits_or_probabilities_give_the_same_distortions(p):
    """A skorch net whose module returns probabilities (skorch's default NLLLoss) is
    attacked on their logarithm: the same margins and cross-entropy as its logits."""
    skorch = pytest.importorskip("skorch")

    class MLP(nn.Module):
        def __init__(self, softmax=False):
            super().__init__()
            torch.manual_seed(0)
            self.body = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
            self.softmax = softmax

        def forward(self, X):
            out = self.body(X)
            return torch.softmax(out, -1) if self.softmax else out

    rng = np.random.default_rng(0)
    X = rng.uniform(0.2, 0.8, (30, 6)).astype(np.float32)
    fitted = {}
    for softmax in (False, True):
        criterion = nn.NLLLoss if softmax else nn.CrossEntropyLoss
        net = skorch.NeuralNetClassifier(
            MLP, module__softmax=softmax, criterion=criterion, max_epochs=0, train_split=None
        )
        fitted[softmax] = net.initialize()
    labels = fitted[False].predict(X)
    d_logits, adv_logits, ok_logits = minimal_distortion(
        fitted[False], X, labels, norm=p, return_adversarial=True
    )
    d_proba, adv_proba, ok_proba = minimal_distortion(
        fitted[True], X, labels, norm=p, return_adversarial=True
    )
    assert ok_logits.all() and ok_proba.all()
    # Verified points (inside the attack: flipped, in the box), whose norms are the
    # distortions returned ...
    for d, adv in ((d_logits, adv_logits), (d_proba, adv_proba)):
        delta = (adv - X).reshape(len(X), -1).astype(np.float64)
        norms = np.abs(delta).max(1) if p == np.inf else np.linalg.norm(delta, axis=1)
        assert_allclose(d, norms, rtol=1e-6)
    # ... and the two routes follow the same margins: float rounding may send an
    # iterative attack into another local minimum on a few samples, not on most.
    assert np.median(np.abs(d_proba - d_logits) / d_logits) < 1e-3
    # the scorer takes the fitted net like any estimator
    scorer = AdversarialDistortionScorer(norm=p)
    assert scorer(fitted[False], X, labels) == pytest.approx(d_logits.mean(), rel=1e-6)


def test_inputs_that_do_not_fit_get_errors_naming_them():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    X = np.random.default_rng(0).uniform(size=(4, 3)).astype(np.float32)
    y = mlp(torch.as_tensor(X)).argmax(1).numpy()
    with pytest.raises(ValueError, match="integer class indices"):
        minimal_distortion(mlp, X, y + 0.7)
    with pytest.raises(ValueError, match="dtype <U1"):
        minimal_distortion(mlp, X, np.array(["a", "b", "a", "b"]))
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\)"):
        minimal_distortion(mlp, X, y + 2)
    with pytest.raises(ValueError, match=r"maps 2 rows of shape \(3, 3\)"):
        minimal_distortion(mlp, np.repeat(X[:, None, :], 3, axis=1), y)
    with pytest.raises(ValueError, match="clip. parameter of minimal_distortion must be a pair"):
        minimal_distortion(mlp, X, y, clip=(0.0,))
    with pytest.raises(ValueError, match="high must be finite"):
        minimal_distortion(mlp, X, y, clip=(0.0, np.inf))
    with pytest.raises(ValueError, match="X and y must have one row per sample"):
        common_correct_mask([], X, y[:3])
    with pytest.raises(ValueError, match="'norm' parameter of AdversarialDistortionScorer"):
        AdversarialDistortionScorer(norm="l2")(mlp, X, y)


def test_scorer_warns_about_samples_no_attack_breaks():
    """A constant model: every sample is correct, none can be flipped."""

    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.tensor([1.0, 0.0]))

        def forward(self, x):
            return self.bias.expand(len(x), 2) + 0 * x.sum(1, keepdim=True)

    X = np.random.default_rng(0).uniform(size=(5, 3)).astype(np.float32)
    with pytest.warns(UserWarning, match="5 of 5 correctly classified samples were not flipped"):
        score = AdversarialDistortionScorer()(Constant(), X, np.zeros(5, dtype=int))
    assert np.isnan(score)


def test_distortion_scorer_takes_tol_and_device_and_rejects_metadata():
    params = AdversarialDistortionScorer().get_params()
    assert {"tol", "device"} <= set(params)
    net = nn.Linear(3, 2)
    X = np.random.default_rng(0).uniform(size=(4, 3)).astype(np.float32)
    y = net(torch.as_tensor(X)).argmax(1).numpy()
    with pytest.raises(TypeError, match="takes no metadata"):
        AdversarialDistortionScorer(method="deepfool")(net, X, y, sample_weight=np.ones(4))


def test_robust_accuracy_at_a_budget_on_a_linear_model():
    """For a linear model DeepFool is exact: robust accuracy is the share of correct
    samples whose analytic distance to the boundary exceeds epsilon."""
    torch.manual_seed(0)
    net = nn.Linear(2, 2)
    rng = np.random.default_rng(0)
    X = rng.uniform(0.3, 0.7, size=(200, 2)).astype(np.float32)
    y = rng.integers(0, 2, 200)
    with torch.no_grad():
        z = net(torch.as_tensor(X)).numpy()
    w = (net.weight[1] - net.weight[0]).detach().numpy().astype(np.float64)
    b = float(net.bias[1] - net.bias[0])
    margin = np.abs(X.astype(np.float64) @ w + b) / np.abs(w).sum()  # L-inf distance
    correct = z.argmax(1) == y
    for eps in (0.01, 0.05, 0.2):
        scorer = AdversarialDistortionScorer(
            method="deepfool", statistic="robust_accuracy", epsilon=eps, clip=(-10.0, 10.0)
        )
        expected = np.mean(correct & (margin > eps * (1 + 1e-3)))
        upper = np.mean(correct & (margin > eps * (1 - 1e-3)))
        assert expected <= scorer(net, X, y) <= upper
    with pytest.raises(ValueError, match="needs epsilon"):
        AdversarialDistortionScorer(statistic="robust_accuracy")(net, X, y)
