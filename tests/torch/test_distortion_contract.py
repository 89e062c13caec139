"""One distortion contract for both families (DESIGN §10), checked across them on a
linear model that both can take: a scikit-learn LogisticRegression and the torch
nn.Linear with its weights. For a linear model every exact route (the sklearn closed
form, the torch MILP, the torch certificate) has the same answer, so the families must
agree number for number, not only in shape."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from sklearn.linear_model import LogisticRegression  # noqa: E402
from torch import nn  # noqa: E402

from skrob import (  # noqa: E402
    DecisionDistortionScorer,
    _milp,  # noqa: E402
    decision_based_distortion,
    exact_distortion,
    robustness_learning_curve,
)
from skrob._scoring import RobustnessScorerMixin  # noqa: E402
from skrob.distortion._scorers import DistortionScorer  # noqa: E402
from skrob.torch import (  # noqa: E402
    AdversarialDistortionScorer,
    LaplacianScorer,
    certified_radius,
    minimal_distortion,
)


def _pair(seed=0, n=60, d=5):
    """A 3-class LogisticRegression on tabular units and the same model in torch."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (3, d))
    y = rng.integers(0, 3, n)
    X = centres[y] + rng.normal(0, 1.5, (n, d))
    X = X * np.array([1.0, 10.0, 0.1, 1.0, 5.0])[:d] + 20.0  # units far from (0, 1)
    model = LogisticRegression(max_iter=5000).fit(X, y)
    net = nn.Linear(d, 3).double()
    with torch.no_grad():
        net.weight.copy_(torch.as_tensor(model.coef_))
        net.bias.copy_(torch.as_tensor(model.intercept_))
    assert np.array_equal(net(torch.as_tensor(X)).argmax(1).numpy(), model.predict(X))
    return model, net, X, y


# a box per feature with one open side: both families take the same `clip`
def _box(X):
    return (X.min(axis=0) - 5.0, None)


@pytest.mark.parametrize("norm", [np.inf, 1])
def test_exact_minima_agree_across_families(norm):
    model, net, X, y = _pair()
    clip = _box(X)
    sk = exact_distortion(model, X, y, norm=norm, clip=clip)
    th = minimal_distortion(net, X, y, norm=norm, method="exact", clip=clip, time_limit=1e4)
    misclassified = model.predict(X) != y
    # NaN = misclassified at the start, in both
    np.testing.assert_array_equal(np.isnan(sk), misclassified)
    np.testing.assert_array_equal(np.isnan(th), misclassified)
    ok = ~misclassified
    np.testing.assert_allclose(th[ok], sk[ok], rtol=1e-6)


@pytest.mark.parametrize("norm", [np.inf, 2])
def test_certificate_and_attacks_bracket_the_exact_minimum(norm):
    model, net, X, y = _pair(1)
    clip = _box(X)
    sk = exact_distortion(model, X, y, norm=norm, clip=clip)
    cert = certified_radius(net, X, y, norm=norm, clip=clip)
    ok = ~np.isnan(sk)
    # a linear model's certificate is its exact minimum, less the rounding margin
    assert np.all(cert[ok] <= sk[ok] * (1 + 1e-9))
    np.testing.assert_allclose(cert[ok], sk[ok], rtol=1e-4)
    for d, adv, success in (
        minimal_distortion(net, X, y, norm=norm, clip=clip, return_adversarial=True),
        decision_based_distortion(
            model, X, y, norm=norm, clip=clip, random_state=0, return_adversarial=True
        ),
    ):
        np.testing.assert_array_equal(np.isnan(d), ~ok)
        np.testing.assert_array_equal(success, np.isfinite(d))
        assert np.all(d[success] >= sk[success] * (1 - 1e-6))
        adv = np.asarray(adv, dtype=float).reshape(len(X), -1)
        assert np.all(adv[success] >= clip[0])
        assert np.all(model.predict(adv[success]) != y[success])


def test_not_flipped_inside_the_box_is_inf_in_both_families():
    """A box the decision boundary does not cross: every correct sample is inf."""
    model, net, X, y = _pair(2)
    keep = model.predict(X) == 0
    X0, y0 = X[keep], y[keep]
    tight = (X0.min(axis=0), X0.max(axis=0))
    assert np.all(model.predict(X0) == 0)
    # shrink the box until no point of it is predicted otherwise (checked by the exact route)
    for _ in range(20):
        if np.all(np.isinf(exact_distortion(model, X0, y0, clip=tight))):
            break
        centre = X0.mean(axis=0)
        X0 = centre + 0.5 * (X0 - centre)
        tight = (X0.min(axis=0), X0.max(axis=0))
    for d in (
        exact_distortion(model, X0, y0, clip=tight),
        minimal_distortion(net, X0, y0, clip=tight),
        minimal_distortion(net, X0, y0, clip=tight, method="exact", time_limit=1e4),
        decision_based_distortion(model, X0, y0, clip=tight, max_queries=200, random_state=0),
    ):
        assert np.all(np.isinf(d))


def _limit(*args, **kwargs):
    return _milp.Outcome("limit", None, np.inf, -np.inf, "fake limit")


def test_a_time_limit_is_the_same_rule_in_both_families(monkeypatch):
    """Where the programs stop short: a warning, the best verified point's distance (an
    upper bound), and the bracket with return_bounds=True, in both families."""
    from sklearn.ensemble import RandomForestClassifier

    model, net, X, y = _pair(3, n=30)
    forest = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
    monkeypatch.setattr(_milp, "solve", _limit)
    cases = (
        (lambda **kw: exact_distortion(forest, X, y, **kw), forest.predict(X) == y),
        (
            lambda **kw: minimal_distortion(net, X, y, method="exact", **kw),
            model.predict(X) == y,
        ),
    )
    for call, correct in cases:
        with pytest.warns(UserWarning, match="time limit"):
            d = call()
        low, up = call(return_bounds=True)
        np.testing.assert_array_equal(d[correct], up[correct])
        assert np.all(low[correct] < up[correct])
        assert np.isnan(d[~correct]).all()


def test_the_scorers_share_one_base_and_agree_on_a_linear_model():
    model, net, X, y = _pair(4)
    for scorer in (DecisionDistortionScorer(), AdversarialDistortionScorer()):
        assert isinstance(scorer, DistortionScorer)
    for scorer in (DecisionDistortionScorer(), AdversarialDistortionScorer(), LaplacianScorer()):
        assert isinstance(scorer, RobustnessScorerMixin)
    exact = exact_distortion(model, X, y)
    eps = float(np.nanmedian(exact)) * 0.97  # away from every sample's own minimum
    assert not np.any(np.isclose(exact, eps, rtol=1e-3))
    truth = float(np.mean(np.nan_to_num(exact, nan=-1.0) > eps))
    sk = DecisionDistortionScorer(statistic="certified_accuracy", epsilon=eps)(model, X, y)
    th = AdversarialDistortionScorer(statistic="certified_accuracy", epsilon=eps)(net, X, y)
    assert sk == th == pytest.approx(truth)
    # robust accuracy from the attacks is an upper bound of the truth in both
    for scorer, est in (
        (DecisionDistortionScorer(statistic="robust_accuracy", epsilon=eps), model),
        (AdversarialDistortionScorer(statistic="robust_accuracy", epsilon=eps), net),
    ):
        assert scorer(est, X, y) >= truth


def test_learning_curve_recognises_every_robustness_scorer_by_type():
    """robustness_learning_curve scores skrob's robustness scorers on the commonly
    correct samples: a subclass with any name is one too."""

    class Renamed(DecisionDistortionScorer):
        pass

    model, _, X, y = _pair(5)
    curve = robustness_learning_curve(
        LogisticRegression(max_iter=5000),
        X[:45],
        y[:45],
        X[45:],
        y[45:],
        train_sizes=[15, 30],
        scoring={"d": Renamed(max_queries=200)},
        random_state=0,
    )
    assert "n_common" in curve.columns and curve["d"].notna().all()


def test_hutchinson_laplacian_scorer_uses_common_random_numbers():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    X = torch.randn(6, 4)
    scorer = LaplacianScorer(method="hutchinson", n_probes=4)
    assert scorer(net, X) == scorer(net, X)
    assert scorer(net, X) == LaplacianScorer(method="hutchinson", n_probes=4, random_state=0)(
        net, X
    )
