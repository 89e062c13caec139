"""'Exact' checked against independent oracles: threshold-cell enumeration of tree
ensembles, closed forms of linear models, and every refusal named."""

import itertools
import warnings

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler
from sklearn.svm import SVR

from skrob import _milp, decision_based_distortion, exact_distortion
from skrob.distortion._model_exact import float32_cut


def enumerate_cells(model, X, y, norm, transform=None):
    """The minimal distortion by enumeration: every combination of threshold cells of
    every feature, each cell's point nearest x (just inside), classified by the model's
    own ``predict``. Independent of the MILP: no program, no reconstruction."""
    trees = np.ravel(model.estimators_) if hasattr(model, "estimators_") else [model]
    d = X.shape[1]
    thr = [set() for _ in range(d)]
    for est in trees:
        t = est.tree_
        for f, v in zip(t.feature, t.threshold, strict=True):
            if f >= 0:
                thr[f].add(float32_cut(v))
    # thresholds in the pipeline's input units (an affine per-feature transform)
    scale, offset = transform[:2] if transform is not None else (np.ones(d), np.zeros(d))
    thr = [np.sort((np.array(sorted(t)) - offset[f]) / scale[f]) for f, t in enumerate(thr)]
    predict = model.predict if transform is None else transform[2].predict
    pred = predict(X)
    out = []
    for x, label, p in zip(X, y, pred, strict=True):
        if p != label:
            out.append(np.nan)
            continue
        options = []
        for f in range(d):
            cand = [x[f]]
            edges = np.concatenate(([-np.inf], thr[f], [np.inf]))
            for lo, hi in itertools.pairwise(edges):
                if lo < x[f] <= hi:
                    continue
                nudge = 1e-12 * max(abs(lo if x[f] <= lo else hi), 1e-300)  # just inside
                cand.append(hi - nudge if x[f] > hi else lo + nudge)
            options.append(cand)
        grid = np.array(list(itertools.product(*options)))
        other = predict(grid) != label
        diff = np.abs(grid[other] - x)
        if not other.any():
            out.append(np.inf)
        elif norm == np.inf:
            out.append(diff.max(axis=1).min())
        elif norm == 2:
            out.append(np.sqrt((diff**2).sum(axis=1)).min())
        else:
            out.append(diff.sum(axis=1).min())
    return np.array(out)


def _units_data(n=150, seed=0):
    """Three features in units 1e-4, 1 and 1e4 apart, three classes."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * np.array([1e-4, 1.0, 1e4])
    y = np.digitize(X[:, 0] / 1e-4 + X[:, 1] + X[:, 2] / 1e4, [-1, 1])
    return X, y


# No test here may hinge on a time limit striking or not on a slow machine: the limit is
# far above what these small programs take.
LIMIT = 1e4

ENSEMBLES = [
    RandomForestClassifier(n_estimators=6, max_depth=3, random_state=0),
    GradientBoostingClassifier(n_estimators=6, max_depth=2, random_state=0),
]


@pytest.mark.parametrize("model", ENSEMBLES, ids=["forest", "boosting"])
@pytest.mark.parametrize("norm", [2, np.inf, 1])
def test_ensembles_in_different_units_match_enumeration(model, norm):
    """Features 1e8 apart in units: HiGHS refused the unscaled L2 program (a model error
    scipy reports with the infeasible status) and classes were skipped, up to 4e4x above
    the minimum. The scaled program matches the enumeration on every sample."""
    X, y = _units_data()
    model.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # proven: no 'not proven' warning either
        got = exact_distortion(model, X[:12], y[:12], norm=norm, time_limit=LIMIT)
    want = enumerate_cells(model, X[:12], y[:12], norm)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_single_sample_without_a_known_adversarial_point_is_exact():
    """Without other rows there is no upper bound to scale by: still exact."""
    X, y = _units_data()
    model = RandomForestClassifier(n_estimators=4, max_depth=3, random_state=1).fit(X, y)
    for i in range(4):
        got = exact_distortion(model, X[i : i + 1], y[i : i + 1], norm=2, time_limit=LIMIT)
        want = enumerate_cells(model, X[i : i + 1], y[i : i + 1], 2)
        np.testing.assert_allclose(got, want, rtol=1e-6)


def _failing(status):
    def solve(*args, **kwargs):
        return _milp.Outcome(status, None, np.inf, -np.inf, f"fake {status}")

    return solve


@pytest.mark.parametrize("status", ["failed", "limit"])
def test_a_solver_that_stops_short_is_a_bracket_and_a_warning(monkeypatch, status):
    """A model error or a limit is never a silent skip: a warning, the best verified
    point's distance (an upper bound, as skrob.torch gives), and the bracket it proved
    with return_bounds."""
    X, y = _units_data(60)
    model = RandomForestClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X, y)
    fake = _failing(status)
    monkeypatch.setattr(_milp, "solve", fake)
    with pytest.warns(UserWarning, match="not proven"):
        d = exact_distortion(model, X[:5], y[:5], norm=2)
    correct = model.predict(X[:5]) == y[:5]
    low, up = exact_distortion(model, X[:5], y[:5], norm=2, return_bounds=True)
    np.testing.assert_array_equal(d[correct], up[correct])
    assert np.isnan(d[~correct]).all()
    assert np.all(low[correct] < up[correct])
    truth = enumerate_cells(model, X[:5], y[:5], 2)
    assert np.all(low[correct] <= truth[correct] * (1 + 1e-9))
    assert np.all(up[correct] >= truth[correct] * (1 - 1e-9))


def test_a_presolve_artefact_is_caught_by_the_confirming_programs(monkeypatch):
    """HiGHS' presolve has answered 'infeasible' or a suboptimal 'optimal' (upstream bugs):
    here every program with presolve finds nothing for all but the last class. The
    programs without presolve that confirm the minimum find the true one."""
    X, y = _units_data(90)
    model = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=2).fit(X, y)
    real = _milp.solve
    calls = {"presolve": 0}

    def artefact(*args, **kwargs):
        presolve = args[8] if len(args) > 8 else kwargs.get("presolve", True)
        if presolve:
            calls["presolve"] += 1
            if calls["presolve"] % 2:  # every other class: a wrong 'infeasible'
                return _milp.Outcome("infeasible", None, np.inf, np.inf, "fake")
        return real(*args, **kwargs)

    monkeypatch.setattr(_milp, "solve", artefact)
    got = exact_distortion(model, X[:10], y[:10], norm=np.inf, time_limit=LIMIT)
    want = enumerate_cells(model, X[:10], y[:10], np.inf)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_classify_names_a_model_error_as_a_failure():
    from types import SimpleNamespace

    error = SimpleNamespace(status=2, message="(HiGHS Status 2: Model error)", x=None, fun=None)
    infeasible = SimpleNamespace(
        status=2, message="The problem is infeasible. (HiGHS Status 8: ...)", x=None, fun=None
    )
    assert _milp.classify(error).status == "failed"
    assert _milp.classify(infeasible).status == "infeasible"


def _binary(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(80, 2)) * [1.0, 100.0] + [5.0, 300.0]
    y = (X[:, 0] - 5 + (X[:, 1] - 300) / 100 > 0).astype(int)
    return X, y


def test_standard_scaler_without_mean_is_read_as_it_transforms():
    """StandardScaler(with_mean=False) keeps a mean_ it never subtracts: the closed form
    of the pipeline as it predicts (w·x/s + b) is the reference."""
    X, y = _binary()
    for scaler in (StandardScaler(with_mean=False), RobustScaler(with_centering=False)):
        pipe = make_pipeline(scaler, LogisticRegression()).fit(X, y)
        s = scaler.scale_
        w = pipe[-1].coef_[0] / s
        b = pipe[-1].intercept_[0]
        want = np.abs(X @ w + b) / np.linalg.norm(w)
        correct = pipe.predict(X) == y
        got = exact_distortion(pipe, X, y, norm=2)
        np.testing.assert_allclose(got[correct], want[correct], rtol=1e-9)


def test_ensemble_behind_a_scaler_matches_enumeration():
    X, y = _units_data(100)
    pipe = make_pipeline(
        StandardScaler(with_mean=False),
        RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0),
    ).fit(X, y)
    scale = 1.0 / pipe[0].scale_
    got = exact_distortion(pipe, X[:8], y[:8], norm=2, time_limit=LIMIT)
    want = enumerate_cells(pipe[-1], X[:8], y[:8], 2, (scale, np.zeros(3), pipe))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_refusals_name_what_is_not_modelled():
    X, y = _binary()
    clipped = make_pipeline(MinMaxScaler(clip=True), LogisticRegression()).fit(X, y)
    with pytest.raises(ValueError, match=r"'minmaxscaler' is MinMaxScaler\(clip=True\)"):
        exact_distortion(clipped, X, y)
    boosted = GradientBoostingClassifier(
        n_estimators=3, init=LogisticRegression(), random_state=0
    ).fit(X, y)
    with pytest.raises(ValueError, match=r"init=LogisticRegression"):
        exact_distortion(boosted, X, y)
    zero = GradientBoostingClassifier(n_estimators=3, init="zero", max_depth=2, random_state=0)
    zero.fit(X, y)
    np.testing.assert_allclose(
        exact_distortion(zero, X[:6], y[:6], time_limit=LIMIT),
        enumerate_cells(zero, X[:6], y[:6], np.inf),
    )
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        exact_distortion(make_pipeline(StandardScaler(), LogisticRegression()), X, y)


def test_regressors_are_refused_by_the_classifier_distortions():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    t = X[:, 0] + 0.1 * rng.normal(size=30)
    svr = SVR().fit(X, t)
    for f in (decision_based_distortion, exact_distortion):
        with pytest.raises(ValueError, match="relative_error_distortion"):
            f(svr, X, t)
    # the siblings: every continuous prediction 'changes', every RPR step 'fails'
    from skrob import GaussianNoise, label_flip_rate, relative_error_distortion, rpr_steps

    with pytest.raises(ValueError, match="rpr_steps measures classifiers"):
        rpr_steps(svr, X, t, perturbation=GaussianNoise(0.1))
    with pytest.raises(ValueError, match="label_flip_rate measures classifiers"):
        label_flip_rate(svr, X, perturbation=GaussianNoise(0.1))
    y = (t > 0).astype(int)
    with pytest.raises(ValueError, match="measures regressors"):
        relative_error_distortion(LogisticRegression().fit(X, y), X, y)
