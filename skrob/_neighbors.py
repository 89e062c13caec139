"""Nearest differently labelled neighbours and label-map Lipschitz maxima.

Plain array-in, array-out kernels; the estimators in :mod:`skrob.sample_robustness` are
thin layers of validation over them.

Exact Euclidean search
----------------------
Squared distances of a row block ``a`` and a column block ``b`` come from *one* float32
GEMM on augmented matrices, ``[-2a, |a|^2, 1] @ [b, 1, |b|^2].T = |a|^2 + |b|^2 - 2ab``,
so no element-wise pass is spent on adding norms. Its rounding error is bounded, pair by
pair, by ``tol = (d + 8) * u32 * (|a| + |b|)^2`` (the classical bound for a dot product
of ``d + 2`` terms, plus the rounding of the inputs; the data are centred first, which
keeps the norms small). Every block emits only the candidates that can still be a row's
(or a column's) nearest neighbour: its approximate minimum, and when the second smallest
value is within ``2 * tol`` of it, every value in that band. At the end the candidates
within ``2 * tol`` of each sample's approximate minimum are re-scored exactly, in float64,
by difference-then-norm. The true nearest neighbour is always among them, so results
match a float64 brute force to rounding, at float32 GEMM throughput.

Samples are sorted by label and each pair of classes is visited once: a block of class
``a`` rows against all samples of the classes after ``a`` yields row minima for class
``a`` and column minima for the others, which halves the work.
"""

from contextlib import nullcontext

import numpy as np
from joblib import Parallel, delayed
from scipy.spatial.distance import cdist
from threadpoolctl import threadpool_limits

_U32 = float(np.finfo(np.float32).eps) / 2
_U64 = float(np.finfo(np.float64).eps) / 2
# Squared float64 distances strictly inside (_SAFE_MIN, _SAFE_MAX) are accurate as they
# come; outside, the pair is recomputed scaled (_exact_dist).
_SAFE_MIN, _SAFE_MAX = 2.0**-960, 2.0**960
# Column argmins go through row chunks of this height: numpy's argmin along axis 0 is
# ~20x slower than a min along it.
_CHUNK = 64
DEFAULT_BATCH_SIZE = 2048
# pynndescent query: neighbours kept and search frontier (see approximate_nearest_other_label)
_QUERY_K = 10
_QUERY_EPSILON = 0.2


# ---------------------------------------------------------------------------------------
# Task running: joblib over blocks, optional tqdm progress bar
# ---------------------------------------------------------------------------------------


def _run(func, tasks, *, n_jobs=None, verbose=0, desc=""):
    """Run ``func(*task)`` for every task, through joblib when ``n_jobs`` asks for it."""
    sequential = n_jobs in (None, 1) or len(tasks) <= 1
    # With joblib, one BLAS thread per job, so that jobs do not oversubscribe the cores;
    # a process-based or distributed backend limits its own workers.
    blas = nullcontext() if sequential else threadpool_limits(limits=1, user_api="blas")
    progress = None
    if verbose:
        from tqdm.auto import tqdm

        progress = tqdm(total=len(tasks), desc=desc, unit="block")
    try:
        with blas:
            if sequential:
                outputs = (func(*task) for task in tasks)
            else:
                parallel = Parallel(
                    n_jobs=n_jobs, prefer="threads", return_as="generator_unordered"
                )
                outputs = parallel(delayed(func)(*task) for task in tasks)
            results = []
            for result in outputs:
                results.append(result)
                if progress is not None:
                    progress.update()
        return results
    finally:
        if progress is not None:
            progress.close()


def _run_candidates(func, tasks, *, n_jobs, verbose, desc):
    """Run the block tasks; concatenate their candidate pairs ``(i, j, value)``."""
    results = _run(func, tasks, n_jobs=n_jobs, verbose=verbose, desc=desc)
    return tuple(_concat(results, k) for k in range(3))


def _concat(results, k):
    parts = [r[k] for r in results if len(r[k])]
    if not parts:
        return np.empty(0, dtype=results[0][k].dtype if results else np.float64)
    return np.concatenate(parts)


# ---------------------------------------------------------------------------------------
# Exact Euclidean kernel (float32 GEMM + float64 re-scoring)
# ---------------------------------------------------------------------------------------


def _pow2_scale(m):
    """A power of two ``g`` with ``m * g`` in [0.5, 1) (1 for m = 0), finite itself.

    Multiplying by it is exact (unless a value falls below the normal range).
    """
    m = float(m)
    e = int(np.frexp(m)[1]) if m > 0 and np.isfinite(m) else 0
    return np.ldexp(1.0, -min(max(e, -1020), 1020))


def _max_abs(*arrays):
    return max((float(np.abs(A).max(initial=0.0)) for A in arrays if A.size), default=0.0)


def _scaled_mean(X, g, chunk=4096):
    """Column means of ``X * g`` in float64, chunk by chunk (no overflow: |X * g| <= 1)."""
    total = np.zeros(X.shape[1])
    for s in range(0, X.shape[0], chunk):
        total += (X[s : s + chunk] * g).sum(axis=0, dtype=np.float64)
    return total / max(X.shape[0], 1)


def _scaled_norms(X, g, center, chunk=4096):
    """Norms of the rows of ``X * g - center`` in float64."""
    out = np.empty(X.shape[0])
    for s in range(0, X.shape[0], chunk):
        diff = X[s : s + chunk] * g - center
        out[s : s + chunk] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


# A row whose centred norm exceeds this many times the median norm is an outlier: it would
# inflate the error bound of every pair in the float32 kernel, so its pairs are searched
# in float64 instead (_exact_groups).
_OUTLIER_RATIO = 64.0


def _outlier_split(X, Q=None):
    """Masks of the ordinary rows of ``X`` and of the queries ``Q`` (None without Q).

    Norms are taken about the coordinate-wise median of the reference ``X``, which an
    outlier cannot move; a row beyond ``_OUTLIER_RATIO`` times their median (of the
    positive ones) is an outlier.
    """
    g = _pow2_scale(_max_abs(X) if Q is None else _max_abs(X, Q))
    center = np.median(X * g, axis=0)
    nx = _scaled_norms(X, g, center)
    positive = nx[nx > 0]
    threshold = _OUTLIER_RATIO * (np.median(positive) if positive.size else 0.0)
    ordinary_q = None if Q is None else _scaled_norms(Q, g, center) <= threshold
    return nx <= threshold, ordinary_q


class _EuclideanData:
    """Augmented float32 copies of the rows (``A``) and columns (``B``) and error bounds.

    ``A`` holds the rows ``XA[order_a]`` and ``B`` the columns ``XB[order_b]``, centred
    and scaled by powers of two so that no norm exceeds 1: float32 can neither overflow
    nor lose a distance to underflow beyond the error bound. Re-scoring maps block
    indices back through the orders and uses the data as given.
    """

    def __init__(self, XA, XB, order_a, order_b):
        self.XA, self.order_a = XA, order_a
        self.XB, self.order_b = (XA, order_a) if XB is None else (XB, order_b)
        g = _pow2_scale(_max_abs(XA) if XB is None else _max_abs(XA, XB))
        center = _scaled_mean(self.XB, g)
        h = 1.0
        while True:
            self.B, sq_b = self._augment(self.XB, self.order_b, (g, center, h), rows=False)
            sq_a = sq_b
            if XB is not None:
                self.A, sq_a = self._augment(XA, order_a, (g, center, h), rows=True)
            max_norm = np.sqrt(max(sq_a.max(initial=0.0), sq_b.max(initial=0.0)))
            if h != 1.0 or max_norm >= 2.0**-40:
                break
            # Tiny spread about the centre: rescale it before float32 rounds it away.
            spread = _scaled_norms(self.XB, g, center).max(initial=0.0)
            if XB is not None:
                spread = max(spread, _scaled_norms(XA, g, center).max(initial=0.0))
            if spread == 0.0:
                break
            h = _pow2_scale(spread)
        if XB is None:
            self.A = self.B * np.float32(-2.0)  # exact: a power of two
            self.A[:, -2:] = self.B[:, -1:-3:-1]
        # Per-sample bound on the error of any pair involving it: the pair's bound is
        # c * (|a| + |b|)^2 <= c * (|a| + max|b|)^2. The absolute term covers float32
        # underflow (at most 2**-149 per product, norms <= 2 sqrt(d)).
        c = (XA.shape[1] + 8) * _U32 * 1.01
        na, nb = np.sqrt(sq_a), np.sqrt(sq_b)
        self.norms_a, self.norms_b = na, nb
        self.tolA = c * (na + max_norm) ** 2 + 2.0**-120
        self.tolB = c * (nb + max_norm) ** 2 + 2.0**-120

    def has_outliers(self):
        """Whether a norm exceeds ``_OUTLIER_RATIO`` times the reference's median norm.

        Such a row inflates the error bound of every pair; the caller then splits the
        outliers off (:func:`_outlier_split`).
        """
        top = max(self.norms_a.max(initial=0.0), self.norms_b.max(initial=0.0))
        return top > _OUTLIER_RATIO * np.median(self.norms_b)

    @staticmethod
    def _augment(X, order, scaling, rows, chunk=4096):
        n, d = X.shape
        g, center, h = scaling
        out = np.empty((n, d + 2), dtype=np.float32)
        body = out[:, :d]
        for s in range(0, n, chunk):
            rows_s = X[s : s + chunk] if order is None else np.take(X, order[s : s + chunk], 0)
            rows_s = rows_s * g - center
            if h != 1.0:
                rows_s *= h
            body[s : s + chunk] = rows_s
        sq = np.einsum("ij,ij->i", body, body, dtype=np.float64)
        if rows:
            body *= np.float32(-2.0)
            out[:, d], out[:, d + 1] = sq, 1.0
        else:
            out[:, d], out[:, d + 1] = 1.0, sq
        return out, sq

    def exact_dist(self, i, j):
        """Exact distances of the block-index pairs ``(i, j)``."""
        i = i if self.order_a is None else self.order_a[i]
        j = j if self.order_b is None else self.order_b[j]
        return _exact_dist(self.XA, self.XB, i, j)


def _row_candidates(D, run, tol, offset_r, offset_c, out):
    """Emit the row candidates of one block and update the running row minima."""
    ar = np.arange(D.shape[0])
    j = D.argmin(axis=1)
    v = D[ar, j]
    competitive = v <= run + 2 * tol
    np.minimum(run, v, out=run)
    thr = run + 2 * tol
    # Second smallest value per row: is anything else within the band?
    D[ar, j] = np.inf
    m2 = D.min(axis=1)
    ambiguous = competitive & (m2 <= thr)
    if ambiguous.any():
        rows = np.flatnonzero(ambiguous)
        ii, jj = np.nonzero(D[rows] <= thr[rows, None])
        out.append((offset_r + rows[ii], offset_c + jj, D[rows[ii], jj]))
    D[ar, j] = v
    rows = np.flatnonzero(competitive)
    out.append((offset_r + rows, offset_c + j[rows], v[rows]))


def _col_candidates(D, run, tol, offset_r, offset_c, out):
    """Emit the column candidates of one block and update the running column minima."""
    n_rows = D.shape[0]
    n_full = n_rows // _CHUNK * _CHUNK
    chunk_min = D[:n_full].reshape(-1, _CHUNK, D.shape[1]).min(axis=1)
    if n_full < n_rows:
        chunk_min = np.vstack([chunk_min, D[n_full:].min(axis=0)])
    v = chunk_min.min(axis=0)
    competitive = v <= run + 2 * tol
    np.minimum(run, v, out=run)
    cols = np.flatnonzero(competitive)
    if cols.size == 0:
        return
    # Row of each competitive column's minimum: first its chunk, then within the chunk.
    best_chunk = chunk_min[:, cols].argmin(axis=0)
    idx = np.minimum(best_chunk * _CHUNK + np.arange(_CHUNK)[:, None], n_rows - 1)
    i = idx[D[idx, cols].argmin(axis=0), np.arange(cols.size)]
    thr = run[cols] + 2 * tol[cols]
    vc = v[cols]
    D[i, cols] = np.inf
    m2 = D.min(axis=0)[cols]
    ambiguous = m2 <= thr
    if ambiguous.any():
        acols = cols[ambiguous]
        ii, jj = np.nonzero(D[:, acols] <= thr[ambiguous])
        out.append((offset_r + ii, offset_c + acols[jj], D[ii, acols[jj]]))
    D[i, cols] = vc
    out.append((offset_r + i, offset_c + cols, vc))


def _mask_self(D, self_col, cs, value):
    """Set ``D[r, self_col[r] - cs]`` to ``value`` where that column is in the block."""
    if self_col is None:
        return
    r = np.flatnonzero((self_col >= cs) & (self_col < cs + D.shape[1]))
    D[r, self_col[r] - cs] = value


def _euclidean_task(data, r0, r1, c0, c1, both, col_block, col_run, self_col=None):
    """Scan rows ``[r0, r1)`` against columns ``[c0, c1)``; return candidate pairs.

    ``self_col[r]`` (optional) is a column that row ``r`` must not be paired with.
    """
    self_col = None if self_col is None else self_col[r0:r1]
    a = data.A[r0:r1]
    run = np.full(r1 - r0, np.inf, dtype=np.float32)
    tol_r = data.tolA[r0:r1]
    if both and not col_run.flags.writeable:  # a process backend sent a read-only copy
        col_run = col_run.copy()
    out = []
    D = np.empty((r1 - r0, min(col_block, c1 - c0)), dtype=np.float32)
    for cs in range(c0, c1, col_block):
        ce = min(cs + col_block, c1)
        Db = D if ce - cs == D.shape[1] else np.empty((r1 - r0, ce - cs), dtype=np.float32)
        np.dot(a, data.B[cs:ce].T, out=Db)
        _mask_self(Db, self_col, cs, np.inf)
        _row_candidates(Db, run, tol_r, r0, cs, out)
        if both:
            _col_candidates(Db, col_run[cs:ce], data.tolB[cs:ce], r0, cs, out)
    if not out:
        return np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0, np.float32)
    return tuple(np.concatenate([o[k] for o in out]) for k in range(3))


def _exact_dist(XA, XB, i, j, chunk=512):
    """Float64 distances of the pairs ``(XA[i], XB[j])``, by difference-then-norm.

    Exact to rounding over the whole finite range: a pair whose squared distance would
    overflow or underflow is recomputed with the difference scaled by a power of two
    (and halved first where the difference itself overflows). Small chunks keep the
    float64 copies in cache (measured 2x faster than 8192).
    """
    out = np.empty(i.shape[0], dtype=np.float64)
    for s in range(0, i.shape[0], chunk):
        a = XA[i[s : s + chunk]].astype(np.float64)
        b = XB[j[s : s + chunk]]
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            diff = a - b
            sq = np.einsum("ij,ij->i", diff, diff)
            bad = ~((sq > _SAFE_MIN) & (sq < _SAFE_MAX))  # duplicates (0) too: cheap
            dist = np.sqrt(sq)
            if bad.any():
                dist[bad] = _scaled_norm(a[bad], np.asarray(b[bad], dtype=np.float64))
        out[s : s + chunk] = dist
    return out


def _scaled_norm(a, b):
    """``||a - b||`` per row, with the difference scaled by a power of two."""
    with np.errstate(over="ignore"):
        diff = a - b
    halved = ~np.isfinite(diff).all(axis=1)
    if halved.any():  # a - b overflows: (a/2 - b/2) is exact unless subnormal
        diff[halved] = a[halved] * 0.5 - b[halved] * 0.5
    m = np.abs(diff).max(axis=1)
    _, e = np.frexp(np.where(m > 0, m, 1.0))
    diff = np.ldexp(diff, -e[:, None])
    with np.errstate(over="ignore"):
        return np.ldexp(np.sqrt(np.einsum("ij,ij->i", diff, diff)), e + halved)


def _reduce_min(keys, values, n_keys, partners):
    """Per key, the smallest value and the partner index that attains it (-1 when none)."""
    best = np.full(n_keys, np.inf)
    arg = np.full(n_keys, -1, dtype=np.intp)
    if keys.size:
        order = np.lexsort((values, keys))
        k_sorted = keys[order]
        first = np.ones(k_sorted.shape[0], dtype=bool)
        first[1:] = k_sorted[1:] != k_sorted[:-1]
        sel = order[first]
        best[keys[sel]] = values[sel]
        arg[keys[sel]] = partners[sel]
    return best, arg


def _refine(data, i, j, v, tol_i, keys_i, n_keys, tol_j=None):
    """Re-score the candidates within ``2 * tol`` of their key's approximate minimum.

    A candidate pair ``(i, j)`` with approximate squared distance ``v`` counts for the key
    ``keys_i`` of its row and, when ``tol_j`` is given (self-search), for the key ``j`` of
    its column as well. Each kept pair is re-scored once, exactly, in float64.

    Returns each key's exact minimum distance and the partner index attaining it (-1 when
    the key has no candidate).
    """
    v = v.astype(np.float64)
    keys = keys_i if tol_j is None else np.concatenate([keys_i, j])
    approx = np.full(n_keys, np.inf)
    np.minimum.at(approx, keys, np.concatenate([v, v]) if tol_j is not None else v)
    keep_i = v <= approx[keys_i] + 2 * tol_i[keys_i]
    keep_j = v <= approx[j] + 2 * tol_j[j] if tol_j is not None else np.zeros_like(keep_i)
    keep = (keep_i | keep_j) & np.isfinite(v)  # inf: a pair masked out (leave-one-out)
    dist = data.exact_dist(i[keep], j[keep])
    keep_i, keep_j = keep_i[keep], keep_j[keep]
    i, j = i[keep], j[keep]
    return _reduce_min(
        np.concatenate([keys_i[keep][keep_i], j[keep_j]]),
        np.concatenate([dist[keep_i], dist[keep_j]]),
        n_keys,
        np.concatenate([j[keep_i], i[keep_j]]),
    )


# ---------------------------------------------------------------------------------------
# Public kernels
# ---------------------------------------------------------------------------------------


def _class_ranges(codes_sorted, n_classes):
    bounds = np.searchsorted(codes_sorted, np.arange(n_classes + 1))
    return bounds


def nearest_other_label(X, codes, *, metric="euclidean", batch_size=None, n_jobs=None, verbose=0):
    """Distance from every sample to its nearest differently labelled sample.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), finite.
    codes : ndarray of shape (n_samples,), int class codes 0..K-1, at least two present.
    metric : "euclidean" (float32 GEMM kernel, exact to float64 rounding) or any metric
        accepted by :func:`scipy.spatial.distance.cdist` (blocked float64 ``cdist``).

    Returns
    -------
    reach : ndarray of shape (n_samples,), float64.
    partner : ndarray of shape (n_samples,), int, index of the nearest differently
        labelled sample.
    """
    kw = dict(metric=metric, batch_size=batch_size, n_jobs=n_jobs, verbose=verbose)
    data = None
    if metric == "euclidean":
        data = _EuclideanData(X, None, np.argsort(codes, kind="stable"), None)
    if data is None or not data.has_outliers():
        return _nearest_other_label(X, codes, data=data, **kw)
    # Outliers: their pairs in float64 (_exact_groups), the rest in the float32 kernel.
    ordinary, _ = _outlier_split(X)
    n_groups = int(codes.max()) + 1
    io, oo = np.flatnonzero(ordinary), np.flatnonzero(~ordinary)
    reach, partner = np.full(X.shape[0], np.inf), np.full(X.shape[0], -1, dtype=np.intp)
    if np.unique(codes[io]).size > 1:
        r, p = _nearest_other_label(X[io], codes[io], **kw)
        reach[io], partner[io] = r, io[p]
    for rows, cols in ((oo, None), (io, oo)):
        cols_idx = np.arange(X.shape[0]) if cols is None else cols
        dist, arg = _exact_groups(X[rows], X[cols_idx], codes[cols_idx], n_groups)
        dist[np.arange(rows.size), codes[rows]] = np.inf  # own class
        k = dist.argmin(axis=1)
        d = dist[np.arange(rows.size), k]
        better = d < reach[rows]
        reach[rows[better]] = d[better]
        partner[rows[better]] = cols_idx[arg[np.arange(rows.size), k][better]]
    return reach, partner


def _nearest_other_label(X, codes, *, metric, batch_size, n_jobs, verbose, data=None):
    n = X.shape[0]
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    col_block = 2 * batch_size
    order = np.argsort(codes, kind="stable")
    bounds = _class_ranges(codes[order], int(codes.max()) + 1)
    tasks = []
    for a in range(bounds.shape[0] - 1):
        lo, hi = bounds[a], bounds[a + 1]
        if hi == lo or hi == n:
            continue
        for r0 in range(lo, hi, batch_size):
            tasks.append((r0, min(r0 + batch_size, hi), hi, n))
    # Big tasks first: better load balance under joblib.
    tasks.sort(key=lambda t: -(t[1] - t[0]) * (t[3] - t[2]))

    if metric == "euclidean":
        if data is None:
            data = _EuclideanData(X, None, order, None)
        col_run = np.full(n, np.inf, dtype=np.float32)
        i, j, v = _run_candidates(
            lambda r0, r1, c0, c1: _euclidean_task(data, r0, r1, c0, c1, True, col_block, col_run),
            tasks,
            n_jobs=n_jobs,
            verbose=verbose,
            desc="nearest differently labelled",
        )
        # A pair is a candidate for both of its samples.
        dist, arg = _refine(data, i, j, v, data.tolA, i, n, tol_j=data.tolB)
    else:
        (Xs,), unscale = _cdist_scaling(metric, np.asarray(X, dtype=np.float64)[order])
        i, j, v = _run_candidates(
            lambda r0, r1, c0, c1: _cdist_task(Xs, Xs, r0, r1, c0, c1, True, col_block, metric),
            tasks,
            n_jobs=n_jobs,
            verbose=verbose,
            desc="nearest differently labelled",
        )
        dist, arg = _reduce_min(
            np.concatenate([i, j]), np.concatenate([v, v]), n, np.concatenate([j, i])
        )
        dist = unscale(dist)
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
    kw = dict(metric=metric, batch_size=batch_size, n_jobs=n_jobs, verbose=verbose)
    data = None
    if metric == "euclidean":
        data = _EuclideanData(Q, X, None, np.argsort(codes, kind="stable"))
    if data is None or not data.has_outliers():
        return _nearest_in_groups(Q, X, codes, n_groups, data=data, exclude=exclude, **kw)
    ordinary_x, ordinary_q = _outlier_split(X, Q)
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
            d, a = _exact_groups(Q[rows], X[cols], codes[cols], n_groups, exclude=local)
        else:
            d, a = _nearest_in_groups(Q[rows], X[cols], codes[cols], n_groups, exclude=local, **kw)
        better = d < dist[rows]
        sub_d, sub_a = dist[rows], arg[rows]
        sub_d[better] = d[better]
        sub_a[better] = cols[a[better]]
        dist[rows], arg[rows] = sub_d, sub_a
    return dist, arg


def _nearest_in_groups(
    Q, X, codes, n_groups, *, metric, batch_size, n_jobs, verbose, data=None, exclude=None
):
    n_q = Q.shape[0]
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    col_block = 2 * batch_size
    order = np.argsort(codes, kind="stable")
    self_col = _sorted_positions(order, exclude)
    codes_sorted = codes[order]
    bounds = _class_ranges(codes_sorted, n_groups)
    tasks = [
        (r0, min(r0 + batch_size, n_q), bounds[g], bounds[g + 1])
        for g in range(n_groups)
        if bounds[g + 1] > bounds[g]
        for r0 in range(0, n_q, batch_size)
    ]
    if metric == "euclidean":
        if data is None:
            data = _EuclideanData(Q, X, None, order)
        i, j, v = _run_candidates(
            lambda r0, r1, c0, c1: _euclidean_task(
                data, r0, r1, c0, c1, False, col_block, None, self_col
            ),
            tasks,
            n_jobs=n_jobs,
            verbose=verbose,
            desc="nearest reference",
        )
        keys = i * n_groups + codes_sorted[j]
        tol_keys = np.repeat(data.tolA, n_groups)
        dist, arg = _refine(data, i, j, v, tol_keys, keys, n_q * n_groups)
    else:
        (Q, Xs), unscale = _cdist_scaling(
            metric, np.asarray(Q, dtype=np.float64), np.asarray(X, dtype=np.float64)[order]
        )
        i, j, v = _run_candidates(
            lambda r0, r1, c0, c1: _cdist_task(
                Q, Xs, r0, r1, c0, c1, False, col_block, metric, self_col
            ),
            tasks,
            n_jobs=n_jobs,
            verbose=verbose,
            desc="nearest reference",
        )
        dist, arg = _reduce_min(i * n_groups + codes_sorted[j], v, n_q * n_groups, j)
        dist = unscale(dist)
    arg = np.where((arg >= 0) & np.isfinite(dist), order[np.maximum(arg, 0)], -1)
    return dist.reshape(n_q, n_groups), arg.reshape(n_q, n_groups)


def _sorted_positions(order, exclude):
    """Where each excluded reference index sits after sorting by ``order`` (-1: none)."""
    if exclude is None:
        return None
    position = np.empty(order.size + 1, dtype=np.intp)
    position[order] = np.arange(order.size)
    position[-1] = -1
    return position[exclude]


def _exact_groups(A, B, groups, n_groups, *, exclude=None, row_block=256, col_block=4096):
    """Nearest row of ``B`` in every group, for each row of ``A``: the outliers' path.

    A float64 GEMM on data scaled by powers of two bounds every pair's squared distance
    within ``c * (|a| + |b|)^2`` of its own norms (not the largest norm, which an
    outlier inflates); a first pass takes each (row, group)'s smallest upper bound, a
    second re-scores exactly every pair whose lower bound is below it.
    """
    n_a, d = A.shape
    dist = np.full((n_a, n_groups), np.inf)
    arg = np.full((n_a, n_groups), -1, dtype=np.intp)
    if n_a == 0 or B.shape[0] == 0:
        return dist, arg
    order = np.argsort(groups, kind="stable")
    bounds = _class_ranges(groups[order], n_groups)
    self_col = _sorted_positions(order, exclude)
    g = _pow2_scale(_max_abs(A, B))
    center = _scaled_mean(B, g)
    h = _pow2_scale(max(_scaled_norms(A, g, center).max(), _scaled_norms(B, g, center).max()))
    As = (A * g - center) * h
    Bs = (B[order] * g - center) * h
    sqa, sqb = np.einsum("ij,ij->i", As, As), np.einsum("ij,ij->i", Bs, Bs)
    na, nb = np.sqrt(sqa), np.sqrt(sqb)
    c = (d + 8) * _U64 * 1.01
    blocks = [
        (r0, min(r0 + row_block, n_a), grp, c0, min(c0 + col_block, bounds[grp + 1]))
        for r0 in range(0, n_a, row_block)
        for grp in range(n_groups)
        for c0 in range(bounds[grp], bounds[grp + 1], col_block)
    ]

    def block(r0, r1, c0, c1):
        D = As[r0:r1] @ Bs[c0:c1].T
        D *= -2.0
        D += sqa[r0:r1, None]
        D += sqb[None, c0:c1]
        _mask_self(D, None if self_col is None else self_col[r0:r1], c0, np.inf)
        tol = na[r0:r1, None] + nb[None, c0:c1]
        tol *= tol
        tol *= c
        tol += 2.0**-1000  # float64 underflow, norms <= 1
        return D, tol

    upper = np.full((n_a, n_groups), np.inf)
    for r0, r1, grp, c0, c1 in blocks:
        D, tol = block(r0, r1, c0, c1)
        np.minimum(upper[r0:r1, grp], (D + tol).min(axis=1), out=upper[r0:r1, grp])
    pairs = []
    for r0, r1, grp, c0, c1 in blocks:
        D, tol = block(r0, r1, c0, c1)
        ii, jj = np.nonzero((D - tol <= upper[r0:r1, grp, None]) & np.isfinite(D))
        pairs.append((r0 + ii, c0 + jj))
    i = np.concatenate([p[0] for p in pairs])
    j = order[np.concatenate([p[1] for p in pairs])]
    best, partner = _reduce_min(
        i * n_groups + groups[j], _exact_dist(A, B, i, j), n_a * n_groups, j
    )
    return best.reshape(n_a, n_groups), partner.reshape(n_a, n_groups)


# How scipy's cdist metrics scale with X: d(cX, cX') = c**degree d(X, X'). Data are scaled
# by a power of two (so |X| < 1) before these metrics, which would otherwise overflow or
# underflow inside (squares, p-th powers, norms); unknown metrics are left as they are,
# and a non-finite distance is an error.
_METRIC_DEGREE = {
    "euclidean": 1,
    "cityblock": 1,
    "chebyshev": 1,
    "minkowski": 1,
    "sqeuclidean": 2,
    "braycurtis": 0,
    "canberra": 0,
    "cosine": 0,
    "correlation": 0,
}


def _cdist_scaling(metric, *arrays):
    """The arrays scaled for ``metric``, and a function taking distances back to X's units."""
    degree = _METRIC_DEGREE.get(metric) if isinstance(metric, str) else None
    if degree is None:
        return arrays, lambda dist: dist
    g = _pow2_scale(_max_abs(*arrays))  # scale-free metrics too: no norm underflows

    def unscale(dist):
        with np.errstate(over="ignore"):
            return dist if degree == 0 else dist / g if degree == 1 else dist / g / g

    return tuple(A * g for A in arrays), unscale


def _cdist_task(XA, XB, r0, r1, c0, c1, both, col_block, metric, self_col=None):
    """Exact float64 ``cdist`` blocks; row (and column) minima with their partners."""
    out = []
    a = XA[r0:r1]
    self_col = None if self_col is None else self_col[r0:r1]
    for cs in range(c0, c1, col_block):
        ce = min(cs + col_block, c1)
        with np.errstate(over="ignore", invalid="ignore"):
            D = cdist(a, XB[cs:ce], metric=metric)
        if not np.isfinite(D).all():
            raise ValueError(
                f"metric={metric!r} gives non-finite distances for finite X (float64 "
                "overflow, or a metric undefined for some rows, e.g. cosine of a zero "
                "row); rescale X or choose another metric."
            )
        _mask_self(D, self_col, cs, np.inf)
        j = D.argmin(axis=1)
        out.append((r0 + np.arange(r1 - r0), cs + j, D[np.arange(r1 - r0), j]))
        if both:
            i = D.argmin(axis=0)
            out.append((r0 + i, cs + np.arange(ce - cs), D[i, np.arange(ce - cs)]))
    return tuple(np.concatenate([o[k] for o in out]) for k in range(3))


# ---------------------------------------------------------------------------------------
# Regression: blockwise maximum of |y - y'| / d(x, x')
# ---------------------------------------------------------------------------------------


class _LipschitzData:
    """Both sides of a Lipschitz search, scaled by powers of two.

    Targets are scaled so that their largest entry is below 1 and, for the Euclidean
    metric, features are centred and scaled so that no norm exceeds 1: squared distances
    and squared target differences neither overflow nor, outside the pairs that are
    re-scored ("delicate" pairs, below), underflow. Results are Q / ||y||_inf, which
    the scaling leaves unchanged.
    """

    def __init__(self, XA, YA, XB, YB, metric, exclude=None):
        both = XB is None
        self.exclude = exclude
        self.XA, self.XB, self.metric = XA, (XA if both else XB), metric
        YB = YA if both else YB
        gy = _pow2_scale(_max_abs(YB) if both else _max_abs(YA, YB))
        self.YA = YA * gy
        self.YB = self.YA if both else YB * gy
        self.norm = float(np.sqrt(np.einsum("ij,ij->i", self.YB, self.YB)).max())
        XA = np.asarray(XA, dtype=np.float64)
        if metric != "euclidean":
            XB = XA if both else np.asarray(self.XB, dtype=np.float64)
            (self.A, self.B), self.unscale = _cdist_scaling(metric, XA, XB)
            if both:
                self.B = self.A
            # unit: a distance here is unscale^-1 of one in X's units
            self.unit = None
            self.tolA = np.zeros(self.A.shape[0])
            return
        self.unscale = None
        g = _pow2_scale(_max_abs(XA) if both else _max_abs(XA, self.XB))
        center = _scaled_mean(self.XB, g)
        self.A = XA * g - center
        self.B = self.A if both else self.XB * g - center
        h = _pow2_scale(max(np.abs(self.A).max(initial=0.0), np.abs(self.B).max(initial=0.0)))
        self.A *= h
        if not both:
            self.B *= h
        self.unit = (g, h)  # a distance here is g * h times the distance in X's units
        self.sqA = np.einsum("ij,ij->i", self.A, self.A)
        self.sqB = self.sqA if both else np.einsum("ij,ij->i", self.B, self.B)
        self.nA, self.nB = np.sqrt(self.sqA), np.sqrt(self.sqB)
        # Where a squared distance is not 1e8 times its error bound, or could have lost
        # its value to underflow, the pair is delicate and re-scored exactly.
        self.c = (XA.shape[1] + 8) * _U64 * 1.01 * 1e8
        max_norm = max(self.nA.max(initial=0.0), self.nB.max(initial=0.0))
        self.tolA = self.c * (self.nA + max_norm) ** 2 + _TINY

    def to_relative(self, q_scaled):
        """Q / ||y||_inf from a Q in the scaled units."""
        q = q_scaled / self.norm
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self.unit is None:  # a cdist metric: q ~ 1 / distance
                return np.where(q > 0, 1.0 / self.unscale(1.0 / q), 0.0)
            return q * self.unit[0] * self.unit[1]

    def block(self, r0, r1, c0, c1):
        """Squared scaled ratios of a block (0 for delicate pairs) and its delicate pairs."""
        L2 = _sq_label_diff(self.YA[r0:r1], self.YB[c0:c1])
        if self.metric != "euclidean":
            with np.errstate(over="ignore", invalid="ignore"):
                D2 = cdist(self.A[r0:r1], self.B[c0:c1], metric=self.metric)
            if not np.isfinite(D2).all():
                raise ValueError(
                    f"metric={self.metric!r} gives non-finite distances for finite X; "
                    "rescale X or choose another metric."
                )
            D2 *= D2
            ii, jj = np.nonzero(D2 <= _TINY)
        else:
            D2 = self.A[r0:r1] @ self.B[c0:c1].T
            D2 *= -2.0
            D2 += self.sqA[r0:r1, None]
            D2 += self.sqB[None, c0:c1]
            ii, jj = np.nonzero(D2 <= self.tolA[r0:r1, None])
            if ii.size:  # the row bound is loose with an outlier: check each pair's own
                tol = self.nA[r0 + ii] + self.nB[c0 + jj]
                keep = D2[ii, jj] <= self.c * tol * tol + _TINY
                ii, jj = ii[keep], jj[keep]
        D2[ii, jj] = 1.0
        L2[ii, jj] = 0.0
        np.divide(L2, D2, out=L2)
        if self.exclude is not None:  # leave-one-out: no pair with the excluded column
            ex = self.exclude[r0:r1]
            _mask_self(L2, ex, c0, 0.0)
            keep = ex[ii] != c0 + jj
            ii, jj = ii[keep], jj[keep]
        return L2, ii, jj

    def delicate(self, i, j):
        """Q / ||y||_inf of the pairs ``(i, j)``, from exact distances in X's units."""
        dy = _exact_dist(self.YA, self.YB, i, j) / self.norm
        dx = (
            _exact_dist(self.XA, self.XB, i, j)
            if self.metric == "euclidean"
            else self.unscale(_paired_cdist(self.A, self.B, i, j, self.metric))
        )
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            q = dy / dx
        q[dy == 0] = 0.0  # equal targets: no pair of Gamma, even at distance 0
        return q


# Below this a squared distance (norms <= 1) may have lost its value to underflow.
_TINY = 2.0**-960


def _sq_label_diff(YA, YB):
    out = np.subtract.outer(YA[:, 0], YB[:, 0])
    out *= out
    for k in range(1, YA.shape[1]):
        diff = np.subtract.outer(YA[:, k], YB[:, k])
        diff *= diff
        out += diff
    return out


def _lipschitz_task(data, r0, r1, c0, c1, both, col_block):
    """Row (and column) maxima of a block row: squared scaled ratios and delicate Q's."""
    row_max, row_del = np.zeros(r1 - r0), np.zeros(r1 - r0)
    col_max = np.zeros(c1 - c0) if both else None
    col_del = np.zeros(c1 - c0) if both else None
    for cs in range(c0, c1, col_block):
        ce = min(cs + col_block, c1)
        L2, ii, jj = data.block(r0, r1, cs, ce)
        np.maximum(row_max, L2.max(axis=1), out=row_max)
        if both:
            np.maximum(col_max[cs - c0 : ce - c0], L2.max(axis=0), out=col_max[cs - c0 : ce - c0])
        if ii.size:
            q = data.delicate(r0 + ii, cs + jj)
            np.maximum.at(row_del, ii, q)
            if both:
                np.maximum.at(col_del, cs - c0 + jj, q)
    return r0, (row_max, row_del), c0, (col_max, col_del)


def lipschitz_max(X, Y, *, metric="euclidean", batch_size=None, n_jobs=None, verbose=0):
    """Q(z) / ||y||_inf, Q(z) = max over z' with another target of |y(z) - y(z')| / d(z, z').

    Each unordered pair is visited once (row and column maxima of the upper block
    triangle). Returns float64, ``inf`` where a duplicate of z has another target.
    """
    n = X.shape[0]
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    data = _LipschitzData(X, Y, None, None, metric)
    tasks = [(r0, min(r0 + batch_size, n), r0, n) for r0 in range(0, n, batch_size)]
    results = _run(
        lambda r0, r1, c0, c1: _lipschitz_task(data, r0, r1, c0, c1, True, batch_size),
        tasks,
        n_jobs=n_jobs,
        verbose=verbose,
        desc="Lipschitz maximum",
    )
    q2, q_del = np.zeros(n), np.zeros(n)
    for r0, (row_max, row_del), c0, (col_max, col_del) in results:
        rows = slice(r0, r0 + row_max.shape[0])
        np.maximum(q2[rows], row_max, out=q2[rows])
        np.maximum(q_del[rows], row_del, out=q_del[rows])
        np.maximum(q2[c0:], col_max, out=q2[c0:])
        np.maximum(q_del[c0:], col_del, out=q_del[c0:])
    return np.maximum(data.to_relative(np.sqrt(q2)), q_del)


def lipschitz_max_query(
    Q, YQ, X, Y, *, metric="euclidean", batch_size=None, n_jobs=None, verbose=0, exclude=None
):
    """Q_x(t) / ||y||_inf for labelled queries ``(Q, YQ)`` against the reference ``(X, Y)``.

    ``||y||_inf`` is the reference's. ``exclude[q]`` (optional) is a reference index
    that query ``q`` is not compared with (-1 for none), as in :func:`nearest_in_groups`.
    """
    n_q = Q.shape[0]
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    data = _LipschitzData(Q, YQ, X, Y, metric, exclude)
    tasks = [(r0, min(r0 + batch_size, n_q), 0, X.shape[0]) for r0 in range(0, n_q, batch_size)]
    results = _run(
        lambda r0, r1, c0, c1: _lipschitz_task(data, r0, r1, c0, c1, False, 2 * batch_size),
        tasks,
        n_jobs=n_jobs,
        verbose=verbose,
        desc="Lipschitz maximum",
    )
    q2, q_del = np.zeros(n_q), np.zeros(n_q)
    for r0, (row_max, row_del), _, _ in results:
        q2[r0 : r0 + row_max.shape[0]] = row_max
        q_del[r0 : r0 + row_max.shape[0]] = row_del
    return np.maximum(data.to_relative(np.sqrt(q2)), q_del)


# ---------------------------------------------------------------------------------------
# Approximate backend: pynndescent, one index per class
# ---------------------------------------------------------------------------------------


def approximate_nearest_other_label(
    X, codes, *, metric="euclidean", n_neighbors=30, random_state=None, n_jobs=None, verbose=0
):
    """Approximate :func:`nearest_other_label` with one pynndescent index per class.

    Every sample queries the index of every other class for its nearest member, so the
    search can never miss *all* differently labelled neighbours: each returned distance
    is that of a real differently labelled sample (re-scored exactly in float64), an
    upper bound on the exact reach. pynndescent is imported here, lazily: it compiles
    with numba on first use in a process.
    """
    from pynndescent import NNDescent  # noqa: PLC0415 - lazy on purpose

    X = np.asarray(X, dtype=np.float64)
    # Centred and scaled by powers of two, so that float32 holds any finite input; the
    # distances returned are re-scored on X itself.
    g = _pow2_scale(_max_abs(X))
    center = _scaled_mean(X, g)
    h = _pow2_scale(_scaled_norms(X, g, center).max(initial=0.0))
    X32 = ((X * g - center) * h).astype(np.float32) if metric == "euclidean" else X
    if metric != "euclidean":  # other metrics need not scale with X: only clip to float32
        with np.errstate(over="ignore"):
            X32 = X.astype(np.float32)
        if not np.isfinite(X32).all():
            raise ValueError(
                f"algorithm='approximate' with metric={metric!r} needs features within "
                "float32's range (|x| < 3.4e38); use algorithm='exact'."
            )
    n = X.shape[0]
    n_classes = int(codes.max()) + 1
    best = np.full(n, np.inf)
    partner = np.full(n, -1, dtype=np.intp)
    classes = range(n_classes)
    if verbose:
        from tqdm.auto import tqdm

        classes = tqdm(classes, desc="pynndescent indexes", unit="class")
    for k in classes:
        members = np.flatnonzero(codes == k)
        others = np.flatnonzero(codes != k)
        if members.size == 0 or others.size == 0:
            continue
        if members.size == 1:
            j = np.full(others.size, members[0])
            d_approx = None
        else:
            index = NNDescent(
                X32[members],
                metric=metric,
                n_neighbors=min(n_neighbors, members.size - 1),
                random_state=random_state,
                n_jobs=-1 if n_jobs is None else n_jobs,
                low_memory=True,
                compressed=False,
            )
            # k=1 queries miss often (recall ~0.5 measured); the search keeps a few and
            # widens its frontier (epsilon) for recall >= 0.98 on hard synthetic data.
            nn, d_approx = index.query(
                X32[others], k=min(_QUERY_K, members.size), epsilon=_QUERY_EPSILON
            )
            j = members[nn[:, 0]]
        if metric == "euclidean" or d_approx is None:
            # Re-score in float64; for a single-member class this is the exact distance.
            d = (
                _exact_dist(X, X, others, j)
                if metric == "euclidean"
                else (_paired_cdist(X, X, others, j, metric))
            )
        else:
            d = d_approx[:, 0].astype(np.float64)
        better = d < best[others]
        best[others[better]] = d[better]
        partner[others[better]] = j[better]
    return best, partner


def _paired_cdist(XA, XB, i, j, metric):
    """``d(XA[i], XB[j])`` for a cdist metric, one pair at a time (few pairs only)."""
    return np.fromiter(
        (cdist(XA[[a]], XB[[b]], metric=metric)[0, 0] for a, b in zip(i, j, strict=True)),
        dtype=np.float64,
        count=len(i),
    )
