"""Nearest neighbours, Euclidean: square GEMM blocks and running top-``k`` lists.

A block's GEMM gives squared distances ``|a|² + |b|² − 2 a·b`` straight away, from the
augmented matrices ``[a, |a|², 1]`` and ``[−2 b, 1, |b|²]`` of the data centred and
scaled by powers of two (exact: nothing overflows or cancels on large offsets). Every
query keeps its ``k`` best so far; a block reads, per row, only the entries at or below
the row's current ``k``-th best (one comparison and one ``nonzero`` over the block) and
merges those few into the list.

- :func:`k_nearest`: queries against references, with exact float64 distances.
  Several column sets (subsets of the references) share one GEMM, each with its own
  lists. A float32 GEMM with a per-pair error bound picks the candidates, which are
  re-scored by difference-then-norm from the data as given (copies get exactly 0);
  queries the bound leaves undecided, and data with outliers, take a float64 GEMM whose
  near-duplicate pairs are re-scored the same way.
- :func:`neighbour_order`: every sample's nearest *other* samples in exact order, without
  their distances. Each block above the diagonal serves its rows and, transposed, its
  columns (half the GEMM), in float32 with a per-pair error bound; what the bound leaves
  undecided is recomputed exactly.
"""

import numpy as np
from joblib import effective_n_jobs
from threadpoolctl import threadpool_limits

from skrob._search.blocks import deal, resolve_n_jobs, run_tasks
from skrob._search.euclidean import EuclideanData, row_layout
from skrob._search.exact import exact_dist, max_abs, pow2_scale, scaled_mean

# rows and columns of a GEMM block (float64: 8 MiB, float32: 4 MiB)
_BLOCK = 1024
# a selected pair is recomputed by difference-then-norm where its squared distance is
# below this fraction of |a|² + |b|²: there the GEMM's rounding (about d · 2**-53 of
# that sum) is not small against the distance
_RESCORE_BELOW = 1e-6

# the float32 search keeps this many entries beyond k per sample: the margin that
# separates the k nearest from the rest within the GEMM's error bound
_SLACK = 16


def _augmented(A, B):
    """``(A_aug, B_aug, unscale)``: ``[a, |a|², 1]`` and ``[−2 b, 1, |b|²]`` for the rows
    of ``A`` and ``B`` centred on ``B``'s mean and scaled by powers of two (norms <= 1),
    so that ``A_aug @ B_aug.T`` holds the squared distances; ``unscale`` takes distances
    back to the data's units. Built in place, chunk by chunk (no full-size temporaries)."""
    same = A is B
    parts = [A] if same else [A, B]
    g = pow2_scale(max_abs(*parts))
    centre = scaled_mean(B, g)
    d = A.shape[1]
    augs = [np.empty((X.shape[0], d + 2)) for X in parts]
    top = 0.0
    for X, aug in zip(parts, augs, strict=True):
        for s in range(0, X.shape[0], 4096):
            chunk = aug[s : s + 4096, :d]
            np.multiply(X[s : s + 4096], g, out=chunk)
            chunk -= centre
            top = max(top, chunk.max(initial=0.0), -chunk.min(initial=0.0))
    h = pow2_scale(top)
    for aug in augs:
        aug[:, :d] *= h
        aug[:, d] = np.einsum("ij,ij->i", aug[:, :d], aug[:, :d])
        aug[:, d + 1] = 1.0
    A_aug = augs[0]
    B_aug = np.empty_like(augs[-1])
    np.multiply(augs[-1][:, :d], -2.0, out=B_aug[:, :d])
    B_aug[:, d] = 1.0
    B_aug[:, d + 1] = augs[-1][:, d]
    return A_aug, B_aug, 1.0 / (g * h)


class _TopK:
    """Every row's ``k`` smallest values seen so far and their columns (unsorted)."""

    def __init__(self, n_rows, k, dtype=np.float64, bound=None):
        self.k = k
        self.value = np.full((n_rows, k), np.inf, dtype=dtype)
        self.index = np.full((n_rows, k), -1, dtype=np.intp)
        # each row's k-th smallest so far, or a known upper bound of its final one
        self.bound = np.full(n_rows, np.inf) if bound is None else bound.copy()

    def start(self, r0, D):
        """The lists of rows ``r0 …`` from block ``D`` (columns ``r0 …``) alone: every row's
        ``k``-th smallest in a strided quarter of the columns bounds its ``k``-th
        smallest from above, so only the entries at or below it are merged (a full
        partition of the block where it is too narrow)."""
        k = self.k
        if D.shape[1] >= 4 * k:
            bound = np.partition(D[:, ::4], k - 1, axis=1)[:, k - 1]
            flat = np.flatnonzero(D <= bound[:, None])
            ii, jj = np.divmod(flat, D.shape[1])
            self.offer(r0 + ii, r0 + jj, D.ravel()[flat])
            return
        k = min(k, D.shape[1])
        keep = np.argpartition(D, k - 1, axis=1)[:, :k]
        rows = slice(r0, r0 + D.shape[0])
        self.value[rows, :k] = np.take_along_axis(D, keep, axis=1)
        self.index[rows, :k] = r0 + keep
        if k == self.k:
            self.bound[rows] = self.value[rows].max(axis=1)

    def offer(self, rows, cols, values):
        """Merge the candidates ``(rows, cols, values)``, sorted by row."""
        if rows.size == 0:
            return
        first = np.ones(rows.size, dtype=bool)
        first[1:] = rows[1:] != rows[:-1]
        starts = np.flatnonzero(first)
        touched = rows[starts]
        counts = np.diff(np.append(starts, rows.size))
        slot = np.arange(rows.size) - np.repeat(starts, counts)
        k = self.k
        width = k + int(counts.max())
        value = np.full((touched.size, width), np.inf, dtype=self.value.dtype)
        index = np.full((touched.size, width), -1, dtype=np.intp)
        value[:, :k] = self.value[touched]
        index[:, :k] = self.index[touched]
        where = np.repeat(np.arange(touched.size), counts)
        value[where, k + slot] = values
        index[where, k + slot] = cols
        keep = np.argpartition(value, k - 1, axis=1)[:, :k]
        self.value[touched] = np.take_along_axis(value, keep, axis=1)
        self.index[touched] = np.take_along_axis(index, keep, axis=1)
        self.bound[touched] = np.minimum(self.value[touched].max(axis=1), self.bound[touched])


def _offer_block(top, D, r0, c0, transpose=False):
    """Offer block ``D`` (rows from ``r0``, columns from ``c0``) to ``top``: rows of ``D``
    or, with ``transpose``, its columns as rows. (``flatnonzero`` and a divmod: 10x
    faster than a 2-D ``nonzero``.)"""
    n_cols = D.shape[1]
    if transpose:
        flat = np.flatnonzero(D <= top.bound[c0 : c0 + n_cols][None, :])
        ii, jj = np.divmod(flat, n_cols)
        by_col = np.argsort(jj, kind="stable")
        ii, jj = ii[by_col], jj[by_col]
        top.offer(c0 + jj, r0 + ii, D.ravel()[flat[by_col]])
        return
    flat = np.flatnonzero(D <= top.bound[r0 : r0 + D.shape[0], None])
    ii, jj = np.divmod(flat, n_cols)
    top.offer(r0 + ii, c0 + jj, D.ravel()[flat])


def _diagonal_lists(A_aug, B_aug, k):
    """Every sample's ``k`` nearest others within its own diagonal block: a start for
    the lists, and their ``k``-th values bound the final ones from above."""
    n = A_aug.shape[0]
    top = _TopK(n, k, A_aug.dtype)
    for r0 in range(0, n, _BLOCK):
        r1 = min(r0 + _BLOCK, n)
        D = A_aug[r0:r1] @ B_aug[r0:r1].T
        np.fill_diagonal(D, np.inf)
        top.start(r0, D)
    return top


def _triangle_task(A_aug, B_aug, k, bound, block_rows):
    """The blocks right of the diagonal in ``block_rows``, each for its rows and,
    transposed, for its columns: lists of ``k`` for every sample, from these blocks
    alone, keeping only values at most ``bound`` (the diagonal lists' ``k``-th)."""
    top = _TopK(A_aug.shape[0], k, A_aug.dtype, bound=bound)
    n = A_aug.shape[0]
    for r0 in block_rows:
        for c0 in range(r0 + _BLOCK, n, _BLOCK):
            D = A_aug[r0 : r0 + _BLOCK] @ B_aug[c0 : c0 + _BLOCK].T
            _offer_block(top, D, r0, c0)
            _offer_block(top, D, r0, c0, transpose=True)
    return top.value, top.index


def _symmetric_lists(A_aug, B_aug, k, n_jobs):
    """Every sample's ``k`` nearest other samples (unsorted values and indices), each
    pair's value computed once: the diagonal blocks first, then the blocks right of the
    diagonal in one task per worker (block rows dealt by work, each task with lists for
    every sample), whose lists are merged. A pair lies in one block, so in one list."""
    n = A_aug.shape[0]
    top = _diagonal_lists(A_aug, B_aug, k)
    starts = np.arange(0, n, _BLOCK)[:-1]  # block rows with blocks right of the diagonal
    bins = deal(len(starts) - np.arange(len(starts)), effective_n_jobs(resolve_n_jobs(n_jobs)))
    parts = run_tasks(
        _triangle_task, [(starts[b].tolist(),) for b in bins], shared=(A_aug, B_aug, k, top.bound),
        n_jobs=n_jobs,
    )  # fmt: skip
    return merge_lists([(top.value, top.index), *parts], k)


def merge_lists(lists, k):
    """The ``k`` smallest of each row over several ``(value, index)`` lists that hold
    disjoint pairs (unsorted)."""
    value = np.hstack([v for v, _ in lists])
    index = np.hstack([i for _, i in lists])
    keep = np.argpartition(value, k - 1, axis=1)[:, :k]
    return np.take_along_axis(value, keep, axis=1), np.take_along_axis(index, keep, axis=1)


def groups_and_lists_task(B, tolB, col_runs, row_groups, self_col, col_block, k, bound, blocks):
    """:func:`skrob._search.euclidean.self_group_task` over each of ``blocks``, every
    block's values also offered to lists of each sample's ``k`` nearest others (bounded
    by ``bound``, an upper bound of each final ``k``-th): rows as rows, columns as rows
    beyond the block's own rows (a block's square part holds each pair twice, as rows).
    Returns the candidate pairs ``(i, j, v)`` of the groups and the lists ``(value,
    index)``, in the blocks' (sorted) order."""
    from skrob._search.euclidean import self_group_task

    top = _TopK(B.shape[0], k, B.dtype, bound=bound)

    def visit(D, r0, r1, cs):
        _offer_block(top, D, r0, cs)
        t0 = max(cs, r1)
        if t0 < cs + D.shape[1]:
            _offer_block(top, D[:, t0 - cs :], r0, t0, transpose=True)

    found = [
        self_group_task(B, tolB, col_runs, row_groups, self_col, col_block, *block, visit=visit)
        for block in blocks
    ]
    i, j, v = (np.concatenate([f[m] for f in found]) for m in range(3))
    return i, j, v, top.value, top.index


def _query_task(A_aug, B_aug, self_index, members, k, r0, r1):
    """Queries ``r0 … r1 − 1`` against every column block, a list per column set
    (``members``: a mask over the references, None for all of them). One pass over each
    block picks the entries within the loosest list's bound; each set takes its own from
    those."""
    tops = [_TopK(r1 - r0, k, A_aug.dtype) for _ in members]
    n_b = B_aug.shape[0]
    for c0 in range(0, n_b, _BLOCK):
        c1 = min(c0 + _BLOCK, n_b)
        D = A_aug[r0:r1] @ B_aug[c0:c1].T
        if self_index is not None:
            mine = self_index[r0:r1]
            inside = np.flatnonzero((mine >= c0) & (mine < c1))
            D[inside, mine[inside] - c0] = np.inf
        loosest = tops[0].bound if len(tops) == 1 else np.max([t.bound for t in tops], axis=0)
        flat = np.flatnonzero(D <= loosest[:, None])
        ii, jj = np.divmod(flat, c1 - c0)
        values = D.ravel()[flat]
        jj += c0
        for top, member in zip(tops, members, strict=True):
            keep = values <= top.bound[ii]
            if member is not None:
                keep &= member[jj]
            top.offer(ii[keep], jj[keep], values[keep])
    return r0, [(top.value, top.index) for top in tops]


def k_nearest(A, B, k, *, self_index=None, column_sets=(None,), n_jobs=None):
    """``(distances, indices)`` of the ``k`` nearest rows of ``B`` to every row of ``A``,
    nearest first (equal distances: the lower index first), one pair per entry of
    ``column_sets``. Distances are exact float64 (difference-then-norm of the data as
    given).

    ``self_index[i]``: the reference that query ``i`` is, left out of its list.
    ``column_sets``: index arrays into ``B`` (None: all of it), each searched on its own;
    returned indices refer to ``B``. Each set must hold ``k`` references besides the
    query itself. Blocks of queries run on ``n_jobs`` threads (None: every core), one
    BLAS thread each.

    A float32 GEMM gives every pair's squared distance ``v`` within ``tau = c (|a| +
    |b|)²`` (:class:`skrob._search.euclidean.EuclideanData`'s data and bound) and each
    query keeps ``k + 16`` entries per set. A list is proven to hold the ``k`` nearest
    when its last entry's lower bound exceeds the upper bound of every entry ranked
    ``<= k``; then every entry whose lower bound is at most that largest upper bound (a
    superset of the ``k`` nearest and of every tie with the ``k``-th) is re-scored
    exactly and the ``k`` smallest taken. Queries whose lists are not proven (ties
    within the bound, outliers) are searched again in float64.
    """
    same = B is A
    A = np.ascontiguousarray(A, dtype=np.float64)
    B = A if same else np.ascontiguousarray(B, dtype=np.float64)
    members = []
    for cols in column_sets:
        if cols is None:
            members.append(None)
            continue
        member = np.zeros(B.shape[0], dtype=bool)
        member[np.asarray(cols, dtype=np.intp)] = True
        members.append(member)
    data = EuclideanData(A, None if same else B, None, None)
    if data.has_outliers():  # they would widen every pair's bound: float64 throughout
        return _k_nearest64(A, B, k, self_index, members, n_jobs)
    rows_aug = row_layout(data.B) if same else data.A
    norms_a = data.norms_b if same else data.norms_a
    tol_a = data.tolB if same else data.tolA
    sizes = [B.shape[0] if m is None else int(m.sum()) for m in members]
    K = min(k + _SLACK, min(sizes) - (self_index is not None))
    lists = _run_queries(rows_aug, data.B, self_index, members, K, n_jobs)
    out, redo = [], np.zeros(A.shape[0], dtype=bool)
    for value, idx in lists:
        value = value.astype(np.float64)
        order = np.lexsort((idx, value), axis=1)
        value = np.take_along_axis(value, order, axis=1)
        idx = np.take_along_axis(idx, order, axis=1)
        tau = data.c * (norms_a[:, None] + data.norms_b[np.maximum(idx, 0)]) ** 2 + 2.0**-120
        top = (value[:, :k] + tau[:, :k]).max(axis=1)  # the k nearest are at most this
        # what the list left out is at least as far as its last entry, within tol_a
        redo |= ~(value[:, -1] - tol_a > top)
        rescore = (value - tau <= top[:, None]) & (idx >= 0)
        i, j = np.nonzero(rescore)
        dist = np.full(value.shape, np.inf)
        dist[i, j] = exact_dist(A, B, i, idx[i, j])
        order = np.lexsort((idx, dist), axis=1)[:, :k]
        out.append(
            [np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1)]
        )
    rows = np.flatnonzero(redo)
    if rows.size:
        again = _k_nearest64(
            A[rows], B, k, None if self_index is None else self_index[rows], members, n_jobs
        )
        for pair, (dist, idx) in zip(out, again, strict=True):
            pair[0][rows], pair[1][rows] = dist, idx
    return [tuple(pair) for pair in out]


def _run_queries(A_aug, B_aug, self_index, members, k, n_jobs):
    """Every query's unsorted ``k``-lists per column set (:func:`_query_task`)."""
    n_a = A_aug.shape[0]
    workers = resolve_n_jobs(n_jobs)
    rows = max(64, min(_BLOCK, -(-n_a // effective_n_jobs(workers))))
    tasks = [(r, min(r + rows, n_a)) for r in range(0, n_a, rows)]
    parts = sorted(
        run_tasks(_query_task, tasks, shared=(A_aug, B_aug, self_index, members, k), n_jobs=n_jobs),
        key=lambda p: p[0],
    )
    return [
        (
            np.concatenate([p[1][s][0] for p in parts]),
            np.concatenate([p[1][s][1] for p in parts]),
        )
        for s in range(len(members))
    ]


def _k_nearest64(A, B, k, self_index, members, n_jobs):
    """:func:`k_nearest` by a float64 GEMM (``members``: the sets as masks over ``B``):
    its rounding is small against the distances but for near-duplicates, which are
    recomputed by difference-then-norm."""
    A_aug, B_aug, unscale = _augmented(A, B)
    sq_a, sq_b = A_aug[:, -2], B_aug[:, -1]
    out = []
    for value, idx in _run_queries(A_aug, B_aug, self_index, members, k, n_jobs):
        sq = np.maximum(value, 0.0)
        dist = np.sqrt(sq) * unscale
        near = sq < _RESCORE_BELOW * (sq_a[:, None] + sq_b[idx])
        if near.any():  # from the data as given: centring rounds at the data's ulp
            i, j = np.nonzero(near)
            dist[i, j] = exact_dist(A, B, i, idx[i, j])
        order = np.lexsort((idx, dist), axis=1)
        out.append(
            (np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1))
        )
    return out


def neighbour_order(X, k, *, cuts=None, n_jobs=None):
    """``(indices, copies)``: every sample's ``k`` nearest *other* samples, nearest first
    in exact float64 order (equal distances: the lower index first), and which of them
    are exact copies (distance 0), Euclidean.

    For callers that need the neighbours, not their distances. One float32 GEMM over
    the triangle (half of :func:`k_nearest`'s float64 work at twice the rate) gives every
    pair's squared distance ``v`` within ``tau = (d + 8) u32 (|a| + |b|)²`` (the data
    and the bound of the exact Euclidean kernel,
    :class:`skrob._search.euclidean.EuclideanData`). Each sample keeps
    ``k + 16`` entries. Its list is proven to hold its ``k`` nearest when the last
    entry's lower bound exceeds the upper bound of every entry ranked ``<= k`` (what the
    list left out is at least as far as its last entry); otherwise the sample is searched
    again by :func:`k_nearest` in float64. Within a list, overlapping intervals
    ``[v − tau, v + tau]`` form clusters whose unions are disjoint, so the order between
    clusters is certain; members of a cluster are recomputed exactly (difference-then-
    norm) and ordered. ``cuts``: the list positions whose *sets* matter (the first ``c``
    neighbours for each ``c`` in ``cuts``): only clusters across a cut are recomputed,
    and the order within the parts between cuts is the float32 one. None: every position
    (the exact order). Entries that may be at distance 0 are recomputed either way.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    n = X.shape[0]
    K = min(k + _SLACK, n - 1)
    # the exact kernel's float32 columns [z, 1, |z|²] and their error bounds
    data = EuclideanData(X, None, None, None)
    blas = resolve_n_jobs(n_jobs)
    with threadpool_limits(limits=None if blas < 0 else blas, user_api="blas"):
        value, index = _symmetric_lists(row_layout(data.B), data.B, K, n_jobs)
    return order_from_lists(X, data, value, index, k, cuts=cuts, n_jobs=n_jobs)


def order_from_lists(X, data, value, index, k, *, cuts=None, n_jobs=None):
    """:func:`neighbour_order`'s result from every sample's float32 list of its ``K > k``
    nearest others (unsorted squared distances ``value`` and their ``index``, from
    ``data``'s columns; ``data`` is the :class:`EuclideanData` of ``X`` in its own
    order): the proof that a list holds the ``k`` nearest, the exact re-scoring across
    the cuts, and the float64 search of the lists left unproven."""
    n = X.shape[0]
    K = value.shape[1]
    norms, unscale = data.norms_b, data.unscale
    value = value.astype(np.float64)
    order = np.lexsort((index, value), axis=1)
    value = np.take_along_axis(value, order, axis=1)
    index = np.take_along_axis(index, order, axis=1)
    tau = data.c * (norms[:, None] + norms[index]) ** 2 + 2.0**-120
    lo, hi = value - tau, value + tau
    # the list holds the k nearest: what it left out (v >= its last v) is farther; the
    # bound of a pair with the farthest sample, c (|a| + max |b|)², covers them all
    if K < n - 1:
        proven = value[:, -1] - data.tolB > hi[:, :k].max(axis=1)
    else:
        proven = np.ones(n, dtype=bool)
    # clusters of overlapping intervals: sorted by lower end, a new one where the lower
    # end passes every upper end before it; in value order each cluster is contiguous
    by_lo = np.argsort(lo, axis=1, kind="stable")
    lo_s = np.take_along_axis(lo, by_lo, axis=1)
    reach = np.maximum.accumulate(np.take_along_axis(hi, by_lo, axis=1), axis=1)
    new = np.ones(lo.shape, dtype=bool)
    new[:, 1:] = lo_s[:, 1:] > reach[:, :-1]
    cluster = np.empty(lo.shape, dtype=np.intp)
    np.put_along_axis(cluster, by_lo, np.cumsum(new, axis=1), axis=1)
    positions = range(1, K) if cuts is None else [c for c in cuts if 0 < c < K]
    rescore = lo <= 0  # a copy: its distance must be exactly 0
    for cut in positions:  # the cluster across the cut, where there is one
        across = cluster[:, cut - 1] == cluster[:, cut]
        rescore |= across[:, None] & (cluster == cluster[:, cut, None])
    rescore &= proven[:, None]
    copies = np.zeros(value.shape, dtype=bool)
    if rescore.any():
        i, j = np.nonzero(rescore)
        exact = exact_dist(X, X, i, index[i, j])
        value[i, j] = (exact / unscale) ** 2
        copies[i, j] = exact == 0
    order = np.lexsort((index, value), axis=1)[:, :k]
    index = np.take_along_axis(index, order, axis=1)
    copies = np.take_along_axis(copies, order, axis=1)
    redo = np.flatnonzero(~proven)
    if redo.size:  # not separated within the bound (ties, outliers): float64 for those
        ((dist, idx),) = k_nearest(X[redo], X, k, self_index=redo, n_jobs=n_jobs)
        index[redo], copies[redo] = idx, dist == 0
    return index, copies
