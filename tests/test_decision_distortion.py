"""Minimal distortion of any scikit-learn classifier: the exact references against
independent programs and brute force, and the decision-based attacks against them."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq, linprog
from sklearn.datasets import load_digits, load_iris, make_classification
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, PolynomialFeatures, StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

from skrob import DecisionDistortionScorer, decision_based_distortion, exact_distortion

NORMS = [np.inf, 2, 1]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return X[:900], y[:900], X[900:960], y[900:960]


def _affine_decision(model, x):
    """Coefficients of an affine decision function, by differences (an independent route)."""
    f0 = np.atleast_1d(model.decision_function(x[None])[0])
    cols = [np.atleast_1d(model.decision_function((x + e)[None])[0]) - f0 for e in np.eye(x.size)]
    W = np.array(cols).T  # (n_scores, d)
    return W, f0 - W @ x


def _linear_reference(model, x, c_idx, lo, hi, norm):
    """Minimal distortion by scipy's LP (L∞, L1) or SLSQP (L2), one class at a time."""
    W, b = _affine_decision(model, x)
    d = x.size
    rows = [(-W[0], b[0])] if W.shape[0] == 1 and c_idx == 1 else []
    if W.shape[0] == 1 and c_idx == 0:
        rows = [(W[0], -b[0])]
    if W.shape[0] > 1:
        rows = [(W[j] - W[c_idx], b[c_idx] - b[j]) for j in range(W.shape[0]) if j != c_idx]
    best = np.inf
    for a, rhs in rows:  # a·x' >= rhs
        box = [
            (lo_i - xi if np.isfinite(lo_i) else None, hi_i - xi if np.isfinite(hi_i) else None)
            for lo_i, hi_i, xi in zip(lo, hi, x, strict=True)
        ]
        m = rhs - a @ x
        if norm == 2:  # KKT: δ = clip(λa, box), the λ where a·δ(λ) = m, by root finding
            lo_b = np.array([-np.inf if b[0] is None else b[0] for b in box])
            hi_b = np.array([np.inf if b[1] is None else b[1] for b in box])

            def reach(lam, a=a, m=m, lo_b=lo_b, hi_b=hi_b):
                return a @ np.clip(lam * a, lo_b, hi_b) - m

            if m <= 0:
                best = 0.0
            elif reach(1e12) >= 0:
                lam = brentq(reach, 0.0, 1e12, xtol=1e-300, rtol=1e-15, maxiter=500)
                best = min(best, np.linalg.norm(np.clip(lam * a, lo_b, hi_b)))
            continue
        if norm == np.inf:  # variables (δ, t)
            A = np.vstack(
                [np.r_[-a, 0], np.c_[np.eye(d), -np.ones(d)], np.c_[-np.eye(d), -np.ones(d)]]
            )
            res = linprog(
                np.r_[np.zeros(d), 1],
                A_ub=A,
                b_ub=np.r_[-m, np.zeros(2 * d)],
                bounds=[*box, (0, None)],
            )
        else:  # δ = p − q, p, q >= 0
            A = np.r_[-a, a][None]
            bounds = [(0, max(h, 0)) for _, h in box] + [(0, max(-lo_, 0)) for lo_, _ in box]
            res = linprog(np.ones(2 * d), A_ub=A, b_ub=[-m], bounds=bounds)
        if res.status == 0:
            best = min(best, res.fun)
    return best


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize(
    "make",
    [
        lambda: LogisticRegression(max_iter=2000),
        lambda: LinearSVC(C=0.1, random_state=0),
        lambda: make_pipeline(StandardScaler(), RidgeClassifier()),
        lambda: make_pipeline(MinMaxScaler(), StandardScaler(), LogisticRegression(max_iter=500)),
    ],
    ids=["logistic", "linearsvc", "scaled-ridge", "two-scalers"],
)
@pytest.mark.parametrize("n_classes", [2, 4])
def test_exact_linear_matches_lp(make, norm, n_classes):
    X, y = make_classification(
        n_samples=120, n_features=6, n_informative=4, n_classes=n_classes, random_state=0
    )
    X = X * np.array([1, 10, 0.1, 1, 3, 1])  # unequal units: the pipelines fold them in
    model = make().fit(X, y)
    lo, hi = X.min(axis=0) - 0.5, X.max(axis=0) + 0.5
    for clip, (blo, bhi) in [
        (None, (np.full(6, -np.inf), np.full(6, np.inf))),
        ((lo, hi), (lo, hi)),
    ]:
        if clip is None and norm != 2:
            blo, bhi = np.full(6, -1e6), np.full(6, 1e6)  # linprog wants finite boxes here
        d = exact_distortion(model, X[:15], y[:15], norm=norm, clip=clip)
        pred = model.predict(X[:15])
        for i in range(15):
            if pred[i] != y[i]:
                assert np.isnan(d[i])
                continue
            c_idx = int(np.searchsorted(model.classes_, y[i]))
            ref = _linear_reference(model, X[i], c_idx, blo, bhi, norm)
            np.testing.assert_allclose(d[i], ref, rtol=1e-6, atol=1e-9)


def test_exact_linear_box_blocks_every_class():
    # a box too small to reach the boundary: no adversarial point exists, inf
    X = np.array([[0.0], [1.0], [4.0], [5.0]])
    y = np.array([0, 0, 1, 1])
    model = LogisticRegression().fit(X, y)
    d = exact_distortion(model, X, y, clip=(-1.0, 2.0)[:1] + (None,), norm=2)
    assert np.isfinite(d).all()
    d = exact_distortion(model, X[:2], y[:2], clip=(-1.0, 1.5))
    assert np.isinf(d).all()


def _cell_brute_force(model, x, thresholds, lo, hi, norm):
    """The minimal distortion of an axis-aligned model by enumerating every cell between
    consecutive thresholds: each cell's point nearest to x, predicted in one call.

    Trees compare ``float32(x) <= threshold``: a cell's end points are the float32 values
    on either side of each threshold, which the model sees exactly, so these distances are
    attained; the exact infimum lies at most half a float32 step below them.
    """
    per_feature = []
    for f, thr in enumerate(thresholds):
        left = [float(_f32_below(t)) for t in np.sort(thr)]  # largest float32 <= t: left
        right = [float(np.nextafter(np.float32(v), np.float32(np.inf))) for v in left]
        cells = zip([-np.inf, *right], [*left, np.inf], strict=True)  # [a, b], closed
        pts = []
        for a, b in cells:
            if not (a <= hi[f] and b >= lo[f]):
                continue  # the cell is outside the box
            p = min(max(x[f], a, lo[f]), b, hi[f])
            pts.append(p)
        per_feature.append(pts)
    P = np.array(list(itertools.product(*per_feature)))
    adv = model.predict(P) != model.predict(x[None])[0]
    if not adv.any():
        return np.inf
    return np.linalg.norm(P[adv] - x, ord=norm, axis=1).min()


def _f32_below(t):
    t32 = np.float32(t)
    return t32 if float(t32) <= t else np.nextafter(t32, np.float32(-np.inf))


def _assert_infimum(exact, attained, scale):
    """exact <= attained, apart by no more than float32 steps of the thresholds."""
    assert exact <= attained * (1 + 1e-12) + 1e-300
    np.testing.assert_allclose(exact, attained, rtol=1e-6, atol=1e-6 * scale)


def _thresholds(model, d):
    trees = getattr(model, "estimators_", [model])
    trees = np.ravel(trees)
    thr = [[] for _ in range(d)]
    for t in trees:
        for f, v in zip(t.tree_.feature, t.tree_.threshold, strict=True):
            if f >= 0:
                thr[f].append(v)
    return [np.unique(v) for v in thr]


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize(
    "model",
    [
        DecisionTreeClassifier(max_depth=5, random_state=0),
        RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0),
        ExtraTreesClassifier(n_estimators=3, max_depth=3, random_state=0),
        GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0),
    ],
    ids=["tree", "forest", "extra-trees", "boosting"],
)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_exact_trees_match_cell_enumeration(model, norm, n_classes):
    X, y = make_classification(
        n_samples=150,
        n_features=2,
        n_informative=2,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        random_state=1,
    )
    model.fit(X, y)
    lo, hi = X.min(axis=0), X.max(axis=0)
    lower, upper = exact_distortion(
        model, X[:12], y[:12], norm=norm, clip=(lo, hi), return_bounds=True
    )
    thr = _thresholds(model, 2)
    pred = model.predict(X[:12])
    for i in range(12):
        if pred[i] != y[i]:
            assert np.isnan(upper[i])
            continue
        ref = _cell_brute_force(model, X[i], thr, lo, hi, norm)
        assert lower[i] == upper[i]
        if np.isinf(ref):
            assert np.isinf(upper[i])
        else:
            _assert_infimum(upper[i], ref, np.abs(X).max())


@pytest.mark.parametrize("norm", NORMS)
def test_exact_tree_closed_form_equals_program(digits, norm):
    # the leaf-box closed form and the mixed-integer program agree on a 64-feature tree
    Xtr, ytr, Xte, yte = digits
    forest = RandomForestClassifier(
        n_estimators=1, bootstrap=False, max_features=None, max_depth=5, random_state=0
    ).fit(Xtr, ytr)
    tree = forest.estimators_[0]
    closed = exact_distortion(tree, Xte[:20], yte[:20].astype(float), norm=norm, clip=(0, 1))
    program = exact_distortion(forest, Xte[:20], yte[:20], norm=norm, clip=(0, 1))
    np.testing.assert_allclose(program, closed, rtol=1e-9)


def test_exact_pipeline_is_in_raw_units():
    X, y = load_iris(return_X_y=True)
    X = X * np.array([1.0, 100.0, 0.01, 1.0])
    scaled = StandardScaler().fit(X)
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(scaled.transform(X), y)
    pipe = make_pipeline(scaled, tree)
    d = exact_distortion(pipe, X[::10], y[::10], norm=np.inf)
    for x, t, di in zip(X[::10], y[::10], d, strict=True):
        if pipe.predict(x[None])[0] != t:
            assert np.isnan(di)
            continue
        # the brute force in the scaled space, where the tree's cells are, mapped back
        ref = _scaled_brute_force(pipe, tree, scaled, x)
        _assert_infimum(di, ref, 100.0)


def _open(d):
    return np.full(d, -np.inf), np.full(d, np.inf)


def _scaled_brute_force(pipe, tree, scaler, x):
    z = scaler.transform(x[None])[0]
    best = np.inf
    thr = _thresholds(tree, z.size)
    per_feature = []
    for f, ts in enumerate(thr):
        left = [float(_f32_below(t)) for t in np.sort(ts)]
        right = [float(np.nextafter(np.float32(v), np.float32(np.inf))) for v in left]
        per_feature.append(
            [min(max(z[f], a), b) for a, b in zip([-np.inf, *right], [*left, np.inf], strict=True)]
        )
    Z = np.array(list(itertools.product(*per_feature)))
    adv = tree.predict(Z) != tree.predict(z[None])[0]
    if adv.any():
        # per feature, the raw distance of the scaled step
        best = (np.abs(Z[adv] - z) * scaler.scale_).max(axis=1).min()
    return best


def test_exact_time_limit_gives_a_bracket():
    X, y = load_digits(return_X_y=True)
    X = X / 16
    forest = RandomForestClassifier(n_estimators=30, max_depth=8, random_state=0).fit(X, y)
    lower, upper = exact_distortion(
        forest, X[:2], y[:2], clip=(0, 1), time_limit=0.05, return_bounds=True
    )
    assert np.all(lower <= upper)
    with pytest.warns(UserWarning, match="time limit"):
        d = exact_distortion(forest, X[:2], y[:2], clip=(0, 1), time_limit=0.05)
    assert np.all(np.isnan(d) | (d == upper))


@pytest.mark.parametrize(
    "model",
    [
        SVC(kernel="linear"),  # one-vs-one votes: not an argmax of affine scores
        KNeighborsClassifier(),
        make_pipeline(PolynomialFeatures(), LogisticRegression()),
    ],
)
def test_exact_unsupported_models_are_named(model):
    X, y = load_iris(return_X_y=True)
    model.fit(X, y)
    with pytest.raises(ValueError, match="decision_based_distortion|scalers"):
        exact_distortion(model, X[:5], y[:5])


# --------------------------------------------------------------------------- decision based
def _check_points(model, X, y, d, X_adv, clip, norm):
    ok = np.isfinite(d)
    assert np.all(model.predict(X_adv[ok]) != y[ok])
    if clip is not None:
        assert np.all((X_adv[ok] >= clip[0]) & (X_adv[ok] <= clip[1]))
    np.testing.assert_allclose(d[ok], np.linalg.norm(X_adv[ok] - X[ok], ord=norm, axis=1))


@pytest.mark.parametrize("norm", [np.inf, 2])
@pytest.mark.parametrize(
    "model",
    [LogisticRegression(max_iter=2000), DecisionTreeClassifier(max_depth=8, random_state=0)],
    ids=["linear", "tree"],
)
def test_decision_based_never_below_exact_and_close(digits, model, norm):
    Xtr, ytr, Xte, yte = digits
    model.fit(Xtr, ytr)
    exact = exact_distortion(model, Xte, yte, norm=norm, clip=(0, 1))
    d, X_adv, success = decision_based_distortion(
        model, Xte, yte, norm=norm, clip=(0, 1), random_state=0, return_adversarial=True
    )
    np.testing.assert_array_equal(np.isnan(d), np.isnan(exact))
    ok = ~np.isnan(d)
    assert np.all(d[ok] >= exact[ok] * (1 - 1e-9))  # an attack's point is never closer
    assert np.median(d[ok] / exact[ok]) <= 1.05
    _check_points(model, Xte, yte, d, X_adv, (0, 1), norm)


def test_decision_based_pipeline_in_raw_units():
    X, y = load_iris(return_X_y=True)
    X = X * np.array([1.0, 100.0, 0.01, 1.0])
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    exact = exact_distortion(pipe, X, y, norm=2)
    d, X_adv, success = decision_based_distortion(
        pipe, X, y, norm=2, random_state=0, return_adversarial=True, max_queries=3000
    )
    ok = ~np.isnan(d)
    assert np.all(d[ok] >= exact[ok] * (1 - 1e-9))
    assert np.median(d[ok] / exact[ok]) <= 1.05
    _check_points(pipe, X, y, d, X_adv, None, 2)


@pytest.mark.parametrize("method", ["auto", "hsj", "ray"])
def test_decision_based_is_deterministic_and_verified(method):
    X, y = load_iris(return_X_y=True)
    model = KNeighborsClassifier(5).fit(X, y)
    kw = dict(method=method, max_queries=600, random_state=3, return_adversarial=True)
    d1, a1, s1 = decision_based_distortion(model, X[::5], y[::5], **kw)
    d2, a2, s2 = decision_based_distortion(model, X[::5], y[::5], **kw)
    np.testing.assert_array_equal(d1, d2)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(np.isnan(d1), model.predict(X[::5]) != y[::5])
    np.testing.assert_array_equal(s1, np.isfinite(d1))
    _check_points(model, X[::5], y[::5], d1, a1, None, np.inf)


def test_decision_based_frames_and_box_per_feature():
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    lo, hi = X.min().to_numpy(), X.max().to_numpy()
    with pytest.warns(None) if False else _no_feature_name_warning():
        d, X_adv, success = decision_based_distortion(
            model,
            X[::10],
            y[::10],
            clip=(lo, hi),
            max_queries=500,
            random_state=0,
            return_adversarial=True,
        )
    ok = np.isfinite(d)
    assert ok.any()
    assert np.all((X_adv[ok] >= lo) & (X_adv[ok] <= hi))
    assert np.all(model.predict(pd.DataFrame(X_adv[ok], columns=X.columns)) != y[::10][ok])


class _no_feature_name_warning:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.filterwarnings("error", message=".*feature names.*")

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


def test_decision_based_no_adversarial_in_box_is_inf():
    X = np.array([[0.0], [1.0], [4.0], [5.0]])
    y = np.array([0, 0, 1, 1])
    model = LogisticRegression().fit(X, y)
    d = decision_based_distortion(
        model, X[:2], y[:2], clip=(-1.0, 1.5), max_queries=200, random_state=0
    )
    assert np.isinf(d).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"norm": 1}, "norm"),
        ({"method": "ray", "norm": 2}, "L∞ only"),
        ({"clip": (0.0, np.ones(3))}, "one per feature"),
        ({"clip": (1.0, 0.0)}, "low < high"),
        ({"clip": (0.0, np.nan)}, "finite"),
        ({"clip": (0.0, 0.5)}, "outside the box"),
    ],
)
def test_decision_based_errors_name_the_argument(kwargs, match):
    X, y = load_iris(return_X_y=True)
    X = X / 8
    model = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match=match):
        decision_based_distortion(model, X, y, **kwargs)


def test_scorer_in_grid_search_is_finite_and_reproducible():
    X, y = load_iris(return_X_y=True)
    scorer = DecisionDistortionScorer(max_queries=300)
    grid = {"max_depth": [1, 2]}

    def run():
        return (
            GridSearchCV(
                GradientBoostingClassifier(n_estimators=10, random_state=0),
                grid,
                cv=3,
                scoring=scorer,
            )
            .fit(X, y)
            .cv_results_["mean_test_score"]
        )

    first = run()
    assert np.all(np.isfinite(first)) and np.all(first > 0)
    np.testing.assert_array_equal(first, run())


def test_scorer_robust_accuracy_is_a_share():
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    d = decision_based_distortion(model, X, y, max_queries=300, random_state=0)
    scorer = DecisionDistortionScorer(
        max_queries=300, statistic="robust_accuracy", epsilon=0.2, random_state=0
    )
    assert scorer(model, X, y) == pytest.approx(np.mean(~np.isnan(d) & (d > 0.2)))
    with pytest.raises(ValueError, match="epsilon"):
        DecisionDistortionScorer(statistic="robust_accuracy")(model, X, y)
