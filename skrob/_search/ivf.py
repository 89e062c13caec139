"""The inverted-list backend: class-pure k-means lists, probed by the other classes.

Every class is cut by k-means into lists of about ``list_size`` samples. Each sample
probes the ``nprobe`` list centres nearest to it *among the other classes' lists*, so
every list it scans holds only differently labelled samples. Every returned distance is
that of a real differently labelled sample, re-scored exactly in float64: an upper bound
on the exact reach, equal to it whenever the scan finds the nearest one (recall@1 is
measured in benchmarks/bench_sample_robustness.py).

Two scans:

- **Projected**, where a quarter of the principal components holds most of the
  variance (``_VARIANCE``, e.g. images): the lists are built, probed and scanned on the
  components ``z``. Member ``j`` of a probed list is ranked for sample ``i`` by
  ``|x_j|^2 - 2 z_i . z_j`` (its squared distance less ``|x_i|^2``, without the
  residuals' product), one float32 GEMM per list; the ``_TOP_PER_LIST`` best of each
  list, then the ``_RERANK`` best of the sample's, are measured in float64 with an
  error bound, and the candidates within the bound of the least are re-scored exactly.
  The estimate only ranks: a nearest member ranked out is missed. Samples go by blocks
  of ``_SCAN_BLOCK`` in their lists' order (neighbours probe the same lists); each
  block's task merges and measures its own candidates.
- **Full**, otherwise: the samples probing a list are scored against its members by one
  float32 GEMM (the augmented, scaled layout of
  :class:`skrob._search.euclidean.EuclideanData`, with its error bounds), and the
  candidates within the bound of each sample's best are re-scored exactly: the exact
  reach whenever the nearest one lies in a probed list.

The cost is ``n * nprobe * list_size * k`` for the scan (``k`` the components, or the
features) plus k-means, linear in n at a fixed list size, against the exact kernel's
``n^2 d / 2``.
"""

import functools
import math
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.utils import check_random_state

from skrob._search.blocks import reduce_min, run_tasks
from skrob._search.euclidean import EuclideanData, _row_candidates, refine, row_layout
from skrob._search.exact import centred_unit, exact_dist, max_abs, pow2_scale

# Samples per list: the k-means of each class has ceil(n_class / LIST_SIZE) centres.
LIST_SIZE = 128

# Lloyd iterations of each class's k-means: lists need not be optimal, only compact.
_KMEANS_ITER = 10

# Training samples of each class's k-means, per list: twice as many on the principal
# components, where a sample costs a quarter; with 32 there, the recall@1 of 200,000
# Fashion-MNIST-like images fell to 0.990 at some random_state (docs/benchmarks.md,
# benchmarks/bench_sample_robustness.py --seeds).
_TRAIN_PER_LIST = 32
_PROJECTED_TRAIN_PER_LIST = 64

# Rows per block of the probe (samples against every list centre) and of the projection.
_PROBE_BLOCK = 4096

# Lists per task of the full scan, samples per task of the projected one.
_LISTS_PER_TASK = 32
_SCAN_BLOCK = 4096

# The projected scan (from _MIN_PROJECTED to _MAX_PROJECTED features): the leading
# quarter of the principal components (of at most _PCA_TRAIN samples, and at most
# _PCA_ENTRIES values: 128 MiB in float64), where they hold _VARIANCE of the variance;
# the best _TOP_PER_LIST members of each probed list by the estimate, and the best
# _RERANK of each sample's, measured in float64. Beyond _MAX_PROJECTED features the
# PCA's eigendecomposition (d^3) would cost more than it saves at moderate n.
_VARIANCE = 0.95
_PCA_TRAIN = 20_000
_PCA_ENTRIES = 2**24
_MIN_PROJECTED = 128
_MAX_PROJECTED = 4096
_TOP_PER_LIST = 8
_RERANK = 32


def ivf_nearest_other_label(
    X,
    codes,
    *,
    nprobe=48,
    list_size=LIST_SIZE,
    random_state=None,
    n_jobs=None,
    verbose=0,
    steps=None,
):
    """Approximate :func:`skrob._search.neighbors.nearest_other_label` by class-pure inverted lists.

    Returns ``(reach, partner)``: float64 distances, each exact for its partner (a
    differently labelled sample), at least the exact reach. ``steps`` (a dict, for the
    benchmarks) receives each step's seconds, the scan's flop count and the scan taken.
    """
    clock = _Clock(steps)
    rng = check_random_state(random_state)
    n_classes = int(codes.max()) + 1
    projected = _MIN_PROJECTED <= X.shape[1] <= _MAX_PROJECTED
    projection = _projection(X, rng, n_jobs) if projected else None
    if steps is not None:
        steps["projected"] = projection is not None
    args = (codes, n_classes, nprobe, list_size, rng, n_jobs, verbose, clock, steps)
    if projection is not None:
        clock("projection")
        return _projected_scan(X, *projection, *args)
    data = EuclideanData(X, None, None, None)
    clock("layout")
    return _full_scan(data, *args)


def _projection(X, rng, n_jobs):
    """``(Z, scaling)``: ``Z = [z, 1, |x|^2]`` in float32 for the rows ``x`` of
    ``(X g - mean) h`` (``scaling = (g, mean, h)``), ``z`` their leading quarter of
    principal components and ``|x|^2`` their full squared norms; None where these
    components hold less than ``_VARIANCE`` of the variance.

    All the quarter, not only the components that reach ``_VARIANCE``: the estimate
    misses the residuals' product, which varies less from member to member the fewer
    the residuals hold (data of 8 dimensions in 200 features, ranked on the 7 that
    reach 95 %, missed recall@1 0.99 while developing this).

    ``g``, a power of two, puts every entry of ``X g`` below 1 (all of X); the mean and
    ``h`` (a power of two, at most 2**40: no entry of any row beyond 2**41, no float32
    overflow) come from the PCA's sample, whose centred entries ``h`` puts below 1.
    """
    n, d = X.shape
    if n < 2:
        return None
    n_train = min(_PCA_TRAIN, _PCA_ENTRIES // d)
    train = np.arange(n) if n <= n_train else np.sort(rng.choice(n, n_train, replace=False))
    g = pow2_scale(max_abs(X))
    rows, _ = centred_unit(X, train, (g, 0.0, 1.0))  # X[train] g, a float64 copy
    mean = rows.mean(axis=0)
    rows -= mean
    h = min(pow2_scale(np.abs(rows).max(initial=0.0)), 2.0**40)
    rows *= h
    pca = PCA(min(d // 4, train.size), svd_solver="covariance_eigh").fit(rows)
    if not pca.explained_variance_ratio_.sum() >= _VARIANCE:  # NaN: no variance at all
        return None
    k, scaling = pca.n_components_, (g, mean, h)
    Z = np.empty((n, k + 2), dtype=np.float32)
    Z[:, k] = 1.0

    def consume(result, Z=Z):
        s, z, sq = result
        Z[s : s + z.shape[0], :k], Z[s : s + z.shape[0], k + 1] = z, sq

    run_tasks(
        _project_task,
        [(s, min(s + _PROBE_BLOCK, n)) for s in range(0, n, _PROBE_BLOCK)],
        shared=(X, scaling, pca.components_.astype(np.float32)),
        n_jobs=n_jobs,
        consume=consume,
    )
    return Z, scaling


def _project_task(X, scaling, W, s, e):
    """Rows ``[s, e)``: their components and squared norms (:func:`_projection`)."""
    rows, _ = centred_unit(X, slice(s, e), scaling)
    return s, rows.astype(np.float32) @ W.T, np.einsum("ij,ij->i", rows, rows)


def _lists(space, codes, n_classes, list_size, rng, train_per_list=_TRAIN_PER_LIST):
    """k-means lists of every class: (centres, class of each list, list of each sample).

    As an IVF index is trained: k-means (random start, ``_KMEANS_ITER`` Lloyd steps)
    on at most ``train_per_list`` samples per list of the class, then every member
    assigned to its nearest centre. The lists come class by class.
    """
    centres, list_class = [], []
    labels = np.empty(space.shape[0], dtype=np.intp)
    for k in range(n_classes):
        members = np.flatnonzero(codes == k)
        n_lists = math.ceil(members.size / list_size)
        if n_lists == 0:
            continue
        if n_lists == 1:
            local, found = np.zeros(members.size, dtype=np.intp), space[members].mean(axis=0)[None]
        else:
            train = members
            if members.size > train_per_list * n_lists:
                train = np.sort(rng.choice(members, train_per_list * n_lists, replace=False))
            found = (
                KMeans(
                    n_lists,
                    init="random",  # k-means++ measured 20x slower for 3 % less inertia
                    n_init=1,
                    max_iter=_KMEANS_ITER,
                    random_state=rng.randint(np.iinfo(np.int32).max),
                )
                .fit(space[train])
                .cluster_centers_.astype(np.float32)
            )
            local = np.concatenate(
                [
                    _nearest_centre(space[members[s : s + _PROBE_BLOCK]], found)
                    for s in range(0, members.size, _PROBE_BLOCK)
                ]
            )
        # A centre without members is no list: keep only the used ones.
        used, local = np.unique(local, return_inverse=True)
        labels[members] = len(list_class) + local
        centres.append(found[used])
        list_class.extend([k] * used.size)
    return np.vstack(centres).astype(np.float32), np.asarray(list_class), labels


def _nearest_centre(rows, centres):
    """Index of each row's nearest centre (one float32 GEMM)."""
    D = rows @ centres.T
    D *= np.float32(-2.0)
    D += np.einsum("ij,ij->i", centres, centres)
    return D.argmin(axis=1)


def _probe(space, codes, centres, list_class, nprobe, n_jobs):
    """The ``nprobe`` nearest other-class lists of every sample: an (n, nprobe) array of
    list indices, -1 where the other classes have fewer lists. The lists of each class
    are consecutive (:func:`_lists`); each task scores rows of one class against the
    other classes' centres only."""
    n, n_lists = space.shape[0], centres.shape[0]
    nprobe = min(nprobe, n_lists)
    c_sq = np.einsum("ij,ij->i", centres, centres)
    by_class = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[by_class], np.arange(int(codes.max()) + 2))
    out = np.full((n, nprobe), -1, dtype=np.int32)
    tasks = [
        (k, s, min(s + _PROBE_BLOCK, starts[k + 1]))
        for k in range(starts.size - 1)
        for s in range(starts[k], starts[k + 1], _PROBE_BLOCK)
    ]

    def consume(result):
        rows, lists = result
        out[rows] = lists

    run_tasks(
        _probe_task,
        tasks,
        shared=(space, by_class, centres, c_sq, list_class, nprobe),
        n_jobs=n_jobs,
        consume=consume,
    )
    return out


def _probe_task(space, by_class, centres, c_sq, list_class, nprobe, k, s, e):
    """Rows ``by_class[s:e]``, all of class ``k``: their nearest other-class lists."""
    rows = by_class[s:e]
    lists = np.full((rows.size, nprobe), -1, dtype=np.int32)
    other = np.flatnonzero(list_class != k).astype(np.int32)
    if other.size:
        D = space[rows] @ centres[other].T
        D *= np.float32(-2.0)
        D += c_sq[other]
        top_v = np.empty(lists.shape, dtype=D.dtype)
        _kernels().smallest(D, other, lists, top_v, np.arange(rows.size))
    return rows, lists


def _by_list(probed, n_lists):
    """The (sample, list) pairs of ``probed`` grouped by list: ``(slots, ptr)``, the flat
    indices into ``probed`` (sample ``slot // nprobe``) and each list's range of them."""
    flat = probed.ravel()
    key = np.where(flat < 0, n_lists, flat)  # no list: last, dropped
    if n_lists <= np.iinfo(np.uint16).max:
        # numpy sorts 16-bit keys by radix: about 3x faster than a stable sort of intp keys
        key = key.astype(np.uint16)
    slots = np.argsort(key, kind="stable")
    ptr = np.searchsorted(key[slots], np.arange(n_lists + 1))
    return slots[: ptr[-1]], ptr


def _index(space, codes, n_classes, nprobe, list_size, rng, train_per_list, n_jobs, clock):
    """The lists (:func:`_lists`) and the probes (:func:`_probe`) of both scans:
    ``(members, member_ptr, probed)``, the samples in their lists' order, each list's
    range of them, and each sample's probed lists."""
    centres, list_class, labels = _lists(space, codes, n_classes, list_size, rng, train_per_list)
    members = np.argsort(labels, kind="stable")
    member_ptr = np.searchsorted(labels[members], np.arange(centres.shape[0] + 1))
    clock("k-means")
    probed = _probe(space, codes, centres, list_class, nprobe, n_jobs)
    clock("probe")
    return members, member_ptr, probed


def _projected_scan(
    X, Z, scaling, codes, n_classes, nprobe, list_size, rng, n_jobs, verbose, clock, steps
):
    """The projected scan (see the module's docstring)."""
    n, train_per_list = X.shape[0], _PROJECTED_TRAIN_PER_LIST
    members, member_ptr, probed = _index(
        Z[:, :-2], codes, n_classes, nprobe, list_size, rng, train_per_list, n_jobs, clock
    )
    m = min(_RERANK, probed.shape[1] * _TOP_PER_LIST)
    best = np.empty((n, m), dtype=np.int32)
    v = np.empty((n, m))
    X = np.ascontiguousarray(X)

    def consume(result, best=best, v=v):
        rows, b, vb = result
        best[rows], v[rows] = b, vb

    # blocks of samples in their lists' order: neighbours, that probe the same lists
    run_tasks(
        _projected_task,
        [(s, min(s + _SCAN_BLOCK, n)) for s in range(0, n, _SCAN_BLOCK)],
        shared=(X, Z, member_ptr, members.astype(np.int32), probed, m, scaling[0], scaling[2]),
        n_jobs=n_jobs,
        verbose=verbose,
        desc="inverted lists",
        consume=consume,
    )
    clock("scan")
    # Each float64 sum of d scaled squares lies within (d + 4) u of the true one (in any
    # order of the sum), plus 2**-1000 for terms rounded below the normal range, and so
    # does exact_dist's: a candidate whose sum lies farther than twice both bounds above
    # the least can neither be the nearest nor be measured nearer by exact_dist.
    err = 4 * (X.shape[1] + 4) * np.finfo(np.float64).eps
    least = v.min(axis=1, keepdims=True)
    keep = (v <= least * (1 + 2 * err) + 2.0**-998) & (best >= 0)
    i, c = np.nonzero(keep)
    j = best[i, c].astype(np.intp)
    clock("bounded")
    found = reduce_min(i, exact_dist(X, X, i, j), n, j)
    clock("re-scoring")
    if steps is not None:
        probes = np.bincount(probed[probed >= 0], minlength=member_ptr.size - 1)
        steps["scan flop"] = 2.0 * Z.shape[1] * float(probes @ np.diff(member_ptr))
        steps["scan width"] = Z.shape[1]
    return found


def _projected_task(X, Z, member_ptr, members, probed, m, g, h, s, e):
    """Samples ``members[s:e]``: their ``m`` best candidates by the estimate (the
    ``_TOP_PER_LIST`` best of each probed list first) and their scaled squared distances
    in float64, as ``(samples, candidates, squares)``."""
    kernels = _kernels()
    smallest = kernels.few_smallest if _TOP_PER_LIST <= 16 else kernels.smallest
    rows = members[s:e]
    Zb = Z[rows]  # the block's rows, gathered once: each pair's then comes from cache
    nprobe, n_lists = probed.shape[1], member_ptr.size - 1
    block = probed[rows]  # the block's (sample, list) pairs, sample by sample
    by_list, cut = _by_list(block, n_lists)
    top = np.full((block.size, _TOP_PER_LIST), -1, dtype=np.int32)
    top_v = np.full((block.size, _TOP_PER_LIST), np.inf, dtype=np.float32)
    for lst in np.flatnonzero(np.diff(cut)):
        pairs = by_list[cut[lst] : cut[lst + 1]]
        mem = members[member_ptr[lst] : member_ptr[lst + 1]]
        # the probers in the column layout as gathered, the few members in the row layout
        D = Zb[pairs // nprobe] @ row_layout(Z[mem]).T
        smallest(D, mem, top, top_v, pairs)
    best = np.empty((rows.size, m), dtype=np.int32)
    kernels.merge_best(top.reshape(rows.size, -1), top_v.reshape(rows.size, -1), best)
    v = np.empty((rows.size, m))
    kernels.scaled_sq(X, best, rows, g, h, v)
    return rows, best, v


def _full_scan(data, codes, n_classes, nprobe, list_size, rng, n_jobs, verbose, clock, steps):
    """The full scan (see the module's docstring)."""
    n, B = codes.shape[0], data.B
    members, member_ptr, probed = _index(
        B[:, :-2], codes, n_classes, nprobe, list_size, rng, _TRAIN_PER_LIST, n_jobs, clock
    )
    n_lists = member_ptr.size - 1
    slots, probe_ptr = _by_list(probed, n_lists)
    probers = slots // probed.shape[1]
    del probed, slots
    tasks = [(l0, min(l0 + _LISTS_PER_TASK, n_lists)) for l0 in range(0, n_lists, _LISTS_PER_TASK)]
    results = run_tasks(
        _full_task,
        tasks,
        shared=(B, data.tolA, member_ptr, members, probe_ptr, probers),
        n_jobs=n_jobs,
        verbose=verbose,
        desc="inverted lists",
    )
    i, j, v = (np.concatenate([r[k] for r in results]) for k in range(3))
    clock("scan")
    found = refine(data, i, j, v, data.tolA, i, n)
    clock("re-scoring")
    if steps is not None:
        pairs = np.diff(probe_ptr) @ np.diff(member_ptr)
        steps["scan flop"] = 2.0 * B.shape[1] * float(pairs)
        steps["scan width"] = B.shape[1]
    return found


def _full_task(B, tol, member_ptr, members, probe_ptr, probers, l0, l1):
    """Candidates of lists ``[l0, l1)``: each prober's best member and any within bound."""
    out = []
    for lst in range(l0, l1):
        q = probers[probe_ptr[lst] : probe_ptr[lst + 1]]
        mem = members[member_ptr[lst] : member_ptr[lst + 1]]
        if q.size == 0 or mem.size == 0:
            continue
        # the probers in the column layout as they are, the few members in the row
        # layout (the same values: the formula is symmetric); row_layout on the probers
        # cost 3x the GEMM in copies
        D = B[q] @ row_layout(B[mem]).T
        local = []
        _row_candidates(D, np.full(q.size, np.inf, np.float32), tol[q], 0, 0, local)
        for i, j, v in local:
            out.append((q[i], mem[j], v))
    if not out:
        return np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0, np.float32)
    return tuple(np.concatenate([o[k] for o in out]) for k in range(3))


class _Clock:
    """``clock(name)`` adds the seconds since the last call to ``steps[name]``."""

    def __init__(self, steps):
        self.steps, self.last = steps, time.perf_counter()

    def __call__(self, name):
        if self.steps is not None:
            now = time.perf_counter()
            self.steps[name] = now - self.last
            self.last = now


@functools.cache
def _kernels():
    """The compiled selections and float64 measures (numba, on first use in a process).
    Each runs on one thread and releases the GIL: the callers split the work into tasks."""
    import types

    import numba

    jit = numba.njit(nogil=True, boundscheck=False, cache=False)

    @jit
    def _insert(bv, bj, v, j):
        # v into the ascending bv (and j into bj) if it beats the last; ties: the first
        k = bv.shape[0]
        if v < bv[k - 1]:
            t = k - 1
            while t > 0 and bv[t - 1] > v:
                bv[t] = bv[t - 1]
                bj[t] = bj[t - 1]
                t -= 1
            bv[t] = v
            bj[t] = j

    @jit
    def smallest(D, ids, top, top_v, out):
        # per row r of D, its top.shape[1] smallest columns c in ascending order (ties:
        # the first) as ids[c] into top[out[r]] and their values into top_v[out[r]]; -1
        # and inf where the row is shorter. The columns at or below the k-th least
        # minimum of 8 (at least k values lie below it) go into the sorted buffer.
        k, n = top.shape[1], D.shape[1]
        n_blocks = n // 8
        block_min = np.empty(max(n_blocks, 1), dtype=D.dtype)
        at = np.empty(n, dtype=np.int64)
        bv = np.empty(k, dtype=D.dtype)
        bj = np.empty(k, dtype=np.int64)
        for r in range(D.shape[0]):
            row = D[r]
            thr = np.inf
            if n_blocks >= k:
                for b in range(n_blocks):
                    m = row[8 * b]
                    for t in range(1, 8):
                        m = min(m, row[8 * b + t])
                    block_min[b] = m
                bv[:] = np.inf
                for b in range(n_blocks):
                    _insert(bv, bj, block_min[b], 0)
                thr = bv[k - 1]
            cnt = 0
            for c in range(n):  # branch-free: the columns at or below thr
                at[cnt] = c
                cnt += row[c] <= thr
            bv[:] = np.inf
            bj[:] = -1
            for a in range(cnt):
                _insert(bv, bj, row[at[a]], at[a])
            o = out[r]
            for t in range(k):
                top_v[o, t] = bv[t]
                top[o, t] = ids[bj[t]] if bj[t] >= 0 else -1

    # smallest for a few (k <= 16: a list's best members), faster there: the threshold
    # is the largest minimum of k blocks, and the buffer takes each column branch-free
    # (a shift once one is in, so that ties keep the columns' order).
    # nnan, nsz: min and max vectorise (the estimates are finite; inf only marks none)
    @numba.njit(nogil=True, boundscheck=False, cache=False, fastmath={"nnan", "nsz"})
    def few_smallest(D, ids, top, top_v, out):
        k, n = top.shape[1], D.shape[1]
        w = n // k
        at = np.empty(n, dtype=np.int64)
        bv = np.empty(k, dtype=D.dtype)
        bj = np.empty(k, dtype=np.int64)
        for r in range(D.shape[0]):
            row = D[r]
            thr = np.float32(np.inf)
            if w >= 1:
                thr = -np.float32(np.inf)
                for b in range(k):
                    m = row[w * b]
                    for t in range(1, w):
                        m = min(m, row[w * b + t])
                    thr = max(thr, m)
            cnt = 0
            for c in range(n):
                at[cnt] = c
                cnt += row[c] <= thr
            bv[:] = np.inf
            bj[:] = -1
            for a in range(cnt):
                j = at[a]
                v = row[j]
                less = False
                for t in range(k):
                    b = bv[t]
                    jb = bj[t]
                    # once in, each next one moves on (before its ties); ties: the
                    # earlier column first
                    less = less | (v < b)
                    bv[t] = v if less else b
                    bj[t] = j if less else jb
                    v = b if less else v
                    j = jb if less else j
            o = out[r]
            for t in range(k):
                top_v[o, t] = bv[t]
                top[o, t] = ids[bj[t]] if bj[t] >= 0 else -1

    @jit
    def merge_best(cand, cand_v, best):
        # per row, the best.shape[1] smallest candidates (-1: none; ties: the first)
        m = best.shape[1]
        bv = np.empty(m, dtype=cand_v.dtype)
        bj = np.empty(m, dtype=np.int64)
        for i in range(cand.shape[0]):
            bv[:] = np.inf
            bj[:] = -1
            for c in range(cand.shape[1]):
                if cand[i, c] >= 0:
                    _insert(bv, bj, cand_v[i, c], cand[i, c])
            for t in range(m):
                best[i, t] = bj[t]

    @numba.njit(nogil=True, boundscheck=False, cache=False, fastmath={"reassoc", "contract"})
    def scaled_sq(X, best, rows, g, h, v):
        # sum(((X[i] g - X[j] g) h)^2) in float64, i = rows[r], j = best[r, c]
        for r in range(best.shape[0]):
            i = rows[r]
            for c in range(best.shape[1]):
                j = best[r, c]
                if j < 0:
                    v[r, c] = np.inf
                    continue
                acc = 0.0
                for t in range(X.shape[1]):
                    e = (np.float64(X[i, t]) * g - np.float64(X[j, t]) * g) * h
                    acc += e * e
                v[r, c] = acc

    return types.SimpleNamespace(
        smallest=smallest,
        few_smallest=few_smallest,
        merge_best=merge_best,
        scaled_sq=scaled_sq,
    )
