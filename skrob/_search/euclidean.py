"""The exact Euclidean backend: a float32 GEMM with a per-pair error bound, float64 re-scoring.

Squared distances of a row block ``a`` and a column block ``b`` come from *one* float32
GEMM on augmented matrices, ``[-2a, |a|^2, 1] @ [b, 1, |b|^2].T = |a|^2 + |b|^2 - 2ab``,
so no element-wise pass is spent on adding norms. The data are centred and scaled by
powers of two first (no norm above 1: nothing overflows, and underflow stays below the
bound). The rounding error is bounded, pair by pair, by ``tol = (d + 8) * u32 * (|a| +
|b|)^2`` (the classical bound for a dot product of ``d + 2`` terms, plus the rounding of
the inputs). Every block emits only the candidates that can still be a row's (or a
column's) nearest neighbour: its approximate minimum, and when the second smallest value
is within ``2 * tol`` of it, every value in that band. At the end the candidates within
``2 * tol`` of each sample's approximate minimum are re-scored exactly, in float64, by
difference-then-norm. The true nearest neighbour is always among them, so results match
a float64 brute force to rounding, at float32 GEMM throughput.

Rows far beyond the others (``OUTLIER_RATIO`` times the median norm) would widen every
pair's bound; :func:`outlier_split` finds them and :func:`exact_groups` searches their
pairs by a float64 GEMM with each pair's own bound.
"""

import numpy as np

from skrob._search.blocks import (
    bounded_candidates,
    class_ranges,
    mask_self,
    pair_tolerance,
    reduce_min,
    sorted_positions,
)
from skrob._search.exact import exact_dist, max_abs, pow2_scale, scaled_mean, scaled_norms

_U32 = float(np.finfo(np.float32).eps) / 2

_U64 = float(np.finfo(np.float64).eps) / 2

# Column argmins go through row chunks of this height: numpy's argmin along axis 0 is
# ~20x slower than a min along it.
_CHUNK = 64


# A row whose centred norm exceeds this many times the median norm is an outlier: it would
# inflate the error bound of every pair in the float32 kernel, so its pairs are searched
# in float64 instead (exact_groups).
_OUTLIER_RATIO = 64.0


def outlier_split(X, Q=None):
    """Masks of the ordinary rows of ``X`` and of the queries ``Q`` (None without Q).

    Norms are taken about the coordinate-wise median of the reference ``X``, which an
    outlier cannot move; a row beyond ``_OUTLIER_RATIO`` times their median (of the
    positive ones) is an outlier.
    """
    g = pow2_scale(max_abs(X) if Q is None else max_abs(X, Q))
    center = np.median(X * g, axis=0)
    nx = scaled_norms(X, g, center)
    positive = nx[nx > 0]
    threshold = _OUTLIER_RATIO * (np.median(positive) if positive.size else 0.0)
    ordinary_q = None if Q is None else scaled_norms(Q, g, center) <= threshold
    return nx <= threshold, ordinary_q


class EuclideanData:
    """Augmented float32 copies of the rows (``A``) and columns (``B``) and error bounds.

    ``A`` holds the rows ``XA[order_a]`` and ``B`` the columns ``XB[order_b]``, centred
    and scaled by powers of two so that no norm exceeds 1: float32 can neither overflow
    nor lose a distance to underflow beyond the error bound. Re-scoring maps block
    indices back through the orders and uses the data as given.
    """

    def __init__(self, XA, XB, order_a, order_b):
        self.XA, self.order_a = XA, order_a
        self.XB, self.order_b = (XA, order_a) if XB is None else (XB, order_b)
        g = pow2_scale(max_abs(XA) if XB is None else max_abs(XA, XB))
        center = scaled_mean(self.XB, g)
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
            spread = scaled_norms(self.XB, g, center).max(initial=0.0)
            if XB is not None:
                spread = max(spread, scaled_norms(XA, g, center).max(initial=0.0))
            if spread == 0.0:
                break
            h = pow2_scale(spread)
        if XB is None:
            self.A = None  # the rows are the columns: each task derives its block (row_layout)
        # Per-sample bound on the error of any pair involving it: the pair's bound is
        # c * (|a| + |b|)^2 <= c * (|a| + max|b|)^2. The absolute term covers float32
        # underflow (at most 2**-149 per product, norms <= 2 sqrt(d)).
        c = (XA.shape[1] + 8) * _U32 * 1.01
        na, nb = np.sqrt(sq_a), np.sqrt(sq_b)
        self.norms_a, self.norms_b = na, nb
        self.c = c  # a pair's bound: c (|a| + |b|)² + 2**-120
        self.unscale = 1.0 / (g * h)  # from the augmented rows' units to the data's
        self.tolA = c * (na + max_norm) ** 2 + 2.0**-120
        self.tolB = c * (nb + max_norm) ** 2 + 2.0**-120

    def has_outliers(self):
        """Whether a norm exceeds ``_OUTLIER_RATIO`` times the reference's median norm.

        Such a row inflates the error bound of every pair; the caller then splits the
        outliers off (:func:`outlier_split`).
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
        return exact_dist(self.XA, self.XB, i, j)


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


def row_layout(cols):
    """Rows in the layout ``[-2b, |b|^2, 1]`` from columns in the layout ``[b, 1, |b|^2]``
    (exact: a power of two and a swap); numpy arrays or torch tensors."""
    a = cols * -2.0
    a[:, -2:] = cols[:, [-1, -2]]
    return a


def euclidean_task(
    A, B, tolA, tolB, col_run, both, col_block, self_col, r0, r1, c0, c1, visit=None
):
    """Scan rows ``[r0, r1)`` against columns ``[c0, c1)``; return candidate pairs.

    ``A`` and ``B`` are :class:`EuclideanData`'s augmented rows and columns (``A`` None in
    a self-search), ``tolA``/``tolB`` their bounds, ``col_run`` the running column minima
    (self-search). ``self_col[r]`` (optional) is a column that row ``r`` must not be
    paired with. Arrays come as arguments, so that joblib ships them once per worker.
    ``visit(D, r0, r1, cs)`` (optional) sees every block of values (columns from ``cs``)
    before the minima are taken, and must not change it.
    """
    self_col = None if self_col is None else self_col[r0:r1]
    a = row_layout(B[r0:r1]) if A is None else A[r0:r1]
    run = np.full(r1 - r0, np.inf, dtype=np.float32)
    tol_r = tolA[r0:r1]
    if both and not col_run.flags.writeable:  # a process backend sent a read-only copy
        col_run = col_run.copy()
    out = []
    D = np.empty((r1 - r0, min(col_block, c1 - c0)), dtype=np.float32)
    for cs in range(c0, c1, col_block):
        ce = min(cs + col_block, c1)
        Db = D if ce - cs == D.shape[1] else np.empty((r1 - r0, ce - cs), dtype=np.float32)
        np.dot(a, B[cs:ce].T, out=Db)
        mask_self(Db, self_col, cs, np.inf)
        if visit is not None:
            visit(Db, r0, r1, cs)
        _row_candidates(Db, run, tol_r, r0, cs, out)
        if both:
            _col_candidates(Db, col_run[cs:ce], tolB[cs:ce], r0, cs, out)
    if not out:
        return np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0, np.float32)
    return tuple(np.concatenate([o[k] for o in out]) for k in range(3))


def self_group_task(B, tolB, col_runs, row_groups, self_col, col_block, r0, r1, c0, c1, visit=None):
    """:func:`euclidean_task` of a self-search by groups: rows ``[r0, r1)`` share one
    group ``row_groups[r0]``, the columns another; each column's running minimum is kept
    per row group (``col_runs[group]``), for the column's nearest sample of that group."""
    col_run = col_runs[row_groups[r0]]
    return euclidean_task(
        None, B, tolB, tolB, col_run, True, col_block, self_col, r0, r1, c0, c1, visit
    )


def refine(data, i, j, v, tol_i, keys_i, n_keys, tol_j=None, keys_j=None):
    """Re-score the candidates within ``2 * tol`` of their key's approximate minimum.

    A candidate pair ``(i, j)`` with approximate squared distance ``v`` counts for the key
    ``keys_i`` of its row and, when ``tol_j`` is given (self-search), for the key
    ``keys_j`` (default ``j``) of its column as well; ``tol_i``/``tol_j`` are indexed by
    key. Each kept pair is re-scored once, exactly, in float64.

    Returns each key's exact minimum distance and the partner index attaining it (-1 when
    the key has no candidate).
    """
    v = v.astype(np.float64)
    if keys_j is None:
        keys_j = j
    keys = keys_i if tol_j is None else np.concatenate([keys_i, keys_j])
    approx = np.full(n_keys, np.inf)
    np.minimum.at(approx, keys, np.concatenate([v, v]) if tol_j is not None else v)
    keep_i = v <= approx[keys_i] + 2 * tol_i[keys_i]
    keep_j = v <= approx[keys_j] + 2 * tol_j[keys_j] if tol_j is not None else np.zeros_like(keep_i)
    keep = (keep_i | keep_j) & np.isfinite(v)  # inf: a pair masked out (leave-one-out)
    dist = data.exact_dist(i[keep], j[keep])
    keep_i, keep_j = keep_i[keep], keep_j[keep]
    i, j, keys_j = i[keep], j[keep], keys_j[keep]
    return reduce_min(
        np.concatenate([keys_i[keep][keep_i], keys_j[keep_j]]),
        np.concatenate([dist[keep_i], dist[keep_j]]),
        n_keys,
        np.concatenate([j[keep_i], i[keep_j]]),
    )


def exact_groups(A, B, groups, n_groups, *, exclude=None, row_block=256, col_block=4096):
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
    bounds = class_ranges(groups[order], n_groups)
    self_col = sorted_positions(order, exclude)
    g = pow2_scale(max_abs(A, B))
    center = scaled_mean(B, g)
    h = pow2_scale(max(scaled_norms(A, g, center).max(), scaled_norms(B, g, center).max()))
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
        mask_self(D, None if self_col is None else self_col[r0:r1], c0, np.inf)
        return D, pair_tolerance(na[r0:r1], nb[c0:c1], c)

    i, j = bounded_candidates(block, blocks, n_a, n_groups)
    j = order[j]
    best, partner = reduce_min(i * n_groups + groups[j], exact_dist(A, B, i, j), n_a * n_groups, j)
    return best.reshape(n_a, n_groups), partner.reshape(n_a, n_groups)
