"""Nearest differently labelled samples: sort by class, choose a backend, merge.

Plain array-in, array-out kernels; the estimators in :mod:`skrob.sample_robustness` are
thin layers of validation over them. Samples are sorted by label and each pair of
classes is visited once: a block of class ``a`` rows against all samples of the classes
after ``a`` yields row minima for class ``a`` and column minima for the others, which
halves the work. A backend (:data:`BACKENDS`, one interface) turns blocks into candidate
pairs and the candidates into exact minima: the float32-GEMM Euclidean kernel
(:mod:`skrob._search.euclidean`), or exact ``cdist`` blocks (:mod:`skrob._search.cdist`)
for any other metric. Rows far beyond the others take the float64 outlier path of the Euclidean
backend (:func:`skrob._search.euclidean.exact_groups`), merged here.
"""

from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp
from joblib import effective_n_jobs

from skrob._device import device_candidates
from skrob._search.blocks import (
    DEFAULT_BATCH_SIZE,
    TASK_SPAN,
    class_ranges,
    reduce_min,
    run_candidates,
    sorted_positions,
    split_span,
)
from skrob._search.cdist import cdist_scaling, cdist_task
from skrob._search.euclidean import (
    EuclideanData,
    euclidean_task,
    exact_groups,
    outlier_split,
    refine,
    self_group_task,
)
from skrob._search.sparse import sparse_groups


class _CdistBackend:
    """Exact float64 cdist blocks: every block value is exact, minima need no re-scoring."""

    def __init__(self, XA, XB, order_a, order_b, metric):
        A = np.asarray(XA, dtype=np.float64)
        A = A if order_a is None else A[order_a]
        if XB is None:
            (self.A,), self.unscale = cdist_scaling(metric, A)
            self.B = self.A
        else:
            (self.A, self.B), self.unscale = cdist_scaling(
                metric, A, np.asarray(XB, dtype=np.float64)[order_b]
            )
        self.metric = metric

    def task_spec(self, both, col_block, self_col):
        """The block function and the arguments every block shares (see ``run_tasks``)."""
        return cdist_task, (self.A, self.B, both, col_block, self.metric, self_col)

    def self_minima(self, i, j, v, n):
        dist, arg = reduce_min(
            np.concatenate([i, j]), np.concatenate([v, v]), n, np.concatenate([j, i])
        )
        return self.unscale(dist), arg

    def group_minima(self, i, j, v, keys, n_groups, n_queries):
        dist, arg = reduce_min(keys, v, n_queries * n_groups, j)
        return self.unscale(dist), arg


class _EuclideanBackend:
    """The float32 GEMM with error bounds; candidates re-scored exactly in float64."""

    def __init__(self, XA, XB, order_a, order_b, metric, data=None):
        self.data = EuclideanData(XA, XB, order_a, order_b) if data is None else data
        n_cols = self.data.B.shape[0]
        self.col_run = np.full(n_cols, np.inf, dtype=np.float32)

    def task_spec(self, both, col_block, self_col):
        """The block function and the arguments every block shares (see ``run_tasks``)."""
        d = self.data
        col_run = self.col_run if both else None
        return euclidean_task, (d.A, d.B, d.tolA, d.tolB, col_run, both, col_block, self_col)

    def self_minima(self, i, j, v, n):
        # A pair is a candidate for both of its samples.
        return refine(self.data, i, j, v, self.data.tolA, i, n, tol_j=self.data.tolB)

    def group_minima(self, i, j, v, keys, n_groups, n_queries):
        tol_keys = np.repeat(self.data.tolA, n_groups)
        return refine(self.data, i, j, v, tol_keys, keys, n_queries * n_groups)


# metric -> backend; any other metric takes the cdist backend.
BACKENDS = {"euclidean": _EuclideanBackend}


def _candidates(backend, tasks, spec, n_jobs, verbose, device, desc):
    """Candidate pairs of the blocks ``tasks``: on a torch device, or through joblib.

    ``spec`` is ``(both, col_block, self_col)`` (see ``task_spec``).
    """
    if device is not None:
        return device_candidates(backend.data, tasks, *spec, device, verbose, desc)
    func, shared = backend.task_spec(*spec)
    return run_candidates(func, tasks, shared=shared, n_jobs=n_jobs, verbose=verbose, desc=desc)


def _backend(XA, XB, order_a, order_b, metric, data=None):
    if metric == "euclidean" and data is not None:
        return _EuclideanBackend(XA, XB, order_a, order_b, metric, data)
    cls = BACKENDS.get(metric, _CdistBackend) if isinstance(metric, str) else _CdistBackend
    return cls(XA, XB, order_a, order_b, metric)


def nearest_other_label(
    X, codes, *, metric="euclidean", batch_size=None, n_jobs=None, verbose=0, device=None
):
    """Distance from every sample to its nearest differently labelled sample.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), finite.
    codes : ndarray of shape (n_samples,), int class codes 0..K-1, at least two present.
    metric : "euclidean" (float32 GEMM kernel, exact to float64 rounding) or any metric
        accepted by :func:`scipy.spatial.distance.cdist` (blocked float64 ``cdist``).
    device : torch.device or None
        Run the Euclidean kernel's GEMMs on this device (:mod:`skrob._device`).

    Returns
    -------
    reach : ndarray of shape (n_samples,), float64.
    partner : ndarray of shape (n_samples,), int, index of the nearest differently
        labelled sample.
    """
    if sp.issparse(X):
        n_groups = int(codes.max()) + 1
        dist, arg = sparse_groups(X, X, codes, n_groups, metric, exclude=np.arange(X.shape[0]))
        dist[np.arange(X.shape[0]), codes] = np.inf  # own class
        k = dist.argmin(axis=1)
        rows = np.arange(X.shape[0])
        return dist[rows, k], arg[rows, k]
    kw = dict(metric=metric, batch_size=batch_size, n_jobs=n_jobs, verbose=verbose, device=device)
    data = None
    if metric == "euclidean":
        data = EuclideanData(X, None, np.argsort(codes, kind="stable"), None)
    if data is None or not data.has_outliers():
        return _nearest_other_label(X, codes, data=data, **kw)
    # Outliers: their pairs in float64 (exact_groups), the rest in the float32 kernel.
    ordinary, _ = outlier_split(X)
    n_groups = int(codes.max()) + 1
    io, oo = np.flatnonzero(ordinary), np.flatnonzero(~ordinary)
    reach, partner = np.full(X.shape[0], np.inf), np.full(X.shape[0], -1, dtype=np.intp)
    if np.unique(codes[io]).size > 1:
        r, p = _nearest_other_label(X[io], codes[io], **kw)
        reach[io], partner[io] = r, io[p]
    for rows, cols in ((oo, np.arange(X.shape[0])), (io, oo)):
        dist, arg = exact_groups(X[rows], X[cols], codes[cols], n_groups)
        dist[np.arange(rows.size), codes[rows]] = np.inf  # own class
        k = dist.argmin(axis=1)
        d = dist[np.arange(rows.size), k]
        better = d < reach[rows]
        reach[rows[better]] = d[better]
        partner[rows[better]] = cols[arg[np.arange(rows.size), k][better]]
    return reach, partner


def _nearest_other_label(X, codes, *, metric, batch_size, n_jobs, verbose, device, data=None):
    n = X.shape[0]
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    col_block = 2 * batch_size
    order = np.argsort(codes, kind="stable")
    bounds = class_ranges(codes[order], int(codes.max()) + 1)
    tasks = []
    for a in range(bounds.shape[0] - 1):
        lo, hi = bounds[a], bounds[a + 1]
        if hi == lo or hi == n:
            continue
        for r0 in range(lo, hi, batch_size):
            for c0, c1 in split_span(hi, n, TASK_SPAN * col_block):
                tasks.append((r0, min(r0 + batch_size, hi), c0, c1))
    # Big tasks first: better load balance under joblib.
    tasks.sort(key=lambda t: -(t[1] - t[0]) * (t[3] - t[2]))
    backend = _backend(X, None, order, None, metric, data)
    i, j, v = _candidates(
        backend, tasks, (True, col_block, None), n_jobs, verbose, device, "nearest other"
    )
    dist, arg = backend.self_minima(i, j, v, n)
    reach = np.empty(n)
    partner = np.empty(n, dtype=np.intp)
    reach[order] = dist
    partner[order] = np.where(arg >= 0, order[np.maximum(arg, 0)], -1)
    return reach, partner


def nearest_in_groups(
    Q,
    X,
    codes,
    n_groups,
    *,
    metric="euclidean",
    batch_size=None,
    n_jobs=None,
    verbose=0,
    exclude=None,
    device=None,
):
    """Distance from every query to the nearest reference sample of each group.

    ``exclude[q]`` (optional) is a reference index that query ``q`` must not be paired
    with (-1 for none): ``nearest_in_groups(X, X, ..., exclude=np.arange(n))`` is the
    leave-one-out search.

    Returns
    -------
    dist : ndarray of shape (n_queries, n_groups), float64 (inf for an empty group).
    arg : ndarray of shape (n_queries, n_groups), index into ``X`` (-1 for an empty group).
    """
    if sp.issparse(X) or sp.issparse(Q):
        return sparse_groups(Q, X, codes, n_groups, metric, exclude=exclude)
    kw = dict(metric=metric, batch_size=batch_size, n_jobs=n_jobs, verbose=verbose, device=device)
    data = None
    if metric == "euclidean":
        order = np.argsort(codes, kind="stable")
        if (
            Q is X
            and exclude is not None
            and device is None
            and np.array_equal(exclude, np.arange(X.shape[0]))
        ):  # the leave-one-out search is symmetric: each pair once
            data = EuclideanData(X, None, order, None)
            if not data.has_outliers():
                return _self_in_groups(
                    X, codes, n_groups, data, batch_size=batch_size, n_jobs=n_jobs, verbose=verbose
                )
        data = EuclideanData(Q, X, None, order)
    if data is None or not data.has_outliers():
        return _nearest_in_groups(Q, X, codes, n_groups, data=data, exclude=exclude, **kw)
    ordinary_x, ordinary_q = outlier_split(X, Q)
    ix, ox = np.flatnonzero(ordinary_x), np.flatnonzero(~ordinary_x)
    iq, oq = np.flatnonzero(ordinary_q), np.flatnonzero(~ordinary_q)
    dist = np.full((Q.shape[0], n_groups), np.inf)
    arg = np.full((Q.shape[0], n_groups), -1, dtype=np.intp)
    for rows, cols, exact in ((iq, ix, False), (oq, np.arange(X.shape[0]), True), (iq, ox, True)):
        if rows.size == 0 or cols.size == 0:
            continue
        local = None
        if exclude is not None:  # reference index -> position among cols
            position = np.full(X.shape[0] + 1, -1, dtype=np.intp)
            position[cols] = np.arange(cols.size)
            local = position[exclude[rows]]  # exclude == -1 reads the extra -1
        if exact:
            d, a = exact_groups(Q[rows], X[cols], codes[cols], n_groups, exclude=local)
        else:
            d, a = _nearest_in_groups(Q[rows], X[cols], codes[cols], n_groups, exclude=local, **kw)
        better = d < dist[rows]
        sub_d, sub_a = dist[rows], arg[rows]
        sub_d[better] = d[better]
        sub_a[better] = cols[a[better]]
        dist[rows], arg[rows] = sub_d, sub_a
    return dist, arg


def _nearest_in_groups(
    Q, X, codes, n_groups, *, metric, batch_size, n_jobs, verbose, device, data=None, exclude=None
):
    n_q = Q.shape[0]
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    col_block = 2 * batch_size
    order = np.argsort(codes, kind="stable")
    codes_sorted = codes[order]
    self_col = sorted_positions(order, exclude)
    bounds = class_ranges(codes_sorted, n_groups)
    tasks = [
        (r0, min(r0 + batch_size, n_q), c0, c1)
        for g in range(n_groups)
        for c0, c1 in split_span(bounds[g], bounds[g + 1], TASK_SPAN * col_block)
        for r0 in range(0, n_q, batch_size)
    ]
    backend = _backend(Q, X, None, order, metric, data)
    i, j, v = _candidates(
        backend, tasks, (False, col_block, self_col), n_jobs, verbose, device, "nearest reference"
    )
    dist, arg = backend.group_minima(i, j, v, i * n_groups + codes_sorted[j], n_groups, n_q)
    arg = np.where((arg >= 0) & np.isfinite(dist), order[np.maximum(arg, 0)], -1)
    return dist.reshape(n_q, n_groups), arg.reshape(n_q, n_groups)


def _self_in_groups(X, codes, n_groups, data, *, batch_size, n_jobs, verbose):
    """``nearest_in_groups(X, X, codes, exclude=arange(n))`` over each pair once.

    Samples sorted by group; a block of group ``a`` rows meets the columns of group ``a``
    from its own first row on (the triangle) and every column of the groups after ``a``.
    Its row minima are the rows' nearest samples of the column group, its column minima
    the columns' nearest samples of group ``a`` (running bounds per column and group)."""
    n = X.shape[0]
    codes_sorted = codes[data.order_b]
    tasks, col_block = _self_group_blocks(codes_sorted, n_groups, batch_size)
    col_runs = np.full((n_groups, n), np.inf, dtype=np.float32)
    shared = (data.B, data.tolB, col_runs, codes_sorted, np.arange(n), col_block)
    i, j, v = run_candidates(
        self_group_task, tasks, shared=shared, n_jobs=n_jobs, verbose=verbose,
        desc="nearest of each class",
    )  # fmt: skip
    return _self_group_minima(data, i, j, v, codes_sorted, n_groups)


def _self_group_blocks(codes_sorted, n_groups, batch_size):
    """The blocks ``(r0, r1, c0, c1)`` of :func:`_self_in_groups`, largest first, and
    the column block width."""
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    col_block = 2 * batch_size
    bounds = class_ranges(codes_sorted, n_groups)
    tasks = []
    for a in range(n_groups):
        lo, hi = bounds[a], bounds[a + 1]
        for r0 in range(lo, hi, batch_size):
            r1 = min(r0 + batch_size, hi)
            spans = split_span(r0, hi, TASK_SPAN * col_block)
            for b in range(a + 1, n_groups):
                spans += split_span(bounds[b], bounds[b + 1], TASK_SPAN * col_block)
            tasks += [(r0, r1, c0, c1) for c0, c1 in spans]
    tasks.sort(key=lambda t: -(t[1] - t[0]) * (t[3] - t[2]))  # big first: load balance
    return tasks, col_block


def _self_group_minima(data, i, j, v, codes_sorted, n_groups):
    """The exact per-group minima of the self-search's candidates, in ``X``'s order."""
    n = codes_sorted.shape[0]
    order = data.order_b
    tol = np.repeat(data.tolB, n_groups)
    dist, arg = refine(
        data,
        i,
        j,
        v,
        tol,
        i * n_groups + codes_sorted[j],
        n * n_groups,
        tol_j=tol,
        keys_j=j * n_groups + codes_sorted[i],
    )
    arg = np.where((arg >= 0) & np.isfinite(dist), order[np.maximum(arg, 0)], -1)
    out_d = np.empty((n, n_groups))
    out_a = np.empty((n, n_groups), dtype=np.intp)
    out_d[order] = dist.reshape(n, n_groups)
    out_a[order] = arg.reshape(n, n_groups)
    return out_d, out_a


def nearest_in_groups_and_order(
    X, codes, n_groups, k, *, cuts=None, batch_size=None, n_jobs=None, verbose=0
):
    """``nearest_in_groups(X, X, codes, n_groups, exclude=arange(n))`` and
    ``neighbour_order(X, k, cuts=cuts)`` (Euclidean, dense) from one pass of float32
    GEMM blocks over the triangle: each block is reduced to the groups' candidates and
    offered to every sample's list of its ``k + 16`` nearest others. The lists start from
    the bound of the 1,024-sample diagonal blocks (widened by twice the error bound: a
    pair's value may round differently in another block shape); the blocks are dealt to
    one task per worker, each with lists for every sample, merged at the end.

    Returns ``((dist, arg), (indices, copies))`` as the two functions do, or None for
    data with outliers (the caller then runs the two searches)."""
    from threadpoolctl import threadpool_limits

    from skrob._search.blocks import deal, resolve_n_jobs, run_tasks
    from skrob._search.euclidean import row_layout
    from skrob._search.knn import (
        _SLACK,
        _diagonal_lists,
        groups_and_lists_task,
        merge_lists,
        order_from_lists,
    )

    X = np.ascontiguousarray(X, dtype=np.float64)
    n = X.shape[0]
    order = np.argsort(codes, kind="stable")
    data = EuclideanData(X, None, order, None)
    if data.has_outliers():
        return None
    K = min(k + _SLACK, n - 1)
    codes_sorted = codes[order]
    blas = resolve_n_jobs(n_jobs)
    tasks, col_block = _self_group_blocks(codes_sorted, n_groups, batch_size)
    bins = deal([(t[1] - t[0]) * (t[3] - t[2]) for t in tasks], effective_n_jobs(blas))
    col_runs = np.full((n_groups, n), np.inf, dtype=np.float32)
    with threadpool_limits(limits=None if blas < 0 else blas, user_api="blas"):
        bound = _diagonal_lists(row_layout(data.B), data.B, K).bound + 2 * data.tolB
        shared = (data.B, data.tolB, col_runs, codes_sorted, np.arange(n), col_block, K, bound)
        found = run_tasks(
            groups_and_lists_task, [([tasks[t] for t in b],) for b in bins], shared=shared,
            n_jobs=n_jobs, verbose=verbose, desc="nearest of each class, and neighbours",
        )  # fmt: skip
    i, j, v = (np.concatenate([f[m] for f in found]) for m in range(3))
    groups = _self_group_minima(data, i, j, v, codes_sorted, n_groups)
    value, index = merge_lists([f[3:] for f in found], K)
    # from the sorted order back to X's
    lists_value, lists_index = np.empty_like(value), np.empty_like(index)
    lists_value[order] = value
    lists_index[order] = np.where(index >= 0, order[np.maximum(index, 0)], -1)
    norms, tol = np.empty(n), np.empty(n)
    norms[order], tol[order] = data.norms_b, data.tolB
    own = SimpleNamespace(norms_b=norms, tolB=tol, c=data.c, unscale=data.unscale)
    return groups, order_from_lists(X, own, lists_value, lists_index, k, cuts=cuts, n_jobs=n_jobs)


def reach_to_robustness(reach):
    """Classification R = r / (r + 1) of the reach r; 1 where r is infinite (no other class)."""
    with np.errstate(invalid="ignore"):  # inf / inf: set below
        R = reach / (reach + 1.0)
    R[np.isinf(reach)] = 1.0
    return R
