"""Exact minimal distortion of scikit-learn models whose decision regions are known.

- Linear classifiers (``LinearClassifierMixin``): the region of each other class is a
  half-space; the smallest perturbation into it, inside a box, is a separable program whose
  optimum is found by sorting breakpoints (L∞, L2, L1; :func:`halfspace_distance`).
- Decision trees: the input space is a union of leaf boxes; the distance to each leaf box
  of another class is closed-form (:func:`tree_distance`).
- Tree ensembles (random forests, extra trees, gradient boosting): a mixed-integer linear
  program over the cells between consecutive thresholds of each feature (Kantchelian et
  al., 2016), solved by HiGHS through :func:`scipy.optimize.milp`, with a time limit that
  leaves a bracket (:func:`ensemble_distance`).

A Pipeline whose earlier steps are per-feature affine scalers is folded into the model, so
distances are in the pipeline's input units. Distances are infima: a tree's left branch is
``x <= threshold``, so a point just above a threshold is reached only in the limit.
"""

import time

import numpy as np
import scipy.sparse as sp
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier
from sklearn.utils.validation import check_is_fitted

from skrob import _milp
from skrob._affine import per_feature
from skrob._compat import LinearClassifierMixin

SUPPORTED = (
    "linear classifiers (LogisticRegression, LinearSVC, RidgeClassifier, SGDClassifier, "
    "Perceptron, LinearDiscriminantAnalysis), DecisionTreeClassifier, RandomForestClassifier, "
    "ExtraTreesClassifier and GradientBoostingClassifier, alone or at the end of a Pipeline "
    "of per-feature scalers (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler)"
)


# --------------------------------------------------------------------------- pipelines
def unwrap_affine(estimator, n_features):
    """``(final_estimator, scale, offset)``: the final step sees ``x * scale + offset``.

    Every step is read as it transforms (:func:`skrob._affine.per_feature`); a step that
    is not a per-feature affine map, or that clips (``MinMaxScaler(clip=True)``), is
    refused with an error that names it. An unfitted estimator is an error too.
    """
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    try:
        check_is_fitted(estimator)
        check_is_fitted(final)
    except NotFittedError:
        raise NotFittedError(
            f"exact_distortion needs a fitted model; this {type(estimator).__name__} is not "
            "fitted yet. Call fit first."
        ) from None
    scale, offset = np.ones(n_features), np.zeros(n_features)
    if not isinstance(estimator, Pipeline):
        return estimator, scale, offset
    for name, step in estimator.steps[:-1]:
        read = per_feature(step, n_features, name)
        if read is None:
            raise ValueError(
                f"Exact minimal distortion folds only per-feature affine scalers into the "
                f"model; the Pipeline step {name!r} is a {type(step).__name__}. Supported: "
                f"{SUPPORTED}."
            )
        s, o, clip = read
        if clip is not None:
            raise ValueError(
                f"The Pipeline step {name!r} is MinMaxScaler(clip=True): its clipping makes "
                "the model constant beyond the feature range, which exact_distortion does "
                "not model. Refit with clip=False, or pass clip= (the box) to "
                "exact_distortion and a model without the clipping step."
            )
        if not (np.all(np.isfinite(s)) and np.all(s > 0)):
            raise ValueError(f"The Pipeline step {name!r} has a non-positive or non-finite scale.")
        scale, offset = scale * s, offset * s + o
    return final, scale, offset


def model_kind(model):
    if isinstance(model, LinearClassifierMixin):
        return "linear"
    if isinstance(model, DecisionTreeClassifier | ExtraTreeClassifier):
        return "tree"
    if isinstance(
        model, RandomForestClassifier | ExtraTreesClassifier | GradientBoostingClassifier
    ):
        return "ensemble"
    raise ValueError(
        f"Exact minimal distortion is known for {SUPPORTED}; got {type(model).__name__}. "
        "Use skrob.decision_based_distortion for any other classifier."
    )


# --------------------------------------------------------------------------- linear
def halfspace_distance(weights, room, margin, norm):
    """Smallest ``‖δ‖`` with ``Σ weights_i s_i >= margin``, ``0 <= s_i <= room_i``.

    ``weights = |a|`` of the half-space ``a·δ >= margin`` and ``room`` the box's room in
    the direction ``sign(a)``: moving against ``a`` never helps, so the program is
    separable in ``s_i = |δ_i|``. L∞ and L2 optima are ``s_i = min(τ k_i, room_i)`` with
    ``k_i = 1`` (L∞, ``τ = t``) or ``k_i = weights_i`` (L2, the KKT multiplier); the
    ``τ`` reaching the margin is found on the sorted breakpoints ``room_i / k_i``. L1 is a
    fractional knapsack: fill the largest weights first. ``inf`` where the box cannot
    reach the margin; 0 where ``margin <= 0``. Rows are programs: (m, d) arrays.
    """
    weights, room = np.asarray(weights, float), np.asarray(room, float)
    margin = np.asarray(margin, float)
    m, d = weights.shape
    out = np.zeros(m)
    active = (margin > 0) & (weights > 0).any(axis=1)
    out[(margin > 0) & ~active] = np.inf
    if not active.any():
        return out
    w, r, mg = weights[active], room[active], margin[active]
    with np.errstate(invalid="ignore", over="ignore"):
        reach = np.where(w > 0, w * r, 0.0)  # a coordinate's full contribution
        total = reach.sum(axis=1)
    res = np.full(len(mg), np.inf)
    feasible = total >= mg
    if norm == 1:
        order = np.argsort(-w, axis=1, kind="stable")
        wo, ro = np.take_along_axis(w, order, 1), np.take_along_axis(r, order, 1)
        reacho = np.take_along_axis(reach, order, 1)
        before = _exclusive_cumsum(reacho)  # margin reached before coordinate j
        with np.errstate(invalid="ignore", divide="ignore"):
            need = np.clip((mg[:, None] - before) / wo, 0.0, ro)
        need = np.where((wo > 0) & (before < mg[:, None]), need, 0.0)
        res = np.where(feasible, need.sum(axis=1), np.inf)
    else:
        k = np.ones_like(w) if norm == np.inf else w
        with np.errstate(divide="ignore", invalid="ignore"):
            tau = np.where(w > 0, r / k, np.inf)  # breakpoint: coordinate i saturates
        order = np.argsort(tau, axis=1, kind="stable")
        tau_o = np.take_along_axis(tau, order, 1)
        reach_o = np.take_along_axis(reach, order, 1)
        slope_o = np.take_along_axis(np.where(w > 0, w * k, 0.0), order, 1)
        # Before breakpoint j: saturated coordinates give their reach, the rest slope*τ.
        sat = _exclusive_cumsum(reach_o)
        rest = slope_o[:, ::-1].cumsum(axis=1)[:, ::-1]
        with np.errstate(invalid="ignore", over="ignore"):
            at_bp = sat + np.where(np.isfinite(tau_o), rest * tau_o, np.inf)
        j = np.argmax(at_bp >= mg[:, None], axis=1)  # first breakpoint reaching the margin
        rows = np.arange(len(mg))
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (mg - sat[rows, j]) / rest[rows, j]
        t = np.where(feasible, t, np.nan)
        if norm == np.inf:
            res = np.where(feasible, t, np.inf)
        else:
            with np.errstate(invalid="ignore"):
                s = np.minimum(t[:, None] * k, r)
            s = np.where(w > 0, s, 0.0)
            res = np.where(feasible, np.sqrt(np.einsum("ij,ij->i", s, s)), np.inf)
    out[active] = res
    return out


def _exclusive_cumsum(a):
    """Sums of the entries before each one, per row (no inf - inf where a room is open)."""
    out = np.zeros_like(a)
    np.cumsum(a[:, :-1], axis=1, out=out[:, 1:])
    return out


def linear_distance(model, scale, offset, X, labels, lo, hi, norm):
    """Exact distance of each row of X (predicted ``labels``) to another class's region."""
    W = np.atleast_2d(np.asarray(model.coef_, float)) * scale  # in the pipeline's input units
    b = np.ravel(np.asarray(model.intercept_, float)) + np.atleast_2d(model.coef_) @ offset
    if b.size == 1 and W.shape[0] == 1:
        b = np.broadcast_to(b, (1,))
    classes = list(model.classes_)
    idx = np.searchsorted(model.classes_, labels)
    if W.shape[0] == 1:  # binary: class 1 iff w·x + b > 0
        s = X @ W[0] + b[0]
        a = np.where((idx == 1)[:, None], -W[0], W[0])
        margins = [np.abs(s)]
        dirs = [a]
    else:
        if W.shape[0] != len(classes):
            raise ValueError(f"{type(model).__name__} has {W.shape[0]} rows of coef_.")
        scores = X @ W.T + b
        own = scores[np.arange(len(X)), idx]
        margins, dirs = [], []
        for j in range(len(classes)):
            a = W[j] - W[idx]  # (n, d): class j beats the own class when a·x' + ... >= 0
            m = own - scores[:, j]
            m = np.where(idx == j, np.inf, m)
            margins.append(m)
            dirs.append(a)
    best = np.full(len(X), np.inf)
    for m, a in zip(margins, dirs, strict=True):
        room = np.where(a > 0, hi - X, X - lo)
        take = np.isfinite(m)
        if not take.any():
            continue
        d = np.full(len(X), np.inf)
        d[take] = halfspace_distance(np.abs(a[take]), room[take], m[take], norm)
        best = np.minimum(best, d)
    return best


# --------------------------------------------------------------------------- trees
def leaf_boxes(tree, scale, offset):
    """Leaves of a fitted ``tree_`` as boxes ``(lo, hi]`` in the input units, with values."""
    t = tree.tree_
    d = scale.shape[0]
    n_nodes = t.node_count
    lo = np.full((n_nodes, d), -np.inf)
    hi = np.full((n_nodes, d), np.inf)
    leaves = []
    stack = [0]
    while stack:
        node = stack.pop()
        left, right = t.children_left[node], t.children_right[node]
        if left == -1:
            leaves.append(node)
            continue
        f = t.feature[node]
        thr = (float32_cut(t.threshold[node]) - offset[f]) / scale[f]  # x_f <= thr: left
        lo[left], hi[left] = lo[node], hi[node]
        lo[right], hi[right] = lo[node], hi[node]
        hi[left, f] = min(hi[node, f], thr)
        lo[right, f] = max(lo[node, f], thr)
        stack.extend((right, left))
    leaves = np.array(leaves)
    return lo[leaves], hi[leaves], t.value[leaves][:, 0, :]


def float32_cut(threshold):
    """The float64 cut a scikit-learn tree applies: it compares ``float32(x) <= threshold``,
    so x goes left up to half a float32 step above the largest float32 <= threshold (the
    midpoint, exact in float64; which side the midpoint itself takes does not change an
    infimum)."""
    t32 = np.float32(threshold)
    if float(t32) > threshold:
        t32 = np.nextafter(t32, np.float32(-np.inf))
    up = np.nextafter(t32, np.float32(np.inf))
    if not np.isfinite(up):
        return float(threshold)
    return (float(t32) + float(up)) / 2.0


def box_distance(X, lo, hi, norm, chunk=None):
    """Distance of each row of X to each box ``(lo, hi]``: (n, n_boxes), infima."""
    n, d = X.shape
    chunk = chunk or max(1, 2**22 // max(1, lo.shape[0] * d))
    out = np.empty((n, lo.shape[0]))
    for start in range(0, n, chunk):
        x = X[start : start + chunk, None, :]
        gap = np.maximum(np.maximum(lo[None] - x, x - hi[None]), 0.0)
        if norm == np.inf:
            out[start : start + chunk] = gap.max(axis=2)
        elif norm == 2:
            out[start : start + chunk] = np.sqrt(np.einsum("nbd,nbd->nb", gap, gap))
        else:
            out[start : start + chunk] = gap.sum(axis=2)
    return out


def tree_distance(model, scale, offset, X, labels, lo_box, hi_box, norm):
    lo, hi, value = leaf_boxes(model, scale, offset)
    leaf_class = model.classes_[np.argmax(value, axis=1)]
    # Leaves outside the input box cannot be reached; clip the others to it.
    reachable = np.all((lo < hi_box) & (hi >= lo_box), axis=1)
    lo, hi, leaf_class = lo[reachable], hi[reachable], leaf_class[reachable]
    lo, hi = np.maximum(lo, lo_box), np.minimum(hi, hi_box)
    dist = box_distance(X, lo, hi, norm)
    dist[leaf_class[None, :] == np.asarray(labels)[:, None]] = np.inf
    return dist.min(axis=1, initial=np.inf)


# --------------------------------------------------------------------------- ensembles
class _Ensemble:
    """The trees of an ensemble as (tree_, per-class leaf score matrix) pairs, in the units
    of the pipeline's input, and the constant part of each class's score."""

    def __init__(self, model, scale, offset, d):
        self.model, self.scale, self.offset, self.d = model, scale, offset, d
        self.classes = model.classes_
        k = len(self.classes)
        self.trees = []  # (lo, hi, scores (n_leaves, n_score_columns))
        if isinstance(model, GradientBoostingClassifier):
            _check_constant_init(model)
            lr = model.learning_rate
            cols = model.estimators_.shape[1]
            for stage in model.estimators_:
                for c, reg in enumerate(stage):
                    lo, hi, val = leaf_boxes(reg, scale, offset)
                    s = np.zeros((len(lo), cols))
                    s[:, c] = lr * val[:, 0]
                    self.trees.append((lo, hi, s))
            self.binary = cols == 1
        else:
            for est in model.estimators_:
                lo, hi, val = leaf_boxes(est, scale, offset)
                if val.shape[1] != k:
                    raise ValueError(f"{type(model).__name__}: a tree has {val.shape[1]} classes.")
                # predict_proba averages the trees' leaf class frequencies
                s = val / val.sum(axis=1, keepdims=True) / len(model.estimators_)
                self.trees.append((lo, hi, s))
            self.binary = False

    def scores(self, Z):
        """Raw class scores of rows Z of the original input (our reconstruction)."""
        total = 0.0
        for lo, hi, s in self.trees:
            inside = np.all((Z[:, None, :] > lo[None]) & (Z[:, None, :] <= hi[None]), axis=2)
            total = total + inside.astype(float) @ s
        return total

    def constant(self, X):
        """The constant term (gradient boosting's initial prediction) per score column."""
        if not isinstance(self.model, GradientBoostingClassifier):
            return np.zeros(len(self.classes))
        Z = X[:1] * self.scale + self.offset  # what the model itself sees
        raw = np.asarray(self.model.decision_function(Z), float).reshape(1, -1)
        return (raw - self.scores(X[:1]))[0]

    def label(self, z):
        """The class index our reconstruction predicts for a row z of the input."""
        raw = self.constant_ + self.scores(z[None, :])[0]
        if self.binary:
            return int(raw[0] >= 0)
        return int(np.argmax(raw))


def _check_constant_init(model):
    """Gradient boosting starts from ``init``'s raw prediction: modelled as the constant it
    is for the default (the class prior), ``"zero"`` and constant dummies; any other
    ``init`` estimator varies with x and is refused."""
    init = getattr(model, "init_", None)
    if isinstance(init, str) and init == "zero":
        return
    if isinstance(init, DummyClassifier) and init.strategy in (
        "prior",
        "most_frequent",
        "constant",
    ):
        return
    raise ValueError(
        f"GradientBoostingClassifier(init={type(init).__name__}(...)) starts from an "
        "estimator whose prediction varies with x; exact_distortion models only a constant "
        "start (init=None, 'zero', or a DummyClassifier with strategy 'prior', "
        "'most_frequent' or 'constant'). Use skrob.decision_based_distortion for this model."
    )


def _cells(thresholds, x, lo_box, hi_box):
    """Cells (θ_{k-1}, θ_k] of one feature, their distances to x and reachability."""
    edges_lo = np.concatenate(([-np.inf], thresholds))
    edges_hi = np.concatenate((thresholds, [np.inf]))
    dist = np.maximum(np.maximum(edges_lo - x, x - edges_hi), 0.0)
    ok = (edges_lo < hi_box) & (edges_hi >= lo_box)
    return dist, ok


def _upper_bounds(X, labels, X_ref, pred_ref, lo_box, hi_box, norm, chunk=256):
    """Per row of X: the distance to the nearest row of ``X_ref`` that the model predicts
    differently (``pred_ref``) and that lies in the box; ``inf`` where none does. A
    verified adversarial distance: the minimum is at most this."""
    out = np.full(len(X), np.inf)
    if X_ref is None or len(X_ref) == 0:
        return out
    inside = np.all((X_ref >= lo_box) & (X_ref <= hi_box), axis=1)
    X_ref, pred_ref = X_ref[inside], np.asarray(pred_ref)[inside]
    for start in range(0, len(X), chunk):
        x = X[start : start + chunk]
        diff = np.abs(x[:, None, :] - X_ref[None, :, :])
        if norm == np.inf:
            d = diff.max(axis=2, initial=0.0)
        elif norm == 2:
            d = np.sqrt(np.einsum("nmd,nmd->nm", diff, diff))
        else:
            d = diff.sum(axis=2)
        d[pred_ref[None, :] == np.asarray(labels[start : start + chunk])[:, None]] = np.inf
        out[start : start + chunk] = d.min(axis=1, initial=np.inf)
    return out


def ensemble_distance(
    model, scale, offset, X, labels, lo_box, hi_box, norm, time_limit, X_ref=None, pred_ref=None
):
    """Per row: (lower, upper) bounds on the exact minimal distortion; equal when proven.

    The rows of ``X_ref`` predicted ``pred_ref`` give each sample a verified upper bound U
    (:func:`_upper_bounds`). Cells farther than U cannot hold the minimum and are left out,
    and the objective is scaled so that U is 1e6: the program's coefficients stay within
    HiGHS' range whatever the features' units (distances of 1e-4 and 1e4 side by side give
    squared coefficients 1e16 apart otherwise, which HiGHS refuses as a model error).
    Every point the solver returns is checked against our reconstruction of the model
    and its distance taken exactly; a minimum is then confirmed by programs without
    presolve that must prove no point of any other class closer.
    """
    n, d = X.shape
    ens = _Ensemble(model, scale, offset, d)
    const = ens.constant_ = ens.constant(X)
    classes = ens.classes
    # thresholds per feature, over every tree
    thr = [[] for _ in range(d)]
    for lo, hi, _ in ens.trees:
        for f in range(d):
            for v in (lo[:, f], hi[:, f]):
                thr[f].extend(v[np.isfinite(v)].tolist())
    thr = [np.unique(np.array(t, float)) for t in thr]
    used = [f for f in range(d) if thr[f].size]
    # variable layout: cell indicators e (binary) for used features, leaf weights z, t
    e_start, pos = {}, 0
    for f in used:
        e_start[f] = pos
        pos += thr[f].size + 1
    n_e = pos
    leaf_start = []
    for lo, _, _ in ens.trees:
        leaf_start.append(pos)
        pos += len(lo)
    t_var = pos
    n_var = pos + 1
    # structural constraints: one cell per feature, one leaf per tree, leaf ⊂ its cells
    rows, cols, vals, lb, ub = [], [], [], [], []
    r = 0
    for f in used:
        k = thr[f].size + 1
        rows += [r] * k
        cols += list(range(e_start[f], e_start[f] + k))
        vals += [1.0] * k
        lb.append(1.0)
        ub.append(1.0)
        r += 1
    for (lo, hi, _), start in zip(ens.trees, leaf_start, strict=True):
        L = len(lo)
        rows += [r] * L
        cols += list(range(start, start + L))
        vals += [1.0] * L
        lb.append(1.0)
        ub.append(1.0)
        r += 1
        for leaf in range(L):
            for f in used:
                k_lo = np.searchsorted(thr[f], lo[leaf, f]) + 1 if np.isfinite(lo[leaf, f]) else 0
                k_hi = np.searchsorted(thr[f], hi[leaf, f]) if np.isfinite(hi[leaf, f]) else None
                if k_lo == 0 and k_hi is None:
                    continue
                k_hi = thr[f].size if k_hi is None else k_hi
                # z_leaf <= Σ_{k_lo <= k <= k_hi} e_{f,k}
                ks = range(k_lo, k_hi + 1)
                rows += [r] * (len(ks) + 1)
                cols += [start + leaf] + [e_start[f] + k for k in ks]
                vals += [1.0] + [-1.0] * len(ks)
                lb.append(-np.inf)
                ub.append(0.0)
                r += 1
    A_struct = sp.csr_array((vals, (rows, cols)), shape=(r, n_var))
    lb_struct, ub_struct = np.array(lb), np.array(ub)
    # score rows: Σ_trees Σ_leaves z * s[:, column]
    S = sp.lil_array((ens.trees[0][2].shape[1], n_var))
    for (_, _, s), start in zip(ens.trees, leaf_start, strict=True):
        for c in range(s.shape[1]):
            nz = np.flatnonzero(s[:, c])
            S[c, [start + i for i in nz]] = s[nz, c]
    S = S.tocsr()
    integrality = np.zeros(n_var)
    integrality[:n_e] = 1
    lower = np.full(n, np.inf)
    upper = np.full(n, np.inf)
    label_idx = np.searchsorted(classes, labels)
    known = _upper_bounds(X, labels, X_ref, pred_ref, lo_box, hi_box, norm)
    for i in range(n):
        deadline = time.monotonic() + time_limit
        cells = [_cells(thr[f], X[i, f], lo_box[f], hi_box[f]) for f in used]
        own = label_idx[i]
        targets = [1 - own] if ens.binary else [j for j in range(len(classes)) if j != own]

        def verify(sol, i=i, own=own):
            """The exact distance of the program's point, or None if it is not adversarial
            (class j beats the own class, so the argmax is some other class)."""
            z, gap = _cell_point(sol, X[i], thr, used, e_start)
            if ens.label(z) == own:
                return None
            return float(np.linalg.norm(gap, ord=norm))

        def run(
            U,
            cap,
            presolve,
            targets=targets,
            own=own,
            cells=cells,
            verify=verify,
            deadline=deadline,
        ):
            """One program per target class over the cells within U, the points closer
            than ``cap``: the best verified distance and the lowest proven bound."""
            program = _program(cells, used, e_start, n_var, t_var, U, norm)
            best, low = cap, np.inf
            for j in targets:
                diff, rhs, strict = _class_row(ens, S, const, own, j)
                lo_j, up_j = _solve(
                    program,
                    integrality,
                    A_struct,
                    lb_struct,
                    ub_struct,
                    diff,
                    rhs,
                    strict,
                    best,
                    norm,
                    deadline,
                    verify,
                    presolve,
                )
                low = min(low, lo_j)
                best = min(best, up_j)
            return best, low

        # each program scaled to its cap: the verified bound, then the minimum itself
        upper[i], lower[i] = _milp.confirmed_minimum(
            lambda cap, presolve, run=run: run(cap, cap, presolve), known[i]
        )
    return lower, upper


def _program(cells, used, e_start, n_var, t_var, U, norm):
    """The objective of one sample's programs: (cost, variable upper bounds, L∞ rows,
    unit), cells farther than U left out and distances scaled so that U (or, without
    one, the median cell distance) is 1e6."""
    cost = np.zeros(n_var)
    e_ub = np.ones(n_var)
    e_ub[t_var] = np.inf
    reach = np.inf if not np.isfinite(U) else U * (1 + 1e-9)
    positive = np.concatenate(
        [dist[ok & (dist > 0) & (dist <= reach)] for dist, ok in cells] or [[]]
    )
    power = 2 if norm == 2 else 1
    if np.isfinite(U) and U > 0:
        base = U
    else:
        base = np.median(positive) if positive.size else 1.0
    unit = 1e6 / base**power
    if positive.size:  # keep every coefficient within HiGHS' range
        unit = min(unit, 1e9 / positive.max() ** power)
    dist_rows = []
    for f, (dist, ok) in zip(used, cells, strict=True):
        sl = slice(e_start[f], e_start[f] + dist.size)
        ok = ok & (dist <= reach)
        e_ub[sl] = ok.astype(float)
        scaled = np.where(ok, dist, 0.0)
        if norm == np.inf:
            row = np.zeros(n_var)
            row[sl] = scaled * unit
            row[t_var] = -1.0
            dist_rows.append(row)
        else:
            cost[sl] = (scaled**2 if norm == 2 else scaled) * unit
    if norm == np.inf:
        cost[t_var] = 1.0
    return cost, e_ub, dist_rows, unit


def _class_row(ens, S, const, own, j):
    """The row ``diff · v >= rhs`` (strict or not) of "class j beats the own class"."""
    if ens.binary:  # class 1 iff raw >= 0 (GradientBoostingClassifier.predict)
        sign = 1.0 if j == 1 else -1.0
        return sign * S[[0]], -sign * const[0], j == 0
    # argmax: ties go to the first class
    return S[[j]] - S[[own]], const[own] - const[j], j > own


def _cell_point(sol, x, thr, used, e_start):
    """The point of the program's chosen cells nearest to x (just inside an open end)."""
    z, gap = x.copy(), np.zeros_like(x)
    for f in used:
        k = int(np.argmax(sol[e_start[f] : e_start[f] + thr[f].size + 1]))
        lo = thr[f][k - 1] if k > 0 else -np.inf
        hi = thr[f][k] if k < thr[f].size else np.inf
        if z[f] > hi:
            gap[f], z[f] = z[f] - hi, hi
        elif z[f] <= lo:
            gap[f], z[f] = lo - z[f], np.nextafter(lo, np.inf)
    return z, gap


def _solve(
    program, integrality, A, lb, ub, diff, rhs, strict, cap, norm, deadline, verify, presolve
):
    """One class's program over the points closer than ``cap``: (lower, upper) bounds of
    its minimum in distance units; ``(inf, inf)`` when proven empty. A solver that stops
    short (time limit, model error) leaves the bracket it proved."""
    cost, e_ub, dist_rows, unit = program
    blocks, lbs, ubs = [A], [lb], [ub]
    for row in dist_rows:  # t >= distance of the chosen cell, per feature
        blocks.append(sp.csr_array(row[None, :]))
        lbs.append([-np.inf])
        ubs.append([0.0])
    # HiGHS accepts rows violated by up to ~1e-7: a strict inequality (the argmax's tie
    # rule) becomes >= a margin above that tolerance, relative to the row's coefficients.
    scale_ = float(np.abs(diff.data).max(initial=0.0)) or 1.0
    gap = 1e-6 if strict else 0.0
    for _attempt in range(3):
        rows = [*blocks, sp.csr_array(diff)]
        lo_ = [*lbs, [rhs + gap * scale_]]
        up_ = [*ubs, [np.inf]]
        if np.isfinite(cap):  # only points closer than the best so far
            rows.append(sp.csr_array(cost[None, :]))
            lo_.append([-np.inf])
            up_.append([(cap if norm != 2 else cap**2) * unit * (1 + 1e-9)])
        out = _milp.solve(
            cost,
            integrality,
            np.zeros(len(cost)),
            e_ub,
            sp.vstack(rows).tocsr(),
            np.concatenate(lo_),
            np.concatenate(up_),
            deadline,
            presolve,
        )
        if out.status == "infeasible":
            return np.inf, np.inf
        low = _units(out.bound / unit, norm) if out.status != "failed" else 0.0
        if out.x is None:  # stopped before any point
            return low, np.inf
        # HiGHS works to a feasibility tolerance: check the chosen point's class exactly,
        # and take its distance exactly.
        value = verify(out.x)
        if value is None:
            gap = max(gap * 10.0, 1e-6)
            continue
        if out.status == "optimal":
            return value, value
        return min(low, value), value
    return 0.0, np.inf


def _units(v, norm):
    return float(np.sqrt(max(v, 0.0))) if norm == 2 else float(v)
