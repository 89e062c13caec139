"""Minimal distortion of any fitted scikit-learn model, from its predictions (paper 002).

- :func:`relative_error_distortion`: the smallest input change that breaks a regressor's
  prediction (paper 002, §2).
- :func:`decision_based_distortion`: the smallest perturbation found that changes a
  classifier's correct prediction, from ``predict`` alone (HopSkipJump, RayS), for any
  classifier and Pipeline; :class:`DecisionDistortionScorer` makes it a scorer.
- :func:`exact_distortion`: the exact minimum, where the model's decision regions are known
  (linear models, decision trees, tree ensembles by mixed-integer programming).
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_params
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d

from skrob import _decision_attacks as attacks
from skrob import _model_exact as exact
from skrob._progress import progress_bar
from skrob._validation import (
    check_classifier,
    check_regressor,
    entropy,
    frame_like,
    reject_metadata,
    warn_user,
)

_MAX = float(np.finfo(np.float64).max)  # finite parameters: Interval(..., None) admits inf


@validate_params(
    {
        "estimator": [HasMethods(["predict"])],
        "X": ["array-like", "sparse matrix"],
        "y": ["array-like"],
        "tolerance": [Interval(Real, 0, _MAX, closed="right")],
        "max_distortion": [Interval(Real, 0, _MAX, closed="right")],
        "n_grid": [Interval(Integral, 2, None, closed="left")],
        "n_bisect": [Interval(Integral, 0, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def relative_error_distortion(
    estimator, X, y, *, tolerance=0.025, max_distortion=1.0, n_grid=1001, n_bisect=40
):
    """Smallest input change that pushes a correct prediction's relative error over a bound.

    A prediction is correct when ``|ŷ − y| / |y| <= tolerance``. For each correct sample,
    every feature is moved alone, up and down (``x ± δ e_j``); the distortion is the
    smallest ``δ`` over those directions at which the relative error exceeds the
    tolerance: a grid of ``n_grid`` steps up to ``max_distortion`` finds the first
    crossing, then ``n_bisect`` bisection steps pin it down. For one input feature this is
    the paper's search over ``±δ`` (which enumerates δ in steps of 0.0001), exactly.
    Every sample and direction is searched at once: each ``predict`` call carries many
    rows (one call per bisection step for the whole batch).

    Parameters
    ----------
    estimator : fitted regressor with ``predict``
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    tolerance : float, default=0.025
    max_distortion : float, default=1.0
        Largest δ searched; beyond it the sample counts as immune (``inf``).
    n_grid, n_bisect : int

    Returns
    -------
    distortion : ndarray of shape (n_samples,)
        NaN for samples whose prediction is not correct to begin with (or y = 0), ``inf``
        for samples no δ up to ``max_distortion`` breaks.

    References
    ----------
    How Training Data Affect the Accuracy and Robustness of Neural Networks for Image
    Classification. Anonymous authors, ICLR 2019 conference submission (paper 002),
    https://openreview.net/forum?id=HklKWhC5F7

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skrob import relative_error_distortion
    >>> X = np.array([[1.0], [2.0], [3.0]]); y = np.array([2.0, 4.0, 6.0])
    >>> model = LinearRegression().fit(X, y)
    >>> relative_error_distortion(model, X, y, tolerance=0.1).round(4).tolist()
    [0.1, 0.2, 0.3]
    """
    wrap = frame_like(X)
    X = check_array(X, dtype=np.float64, input_name="X")
    y = column_or_1d(check_array(y, ensure_2d=False, dtype=np.float64, input_name="y"), warn=True)
    check_consistent_length(X, y)
    check_regressor(estimator, "relative_error_distortion")

    rel_error = _RelativeError(estimator, wrap)
    out = np.full(len(y), np.nan)
    correct = np.flatnonzero(rel_error(X, y) <= tolerance)
    if not correct.size:
        return out
    grid = np.linspace(0.0, max_distortion, n_grid)[1:]
    # Directions +e_0, -e_0, +e_1, ...: (sample, direction) pairs, all searched at once.
    signs = np.tile([1.0, -1.0], X.shape[1])
    features = np.repeat(np.arange(X.shape[1]), 2)
    samples, dirs, lo, hi = _first_crossings(
        rel_error, X, y, correct, grid, signs, features, tolerance
    )
    rows = np.arange(samples.size)
    for _ in range(n_bisect):  # one predict per step for every (sample, direction)
        mid = (lo + hi) / 2
        Z = X[samples].copy()
        Z[rows, features[dirs]] += signs[dirs] * mid
        above = rel_error(Z, y[samples]) > tolerance
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    out[correct] = np.inf
    np.minimum.at(out, samples, hi)
    return out


class _RelativeError:
    """``|predict(Z) - y| / |y|``; a model fitted on a DataFrame gets one, with its columns
    (no warning per call)."""

    def __init__(self, estimator, wrap):
        self.estimator, self.wrap = estimator, wrap

    def __call__(self, Z, targets):
        Z = self.wrap(Z)
        pred = np.asarray(self.estimator.predict(Z), dtype=np.float64)
        if pred.shape != targets.shape:
            raise ValueError(
                f"{type(self.estimator).__name__}.predict returned shape {pred.shape} for "
                f"{targets.shape[0]} samples; one target per sample is needed."
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.abs(pred - targets) / np.abs(targets)


def _first_crossings(rel_error, X, y, correct, grid, signs, features, tolerance):
    """Per (sample, direction) whose grid crosses the tolerance: the bracket around the
    first crossing, ``(samples, directions, lo, hi)``; chunks of samples per predict."""
    d = X.shape[1]
    per_sample = 2 * d * grid.size
    chunk = max(1, _ROWS_PER_PREDICT // per_sample)
    lo_all, hi_all, pair_sample, pair_dir = [], [], [], []
    for start in range(0, correct.size, chunk):
        idx = correct[start : start + chunk]
        Z = np.repeat(X[idx], per_sample, axis=0).reshape(idx.size, 2 * d, grid.size, d)
        for k in range(2 * d):
            Z[:, k, :, features[k]] += signs[k] * grid
        broken = rel_error(Z.reshape(-1, d), np.repeat(y[idx], per_sample)) > tolerance
        broken = broken.reshape(idx.size, 2 * d, grid.size)
        s_idx, d_idx = np.nonzero(broken.any(axis=2))
        kk = broken.argmax(axis=2)[s_idx, d_idx]
        lo_all.append(np.where(kk > 0, grid[np.maximum(kk - 1, 0)], 0.0))
        hi_all.append(grid[kk])
        pair_sample.append(idx[s_idx])
        pair_dir.append(d_idx)
    return tuple(np.concatenate(p) for p in (pair_sample, pair_dir, lo_all, hi_all))


# Rows per predict call in the grid search.
_ROWS_PER_PREDICT = 1 << 18


# --------------------------------------------------------------------------- classifiers
def _box(clip, n_features, owner):
    """``clip`` -> (lo, hi) arrays of shape (n_features,), ±inf on open sides.

    ``clip`` is None (no box) or a pair (low, high), each None, a finite number, or one
    finite number per feature.
    """
    lo, hi = np.full(n_features, -np.inf), np.full(n_features, np.inf)
    if clip is None:
        return lo, hi
    try:
        low, high = clip
    except (TypeError, ValueError):
        raise ValueError(
            f"The 'clip' parameter of {owner} must be a pair (low, high); got {clip!r}."
        ) from None
    sides = []
    for name, value, default in (("low", low, lo), ("high", high, hi)):
        if value is None:
            sides.append(default)
            continue
        try:
            v = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"The 'clip' parameter of {owner}: {name} must be a number, one per "
                f"feature, or None; got {value!r}."
            ) from None
        if v.ndim > 1 or (v.ndim == 1 and v.shape[0] != n_features):
            raise ValueError(
                f"The 'clip' parameter of {owner}: {name} must be a number or "
                f"{n_features} numbers (one per feature); got shape {v.shape}."
            )
        if not np.all(np.isfinite(v)):
            raise ValueError(
                f"The 'clip' parameter of {owner}: {name} must be finite (None leaves a "
                f"side open); got {value!r}."
            )
        sides.append(np.broadcast_to(v, n_features).astype(np.float64))
    lo, hi = sides
    if not np.all(lo < hi):
        raise ValueError(
            f"The 'clip' parameter of {owner} must have low < high for every feature; got {clip!r}."
        )
    return lo, hi


def _check_data(X, y, clip, owner):
    wrap = frame_like(X)
    X = check_array(X, dtype=np.float64, input_name="X")
    y = np.asarray(y)
    if y.ndim != 1:
        y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    lo, hi = _box(clip, X.shape[1], owner)
    outside = np.flatnonzero(((X < lo) | (X > hi)).any(axis=1))
    if outside.size:
        raise ValueError(
            f"{owner}: {outside.size} rows of X lie outside the box 'clip' (the first is row "
            f"{outside[0]}); every sample must be inside the box it is perturbed in."
        )
    return wrap, X, y, lo, hi


def _predict(estimator, wrap, X, y):
    pred = np.asarray(estimator.predict(wrap(X)))
    if pred.shape != y.shape:
        raise ValueError(
            f"{type(estimator).__name__}.predict returned shape {pred.shape}; one label per "
            f"sample is needed (y has shape {y.shape})."
        )
    return pred


def _norm(norm, owner, allowed=(np.inf, 2)):
    p = np.inf if (norm == "inf" or (isinstance(norm, Real) and np.isinf(norm))) else norm
    if p not in allowed:
        names = " or ".join("np.inf" if a == np.inf else str(a) for a in allowed)
        raise ValueError(f"The 'norm' parameter of {owner} must be {names}; got {norm!r}.")
    return p


_DECISION_PARAMS = {
    "estimator": [HasMethods(["predict"])],
    "X": ["array-like", "sparse matrix"],  # sparse: check_array's own error (densify it)
    "y": ["array-like"],
    "norm": [StrOptions({"inf"}), Real],
    "method": [StrOptions({"auto", "hsj", "ray"})],
    "clip": [tuple, list, None],
    "max_queries": [Interval(Integral, 100, None, closed="left")],
    "tol": [Interval(Real, 0, 0.1, closed="neither")],
    "n_starts": [Interval(Integral, 1, None, closed="left")],
    "random_state": ["random_state"],
    "return_adversarial": ["boolean"],
    "verbose": ["verbose"],
}


@validate_params(_DECISION_PARAMS, prefer_skip_nested_validation=True)
def decision_based_distortion(
    estimator,
    X,
    y,
    *,
    norm=np.inf,
    method="auto",
    clip=None,
    max_queries=5000,
    tol=1e-4,
    n_starts=3,
    random_state=None,
    return_adversarial=False,
    verbose=0,
):
    """Smallest perturbation found that changes each correct prediction, from ``predict``.

    A decision-based attack: it needs nothing of the model but ``predict``, so it measures
    any fitted classifier (gradient boosting, forests, SVMs, k-nearest neighbours, a
    Pipeline of them) in the units of its input. Each sample starts from the nearest
    rows of X that the model predicts differently (``n_starts`` of them), bisected to the
    decision boundary; then

    - ``method="hsj"``: HopSkipJump (Chen, Jordan & Wainwright, 2020; L2 and L∞): the
      boundary's normal is estimated from the labels of random probes around the current
      boundary point, a geometric step follows it, and a bisection returns to the
      boundary;
    - ``method="ray"`` (L∞ only): RayS (Chen & Gu, 2020): the smallest radius along sign
      directions, improved by flipping blocks of signs;
    - ``method="auto"``: L∞ runs the ray search on half the budget, then HopSkipJump from
      its best point; L2 runs HopSkipJump.

    All samples advance together, so each ``predict`` call carries many rows. Every
    returned point is checked by ``predict`` (its label differs from y) and lies in the box;
    norms are computed in float64. The result is an upper bound on the true minimal
    distortion (:func:`exact_distortion` gives the minimum where it is known).

    Parameters
    ----------
    estimator : fitted classifier with ``predict``
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        True labels.
    norm : np.inf or 2, default=np.inf
    method : {"auto", "hsj", "ray"}, default="auto"
    clip : (low, high) or None, default=None
        The box the perturbed points must stay in: each side None (open), a number, or one
        number per feature. X must lie inside it.
    max_queries : int, default=5000
        Rows of ``predict`` each sample may ask (its query budget).
    tol : float, default=1e-4
        Relative precision of each bisection to the boundary.
    n_starts : int, default=3
        Differently predicted rows of X each sample starts from.
    random_state : int, RandomState instance or None, default=None
    return_adversarial : bool, default=False
        Also return the adversarial points (NaN rows where there is none).
    verbose : int, default=0
        Show a progress bar over the queries (up to ``max_queries`` per correctly
        classified sample) when positive.

    Returns
    -------
    distortion : ndarray of shape (n_samples,)
        NaN for samples misclassified to begin with; ``inf`` where no adversarial point was
        found inside the box within the budget.
    X_adv : ndarray of shape (n_samples, n_features), only with ``return_adversarial``

    References
    ----------
    How Training Data Affect the Accuracy and Robustness of Neural Networks for Image
    Classification. Anonymous authors, ICLR 2019 conference submission (paper 002),
    https://openreview.net/forum?id=HklKWhC5F7

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from skrob import decision_based_distortion
    >>> X, y = load_iris(return_X_y=True)
    >>> forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    >>> d = decision_based_distortion(forest, X[:5], y[:5], max_queries=500, random_state=0)
    >>> bool((d > 0).all())
    True
    """
    owner = "decision_based_distortion"
    norm = _norm(norm, owner)
    if method == "ray" and norm != np.inf:
        raise ValueError("method='ray' searches sign directions: it is L∞ only (norm=np.inf).")
    wrap, X, y, lo, hi = _check_data(X, y, clip, owner)
    check_classifier(estimator, owner, y)
    out = np.full(len(y), np.nan)
    X_adv = np.full(X.shape, np.nan)
    pred = _predict(estimator, wrap, X, y)
    correct = np.flatnonzero(pred == y)
    if correct.size:
        rng = np.random.default_rng(entropy(random_state))
        x0 = X[correct]
        bar = progress_bar(verbose, max_queries * correct.size, "decision-based", unit="query")
        oracle = attacks.Oracle(estimator, wrap, y[correct], max_queries, bar)
        idx = np.arange(correct.size)
        xb = _starting_points(oracle, x0, y[correct], X, pred, lo, hi, norm, rng, tol, n_starts)
        xb = _search(oracle, x0, xb, idx, lo, hi, norm, method, rng, tol)
        # the final check: every point kept is adversarial and in the box
        found = np.flatnonzero(np.isfinite(xb[:, 0]))
        ok = oracle(xb[found], idx[found]) & np.all((xb[found] >= lo) & (xb[found] <= hi), axis=1)
        if not ok.all():  # only a model whose predictions change from call to call
            warn_user(
                f"{int((~ok).sum())} adversarial points did not change "
                f"{type(estimator).__name__}'s prediction when checked again; they are "
                "dropped (inf)."
            )
        xb[found[~ok]] = np.nan
        d = np.full(correct.size, np.inf)
        good = found[ok]
        d[good] = attacks.distance(xb[good], x0[good], norm)
        out[correct] = d
        X_adv[correct] = xb
        bar.close()
    return (out, X_adv) if return_adversarial else out


def _search(oracle, x0, xb, idx, lo, hi, norm, method, rng, tol):
    """The attack phases of ``method``, each on its share of the remaining budget."""
    if method == "ray" or method == "auto":
        # L2 too: the sign directions find the axis-aligned regions of trees and forests
        oracle.phase(1.0 if method == "ray" else 0.5 if norm == np.inf else 0.3)
        xr = attacks.ray_search(oracle, x0, _fill(xb, x0), idx, lo, hi, rng, tol)
        if norm == 2:  # the ray's point, bisected along the segment from x0
            f = np.flatnonzero(np.isfinite(xr[:, 0]))
            xr[f] = attacks.bisect(oracle, x0[f], xr[f], idx[f], 2, tol)
        xb = _closer(x0, xb, xr, norm)
    if method in ("hsj", "auto"):
        oracle.phase(0.6 if (method == "auto" and norm == 2) else 1.0)
        found = np.flatnonzero(np.isfinite(xb[:, 0]))
        xb[found], _ = attacks.hop_skip_jump(
            oracle, x0[found], xb[found], idx[found], lo, hi, norm, rng, tol
        )
    if method == "auto" and norm == 2:
        oracle.phase(1.0)
        found = np.flatnonzero(np.isfinite(xb[:, 0]))
        xb[found] = attacks.coordinate_shrink(oracle, x0[found], xb[found], idx[found], norm, tol)
    oracle.phase(1.0)
    return xb


def _fill(xb, x0):
    """Adversarial rows, or the sample itself where there is none (the search skips those)."""
    return np.where(np.isfinite(xb), xb, x0)


def _closer(x0, xa, xb, norm):
    """Per sample, the closer of two adversarial points (NaN rows: none)."""
    da, db = (
        np.where(np.isfinite(x[:, 0]), attacks.distance(np.nan_to_num(x), x0, norm), np.inf)
        for x in (xa, xb)
    )
    return np.where((db < da)[:, None], xb, xa)


def _starting_points(oracle, x0, labels, X, pred, lo, hi, norm, rng, tol, n_starts):
    """Per sample: the best boundary point among its nearest differently predicted rows of
    X (bisected to the boundary), or random points in the box; NaN rows where none."""
    m, d = x0.shape
    best = np.full((m, d), np.nan)
    best_d = np.full(m, np.inf)
    chunk = max(1, 2**22 // max(1, len(X) * d))
    starts, owners = [], []
    classes = np.unique(pred)
    for s in range(0, m, chunk):
        dist = attacks.distance(x0[s : s + chunk, None, :], X[None, :, :], norm)
        # the nearest row of each other predicted class, the n_starts nearest of them:
        # starting towards several classes keeps the search off one class's boundary
        near_d = np.full((dist.shape[0], classes.size), np.inf)
        near_i = np.zeros((dist.shape[0], classes.size), dtype=np.intp)
        for c, cls in enumerate(classes):
            cols = np.flatnonzero(pred == cls)
            dc = dist[:, cols]
            dc[labels[s : s + chunk] == cls] = np.inf
            j = np.argmin(dc, axis=1)
            near_i[:, c], near_d[:, c] = cols[j], dc[np.arange(len(j)), j]
        k = min(n_starts, classes.size)
        pick = np.argsort(near_d, axis=1)[:, :k]
        for j in range(k):
            col = pick[:, j]
            rows = near_i[np.arange(col.size), col]
            keep = np.isfinite(near_d[np.arange(col.size), col])
            starts.append(X[rows[keep]])
            owners.append(s + np.flatnonzero(keep))
    if starts:
        owner = np.concatenate(owners)
        start = np.concatenate(starts)
        if owner.size:
            b = attacks.bisect(oracle, x0[owner], start, owner, norm, tol)
            bd = attacks.distance(b, x0[owner], norm)
            order = np.lexsort((bd, owner))  # per owner, its closest first
            first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
            best[owner[first]], best_d[owner[first]] = b[first], bd[first]
    # Samples with no differently predicted row: random points, wider and wider
    std = X.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    for k in range(12):
        none = np.flatnonzero(~np.isfinite(best_d))
        if not none.size:
            break
        if np.all(np.isfinite(hi - lo)):
            cand = rng.uniform(lo, hi, (none.size, d))
        else:
            cand = x0[none] + rng.standard_normal((none.size, d)) * std * 2.0**k
            cand = np.clip(cand, lo, hi)
        adv = oracle(cand, none)
        hit = none[adv]
        if hit.size:
            b = attacks.bisect(oracle, x0[hit], cand[adv], hit, norm, tol)
            best[hit], best_d[hit] = b, attacks.distance(b, x0[hit], norm)
    return best


@validate_params(
    {
        "estimator": [HasMethods(["predict"])],
        "X": ["array-like", "sparse matrix"],
        "y": ["array-like"],
        "norm": [StrOptions({"inf"}), Real],
        "clip": [tuple, list, None],
        "time_limit": [Interval(Real, 0, None, closed="neither")],
        "return_bounds": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def exact_distortion(
    estimator, X, y, *, norm=np.inf, clip=None, time_limit=10.0, return_bounds=False
):
    """Exact minimal distortion of models whose decision regions are known.

    The infimum of ``‖x' − x‖`` over the points ``x'`` in the box that the model predicts
    differently from a correct prediction at ``x``:

    - linear classifiers (``coef_``, ``intercept_``; binary and multiclass argmax): each
      other class's region is a half-space; inside a box the smallest step into it is a
      separable program solved exactly on its sorted breakpoints;
    - ``DecisionTreeClassifier``: the distance to the nearest leaf box of another class;
    - ``RandomForestClassifier``, ``ExtraTreesClassifier`` and
      ``GradientBoostingClassifier``: a mixed-integer linear program over the cells between
      consecutive thresholds (Kantchelian et al., 2016, "Evasion and hardening of tree
      ensemble classifiers"), one per other class, solved by HiGHS
      (:func:`scipy.optimize.milp`) within ``time_limit`` seconds per sample; the chosen
      point's class is checked exactly. L2 is exact too: the squared distance is
      separable over the cells.

    Each of them may be the last step of a Pipeline whose earlier steps are per-feature
    scalers (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler): distances are in the
    pipeline's input units. These are references for :func:`decision_based_distortion`,
    which gives upper bounds for any model.

    Parameters
    ----------
    estimator : fitted classifier of a kind above
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        True labels.
    norm : np.inf, 2 or 1, default=np.inf
    clip : (low, high) or None, default=None
        The box: each side None, a number or one number per feature.
    time_limit : float, default=10.0
        Seconds per sample for the tree-ensemble programs.
    return_bounds : bool, default=False
        Return ``(lower, upper)``: equal where the minimum is proven; a bracket where the
        time limit struck.

    Returns
    -------
    distortion : ndarray of shape (n_samples,)
        NaN for misclassified samples (and, with a warning, where the time limit struck
        before the minimum was proven); ``inf`` where no point of another class is in the box.

    References
    ----------
    How Training Data Affect the Accuracy and Robustness of Neural Networks for Image
    Classification. Anonymous authors, ICLR 2019 conference submission (paper 002),
    https://openreview.net/forum?id=HklKWhC5F7

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skrob import exact_distortion
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0], [3.0, 1.0]])
    >>> y = np.array([0, 0, 1, 1])
    >>> model = LogisticRegression().fit(X, y)
    >>> exact_distortion(model, X, y, norm=2).round(3).tolist()
    [1.5, 1.5, 1.5, 1.5]
    """
    owner = "exact_distortion"
    norm = _norm(norm, owner, (np.inf, 2, 1))
    wrap, X, y, lo, hi = _check_data(X, y, clip, owner)
    check_classifier(estimator, owner, y)
    model, scale, offset = exact.unwrap_affine(estimator, X.shape[1])
    kind = exact.model_kind(model)
    pred = _predict(estimator, wrap, X, y)
    correct = np.flatnonzero(pred == y)
    lower, upper = np.full(len(y), np.nan), np.full(len(y), np.nan)
    if correct.size:
        Xc, labels = X[correct], y[correct]
        if kind == "linear":
            d = exact.linear_distance(model, scale, offset, Xc, labels, lo, hi, norm)
            lower[correct] = upper[correct] = d
        elif kind == "tree":
            d = exact.tree_distance(model, scale, offset, Xc, labels, lo, hi, norm)
            lower[correct] = upper[correct] = d
        else:
            lo_b, up_b = exact.ensemble_distance(
                model, scale, offset, Xc, labels, lo, hi, norm, time_limit, X, pred
            )
            lower[correct], upper[correct] = lo_b, up_b
    if return_bounds:
        return lower, upper
    open_ = np.flatnonzero(lower < upper)
    if open_.size:
        warn_user(
            f"exact_distortion: the minimum of {open_.size} samples was not proven (the time "
            f"limit of {time_limit} s per sample struck, or HiGHS stopped short); they are "
            "NaN. Pass return_bounds=True for their brackets, or a larger time_limit."
        )
    out = upper.copy()
    out[open_] = np.nan
    return out


class DecisionDistortionScorer(BaseEstimator):
    """Decision-based minimal distortion as a scorer for any classifier (greater is more robust).

    ``statistic="mean"``: the mean of :func:`decision_based_distortion` over the correctly
    classified samples (samples no point was found for are left out, with a warning).
    ``statistic="robust_accuracy"``: the share of *all* samples classified correctly and
    not flipped within ``epsilon``; the attack gives upper bounds on the minimal distortion,
    so this is an upper bound on the true robust accuracy. Distances are in the units of
    X: scale features comparably (or pass per-feature ``clip``) for tabular data.

    ``random_state=None`` means seed 0: every candidate of a search is attacked with the
    same random draws (common random numbers), so scores differ only through the models.

    Parameters
    ----------
    norm : np.inf or 2, default=np.inf
        The norm distances are measured in.
    method : {"auto", "hsj", "ray"}, default="auto"
        The search, as in :func:`decision_based_distortion`.
    clip : (low, high) or None, default=None
        The box the perturbed points must stay in: each side None (open), a number, or one
        number per feature.
    max_queries : int, default=2000
        Rows of ``predict`` each sample may ask.
    tol : float, default=1e-4
        Relative precision of each bisection to the boundary.
    n_starts : int, default=3
        Differently predicted rows of X each sample starts from.
    random_state : int, RandomState instance or None, default=None
        The search's random draws; None is seed 0 (common random numbers).
    statistic : {"mean", "robust_accuracy"}, default="mean"
        What the scorer returns, as above.
    epsilon : float, default=None
        The radius of ``statistic="robust_accuracy"`` (required there).
    verbose : int, default=0
        Show a progress bar when positive.

    References
    ----------
    How Training Data Affect the Accuracy and Robustness of Neural Networks for Image
    Classification. Anonymous authors, ICLR 2019 conference submission (paper 002),
    https://openreview.net/forum?id=HklKWhC5F7

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import GradientBoostingClassifier
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skrob import DecisionDistortionScorer
    >>> X, y = load_iris(return_X_y=True)
    >>> search = GridSearchCV(GradientBoostingClassifier(n_estimators=10, random_state=0),
    ...                       {"max_depth": [1, 2]}, cv=3,
    ...                       scoring=DecisionDistortionScorer(max_queries=300)).fit(X, y)
    >>> search.best_params_["max_depth"] in (1, 2)
    True
    """

    _parameter_constraints = {
        **{
            k: v
            for k, v in _DECISION_PARAMS.items()
            if k not in ("estimator", "X", "y", "return_adversarial")
        },
        "statistic": [StrOptions({"mean", "robust_accuracy"})],
        "epsilon": [Interval(Real, 0, float(np.finfo(np.float64).max), closed="neither"), None],
    }

    def __init__(
        self,
        *,
        norm=np.inf,
        method="auto",
        clip=None,
        max_queries=2000,
        tol=1e-4,
        n_starts=3,
        random_state=None,
        statistic="mean",
        epsilon=None,
        verbose=0,
    ):
        self.norm = norm
        self.method = method
        self.clip = clip
        self.max_queries = max_queries
        self.tol = tol
        self.n_starts = n_starts
        self.random_state = random_state
        self.statistic = statistic
        self.epsilon = epsilon
        self.verbose = verbose

    def __call__(self, estimator, X, y, **kwargs):
        """The statistic of ``estimator``'s distortions on (X, y)."""
        reject_metadata(self, kwargs)
        self._validate_params()
        if self.statistic == "robust_accuracy" and self.epsilon is None:
            raise ValueError(
                "DecisionDistortionScorer(statistic='robust_accuracy') needs epsilon=, the "
                "perturbation budget in the units of X."
            )
        p = self.get_params()
        for k in ("statistic", "epsilon"):
            p.pop(k)
        p["random_state"] = 0 if self.random_state is None else self.random_state
        d = decision_based_distortion(estimator, X, y, **p)
        correct = ~np.isnan(d)
        if self.statistic == "robust_accuracy":
            with np.errstate(invalid="ignore"):
                return float(np.mean(correct & (d > self.epsilon)))
        unbroken = int(np.isinf(d).sum())
        if unbroken:
            warn_user(
                f"{unbroken} of {int(correct.sum())} correctly classified samples were not "
                "flipped inside the box within the query budget; they are left out of the "
                "mean distortion, which therefore understates the model's robustness."
            )
        finite = d[np.isfinite(d)]
        return float(finite.mean()) if finite.size else float("nan")
