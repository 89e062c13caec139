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


class _EuclideanData:
    """Augmented float32 copies of the rows (``A``) and columns (``B``) and error bounds.

    ``A`` holds the rows ``XA[order_a]`` and ``B`` the columns ``XB[order_b]``, centred;
    re-scoring maps block indices back through the orders and uses the data as given.
    """

    def __init__(self, XA, XB, order_a, order_b, center):
        self.XA, self.order_a = XA, order_a
        self.XB, self.order_b = (XA, order_a) if XB is None else (XB, order_b)
        self.B, sq_b = self._augment(self.XB, self.order_b, center, rows=False)
        if XB is None:
            self.A = self.B * np.float32(-2.0)  # exact: a power of two
            self.A[:, -2:] = self.B[:, -1:-3:-1]
            sq_a = sq_b
        else:
            self.A, sq_a = self._augment(XA, order_a, center, rows=True)
        # Per-sample bound on the error of any pair involving it: the pair's bound is
        # c * (|a| + |b|)^2 <= c * (|a| + max|b|)^2.
        c = (XA.shape[1] + 8) * _U32 * 1.01
        na, nb = np.sqrt(sq_a), np.sqrt(sq_b)
        max_norm = max(na.max(initial=0.0), nb.max(initial=0.0))
        self.tolA = c * (na + max_norm) ** 2
        self.tolB = c * (nb + max_norm) ** 2

    @staticmethod
    def _augment(X, order, center, rows):
        n, d = X.shape
        out = np.empty((n, d + 2), dtype=np.float32)
        body = out[:, :d]
        body[...] = X if order is None else np.take(X, order, axis=0)
        body -= center.astype(np.float32)
        sq = np.einsum("ij,ij->i", body, body, dtype=np.float64)
        if rows:
            body *= np.float32(-2.0)
            out[:, d], out[:, d + 1] = sq, 1.0
        else:
            out[:, d], out[:, d + 1] = 1.0, sq
        return out, sq

    def exact_sq_dist(self, i, j):
        """Exact squared distances of the block-index pairs ``(i, j)``."""
        i = i if self.order_a is None else self.order_a[i]
        j = j if self.order_b is None else self.order_b[j]
        return _exact_sq_dist(self.XA, self.XB, i, j)


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


def _euclidean_task(data, r0, r1, c0, c1, both, col_block, col_run):
    """Scan rows ``[r0, r1)`` against columns ``[c0, c1)``; return candidate pairs."""
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
        _row_candidates(Db, run, tol_r, r0, cs, out)
        if both:
            _col_candidates(Db, col_run[cs:ce], data.tolB[cs:ce], r0, cs, out)
    if not out:
        return np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0, np.float32)
    return tuple(np.concatenate([o[k] for o in out]) for k in range(3))


def _exact_sq_dist(XA, XB, i, j, chunk=512):
    """Float64 squared distances of the pairs ``(XA[i], XB[j])``, by difference-then-norm.

    Small chunks keep the float64 copies in cache (measured 2x faster than 8192).
    """
    out = np.empty(i.shape[0], dtype=np.float64)
    for s in range(0, i.shape[0], chunk):
        diff = XA[i[s : s + chunk]].astype(np.float64)
        diff -= XB[j[s : s + chunk]].astype(np.float64, copy=False)
        out[s : s + chunk] = np.einsum("ij,ij->i", diff, diff)
    return out


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

    Returns each key's exact minimum distance and the partner index attaining it.
    """
    v = v.astype(np.float64)
    keys = keys_i if tol_j is None else np.concatenate([keys_i, j])
    approx = np.full(n_keys, np.inf)
    np.minimum.at(approx, keys, np.concatenate([v, v]) if tol_j is not None else v)
    keep_i = v <= approx[keys_i] + 2 * tol_i[keys_i]
    keep_j = v <= approx[j] + 2 * tol_j[j] if tol_j is not None else np.zeros_like(keep_i)
    keep = keep_i | keep_j
    sq = data.exact_sq_dist(i[keep], j[keep])
    keep_i, keep_j = keep_i[keep], keep_j[keep]
    i, j = i[keep], j[keep]
    best, arg = _reduce_min(
        np.concatenate([keys_i[keep][keep_i], j[keep_j]]),
        np.concatenate([sq[keep_i], sq[keep_j]]),
        n_keys,
        np.concatenate([j[keep_i], i[keep_j]]),
    )
    return np.sqrt(best), arg


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
        data = _EuclideanData(X, None, order, None, center=X.mean(axis=0, dtype=np.float64))
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
        Xs = np.asarray(X, dtype=np.float64)[order]
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
    reach = np.empty(n)
    partner = np.empty(n, dtype=np.intp)
    reach[order] = dist
    partner[order] = order[arg]
    return reach, partner


def nearest_in_groups(
    Q, X, codes, n_groups, *, metric="euclidean", batch_size=None, n_jobs=None, verbose=0
):
    """Distance from every query to the nearest reference sample of each group.

    Returns
    -------
    dist : ndarray of shape (n_queries, n_groups), float64 (inf for an empty group).
    arg : ndarray of shape (n_queries, n_groups), index into ``X`` (-1 for an empty group).
    """
    n_q = Q.shape[0]
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    col_block = 2 * batch_size
    order = np.argsort(codes, kind="stable")
    codes_sorted = codes[order]
    bounds = _class_ranges(codes_sorted, n_groups)
    tasks = [
        (r0, min(r0 + batch_size, n_q), bounds[g], bounds[g + 1])
        for g in range(n_groups)
        if bounds[g + 1] > bounds[g]
        for r0 in range(0, n_q, batch_size)
    ]
    if metric == "euclidean":
        data = _EuclideanData(Q, X, None, order, center=X.mean(axis=0, dtype=np.float64))
        i, j, v = _run_candidates(
            lambda r0, r1, c0, c1: _euclidean_task(data, r0, r1, c0, c1, False, col_block, None),
            tasks,
            n_jobs=n_jobs,
            verbose=verbose,
            desc="nearest reference",
        )
        keys = i * n_groups + codes_sorted[j]
        tol_keys = np.repeat(data.tolA, n_groups)
        dist, arg = _refine(data, i, j, v, tol_keys, keys, n_q * n_groups)
    else:
        Q = np.asarray(Q, dtype=np.float64)
        Xs = np.asarray(X, dtype=np.float64)[order]
        i, j, v = _run_candidates(
            lambda r0, r1, c0, c1: _cdist_task(Q, Xs, r0, r1, c0, c1, False, col_block, metric),
            tasks,
            n_jobs=n_jobs,
            verbose=verbose,
            desc="nearest reference",
        )
        dist, arg = _reduce_min(i * n_groups + codes_sorted[j], v, n_q * n_groups, j)
    arg = np.where(arg >= 0, order[np.maximum(arg, 0)], -1)
    return dist.reshape(n_q, n_groups), arg.reshape(n_q, n_groups)


def _cdist_task(XA, XB, r0, r1, c0, c1, both, col_block, metric):
    """Exact float64 ``cdist`` blocks; row (and column) minima with their partners."""
    out = []
    a = XA[r0:r1]
    for cs in range(c0, c1, col_block):
        ce = min(cs + col_block, c1)
        D = cdist(a, XB[cs:ce], metric=metric)
        j = D.argmin(axis=1)
        out.append((r0 + np.arange(r1 - r0), cs + j, D[np.arange(r1 - r0), j]))
        if both:
            i = D.argmin(axis=0)
            out.append((r0 + i, cs + np.arange(ce - cs), D[i, np.arange(ce - cs)]))
    return tuple(np.concatenate([o[k] for o in out]) for k in range(3))


# ---------------------------------------------------------------------------------------
# Regression: blockwise maximum of |y - y'| / d(x, x')
# ---------------------------------------------------------------------------------------


def _sq_dist_block(XA, XB, sqA, sqB, metric, tol_rows):
    """Float64 squared distances of two blocks, near-coincident pairs recomputed exactly.

    Also returns the pairs ``(ii, jj)`` outside of which no distance can be 0.
    """
    if metric != "euclidean":
        D2 = cdist(XA, XB, metric=metric)
        D2 *= D2
        ii, jj = np.nonzero(D2 == 0.0)
        return D2, ii, jj
    D2 = XA @ XB.T
    D2 *= -2.0
    D2 += sqA[:, None]
    D2 += sqB[None, :]
    # |error| <= tol; where D2 is not 1e8 times larger than that, recompute exactly.
    ii, jj = np.nonzero(D2 <= tol_rows[:, None])
    if ii.size:
        diff = XA[ii] - XB[jj]
        D2[ii, jj] = np.einsum("ij,ij->i", diff, diff)
    return D2, ii, jj


def _sq_label_diff(YA, YB):
    out = np.subtract.outer(YA[:, 0], YB[:, 0])
    out *= out
    for k in range(1, YA.shape[1]):
        diff = np.subtract.outer(YA[:, k], YB[:, k])
        diff *= diff
        out += diff
    return out


def _lipschitz_task(XA, YA, sqA, tolA, XB, YB, sqB, r0, r1, c0, c1, both, col_block, metric):
    row_max = np.zeros(r1 - r0)
    col_max = np.zeros(c1 - c0) if both else None
    for cs in range(c0, c1, col_block):
        ce = min(cs + col_block, c1)
        D2, ii, jj = _sq_dist_block(
            XA[r0:r1], XB[cs:ce], sqA[r0:r1], sqB[cs:ce], metric, tolA[r0:r1]
        )
        L2 = _sq_label_diff(YA[r0:r1], YB[cs:ce])
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(L2, D2, out=L2)
        # y != y' at distance 0 is already inf; 0 / 0 (equal targets at distance 0) is no
        # pair of Gamma. Zero distances occur only among the pairs (ii, jj).
        if ii.size:
            near = L2[ii, jj]
            near[np.isnan(near)] = 0.0
            L2[ii, jj] = near
        np.maximum(row_max, L2.max(axis=1), out=row_max)
        if both:
            np.maximum(col_max[cs - c0 : ce - c0], L2.max(axis=0), out=col_max[cs - c0 : ce - c0])
    return r0, row_max, c0, col_max


def _lipschitz_prep(XA, XB, center):
    XA = np.asarray(XA, dtype=np.float64) - center
    XB = XA if XB is None else np.asarray(XB, dtype=np.float64) - center
    sqA = np.einsum("ij,ij->i", XA, XA)
    sqB = sqA if XB is XA else np.einsum("ij,ij->i", XB, XB)
    max_norm = np.sqrt(max(sqA.max(initial=0.0), sqB.max(initial=0.0)))
    c = (XA.shape[1] + 8) * _U64 * 1.01 * 1e8
    tolA = c * (np.sqrt(sqA) + max_norm) ** 2
    return XA, XB, sqA, sqB, tolA


def lipschitz_max(X, Y, *, metric="euclidean", batch_size=None, n_jobs=None, verbose=0):
    """Q(z) = max over samples z' with a different target of |y(z) - y(z')| / d(z, z').

    Each unordered pair is visited once (row and column maxima of the upper block
    triangle). Returns float64, ``inf`` where a duplicate of z has another target.
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    XA, XB, sqA, sqB, tolA = _lipschitz_prep(X, None, X.mean(axis=0))
    tasks = [(r0, min(r0 + batch_size, n), r0, n) for r0 in range(0, n, batch_size)]
    results = _run(
        lambda r0, r1, c0, c1: _lipschitz_task(
            XA, Y, sqA, tolA, XB, Y, sqB, r0, r1, c0, c1, True, batch_size, metric
        ),
        tasks,
        n_jobs=n_jobs,
        verbose=verbose,
        desc="Lipschitz maximum",
    )
    q2 = np.zeros(n)
    for r0, row_max, c0, col_max in results:
        np.maximum(q2[r0 : r0 + row_max.shape[0]], row_max, out=q2[r0 : r0 + row_max.shape[0]])
        np.maximum(q2[c0:], col_max, out=q2[c0:])
    return np.sqrt(q2)


def lipschitz_max_query(
    Q, YQ, X, Y, *, metric="euclidean", batch_size=None, n_jobs=None, verbose=0
):
    """Q_x(t) for labelled queries ``(Q, YQ)`` against the reference ``(X, Y)``."""
    Q = np.asarray(Q, dtype=np.float64)
    n_q = Q.shape[0]
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    XA, XB, sqA, sqB, tolA = _lipschitz_prep(Q, X, np.asarray(X).mean(axis=0))
    tasks = [(r0, min(r0 + batch_size, n_q), 0, XB.shape[0]) for r0 in range(0, n_q, batch_size)]
    results = _run(
        lambda r0, r1, c0, c1: _lipschitz_task(
            XA, YQ, sqA, tolA, XB, Y, sqB, r0, r1, c0, c1, False, 2 * batch_size, metric
        ),
        tasks,
        n_jobs=n_jobs,
        verbose=verbose,
        desc="Lipschitz maximum",
    )
    q2 = np.zeros(n_q)
    for r0, row_max, _, _ in results:
        q2[r0 : r0 + row_max.shape[0]] = row_max
    return np.sqrt(q2)


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
    X32 = np.ascontiguousarray(X, dtype=np.float32)
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
                np.sqrt(_exact_sq_dist(X, X, others, j))
                if metric == "euclidean"
                else (_paired_cdist(X, others, j, metric))
            )
        else:
            d = d_approx[:, 0].astype(np.float64)
        better = d < best[others]
        best[others[better]] = d[better]
        partner[others[better]] = j[better]
    return best, partner


def _paired_cdist(X, i, j, metric):
    """``d(X[i], X[j])`` for a metric without a vectorised paired form (rare path)."""
    return np.fromiter(
        (cdist(X[[a]], X[[b]], metric=metric)[0, 0] for a, b in zip(i, j, strict=True)),
        dtype=np.float64,
        count=len(i),
    )
