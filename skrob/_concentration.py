"""Concentration of measure: the greedy union-of-regions placement and its evaluation.

Zhang & Evans (ICLR 2022), as their reference code computes it, made fast and O(n · nα) in
memory: each centre keeps its ⌈nα(1+δ)⌉ + 17 nearest samples, sorted once, from a float64
GEMM with error bounds (kept as fixed-point codes: 5 bytes a distance for L2, 6 for L∞),
and a profile of its farther distances (:func:`neighbour_lists`); the (centre, size)
pairs of a round are answered by one compiled pass over each list (cumulative counts,
and counts at thresholds that only grow with the size), exactly where the bounds settle
a count, or bounded from below (also by the profile); only the centres whose bound could
win get their full row, least bound first (GEMM rows with bounds, read up to the
farthest distance a count can need; exact rows where those do not settle it). The
winner's radius comes from its exact row (:func:`best_region`).
Works on data already centred and scaled (the estimator does that, so the estimate is
unit-free).
"""

import functools
import math
from dataclasses import dataclass, field

import joblib
import numpy as np
from scipy.spatial.distance import cdist

from skrob._progress import progress_bar
from skrob._search.blocks import pair_tolerance, pair_tolerance_at, run_tasks
from skrob._search.chebyshev import chebyshev
from skrob._search.exact import SAFE_MAX, SAFE_MIN, exact_dist

_U64 = float(np.finfo(np.float64).eps) / 2

# Ranks of each centre's distance profile beyond its list (lower bounds on counts).
_PROFILE = 128

# Centres whose lists are read at once, and whose full rows one GEMM computes (its
# float64 temporaries, 4 of 32 x n, are most of a round's memory beside the lists).
_ROW_BATCH = 64
_GEMM_BATCH = 32

# Rows of X whose differences to a centre one step of _row holds.
_ROW_CHUNK = 256

# No cost (an int64 array's "none").
_NONE = np.iinfo(np.int64).max

# Neighbours listed beyond the ones a size can need.
_SPARE = 16

# A region's radius is "just below" the distance to the first sample it leaves out: that
# distance times (1 - RADIUS_MARGIN), so that the estimate does not depend on X's units.
RADIUS_MARGIN = 1e-9


def distances(A, B, norm):
    if norm == 2:
        return cdist(A, B, "euclidean")
    return cdist(A, B, "chebyshev")


def _row(X, i, norm):
    """Exact distances from sample ``i`` to every sample (difference, then norm)."""
    if norm != 2:
        return cdist(X[i : i + 1], X, "chebyshev")[0]
    sq = np.empty(X.shape[0])
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        # by chunks of rows: the differences stay in cache (one n x d temporary would be
        # mapped and faulted in afresh on every call)
        for r0 in range(0, X.shape[0], _ROW_CHUNK):
            diff = X[r0 : r0 + _ROW_CHUNK] - X[i]
            np.einsum("ij,ij->i", diff, diff, out=sq[r0 : r0 + _ROW_CHUNK])
        out = np.sqrt(sq)
    bad = np.flatnonzero(~((sq > SAFE_MIN) & (sq < SAFE_MAX)))
    if bad.size:  # overflow, underflow or duplicates: the scaled path
        out[bad] = exact_dist(X, X, np.full(bad.size, i), bad)
    return out


@dataclass
class NeighbourLists:
    """Each sample's ``k`` nearest samples (itself included), in ascending distance.

    Row ``i``'s distances are kept as fixed-point codes of its largest one, ``far[i]``
    (``high[i] * 2**m + low[i]``, ``m`` the bits of ``low``'s type; :func:`_encode`):
    :meth:`values` decodes them to float64 values, ascending, each within ``tau[i]`` of
    the exact distance (the codes' rounding included); ``index[i]`` the samples. Every
    sample left out of row ``i`` lies farther than ``beyond[i]`` or exactly at it
    (``inf`` when nothing is left out). Beyond the list, ``profile[i, m]`` bounds from
    above the distance of the ``ranks[m] + 1``-th nearest sample: at least
    ``ranks[m] + 1`` samples lie within any radius at or above it (a lower bound on
    counts, :func:`best_region`).
    """

    high: np.ndarray
    low: np.ndarray
    far: np.ndarray
    index: np.ndarray
    tau: np.ndarray
    beyond: np.ndarray
    ranks: np.ndarray
    profile: np.ndarray

    def values(self, r0=0, r1=None):
        """The decoded distances of rows ``[r0, r1)``, float64."""
        return _decode(self.high, self.low, self.far, r0, self.far.shape[0] if r1 is None else r1)


def _code_type(norm):
    """The type of the codes' low part. L2: 8 bits (39-bit codes, a step of 2**-39 of
    the row's largest distance: below the GEMM's own bound, about 1e-13 of it, times
    ten, and far below the radius margin). L∞: 16 bits (47-bit codes): its distances
    are exact, and those of float32 data (Fashion-MNIST) tie to within 1e-9 of each
    other, the radius margin itself, so a coarser step would leave counts unsettled
    and send centres to full rows (with 39-bit codes the first L∞ fits of
    ``benchmarks/bench_intrinsic_robustness.py --paper-size`` took minutes, not
    seconds: docs/benchmarks.md)."""
    return np.uint8 if norm == 2 else np.uint16


def _code_bits(low_type):
    """The bits of the codes whose low part has type ``low_type`` (and the high part 31
    of a uint32's): (bits, the low part's bits)."""
    shift = 8 * np.dtype(low_type).itemsize
    return 31 + shift, shift


def _encode(dist, tau, low_type):
    """Rows of ascending finite distances ``dist`` (each within ``tau`` of the exact one)
    as (high, low, far, tau): ``round(d / far * 2**bits)`` (:func:`_code_bits`), the
    decoded values within the returned ``tau`` of the exact distances. Encoding and
    decoding are monotone, so the decoded rows stay ascending (values closer than a
    code's step may become equal: within 2 tau, where :func:`_read_rows` settles nothing
    that depends on their order)."""
    bits, shift = _code_bits(low_type)
    far = dist[:, -1].copy()
    if not np.isfinite(far).all():
        raise RuntimeError("Internal error: neighbour lists hold non-finite distances.")
    with np.errstate(invalid="ignore", divide="ignore"):
        code = dist / far[:, None]
    code[far == 0] = 0.0
    code = np.rint(np.ldexp(code, bits)).astype(np.int64)
    # d(1 + e) / far rounded to the step, then (code * step) * far rounded once: within
    # far (2^-(bits + 1) + 2^-52) + d 2^-53 (+ one subnormal step where the product is
    # below the normal range)
    tau = tau + far * (2.0 ** -(bits + 1) + 2.0**-51) + 2.0**-1073
    high = (code >> shift).astype(np.uint32)
    return high, (code & ((1 << shift) - 1)).astype(low_type), far, tau


def _decode(high, low, far, r0, r1):
    """Rows ``[r0, r1)`` of the codes of :func:`_encode`, decoded (compiled)."""
    out = np.empty((r1 - r0, high.shape[1]))
    bits, shift = _code_bits(low.dtype)
    _decoder()(high, low, far, r0, float(2**shift), 2.0**-bits, out)
    return out


@functools.cache
def _decoder():
    import numba

    @numba.njit(nogil=True, boundscheck=False, cache=False)
    def decode(high, low, far, r0, shift, step, out):
        for b in range(out.shape[0]):
            f = far[r0 + b]
            for j in range(out.shape[1]):
                # high * shift + low < 2^47: exact in float64, and so is the step
                out[b, j] = ((high[r0 + b, j] * shift + low[r0 + b, j]) * step) * f

    return decode


def _gemm_terms(X):
    """What every float64 GEMM block of squared L2 distances on ``X`` needs: the squared
    norms, the norms and the rounding constant of :func:`pair_tolerance`."""
    sq = np.einsum("ij,ij->i", X, X)
    return sq, np.sqrt(sq), (X.shape[1] + 8) * _U64 * 1.01


def _gemm_squared(X, sq, rows):
    """Squared distances of ``X[rows]`` to every sample, ``|a|² + |b|² - 2 a·b`` from
    one float64 GEMM (non-finite where ``X`` is outside the GEMM's range); each pair's
    bound on their rounding is :func:`pair_tolerance` (:func:`pair_tolerance_at` for
    some pairs)."""
    with np.errstate(over="ignore", invalid="ignore"):
        D = X[rows] @ X.T
        D *= -2.0
        D += sq[rows, None]
        D += sq[None, :]
        return D


def _tighten(X, centres, dist, err, cut, cols=None):
    """Re-score exactly (difference, then norm) the pairs whose bound ``err`` exceeds
    ``cut`` (the nearest: their bounds are the loosest), in place; each row's ``tau``,
    1 % and a few ulps over its largest remaining bound (they cover the roundings of
    the counts), inf where the row is not finite or too loose to settle counts (over
    1e-10 of its largest distance). ``cols[b, j]`` is pair (b, j)'s sample (default j)."""
    r, j = np.nonzero(err > cut)
    dist[r, j] = exact_dist(X, X, centres[r], j if cols is None else cols[r, j])
    err[r, j] = 0.0
    far = dist.max(axis=1)
    tau = err.max(axis=1) * 1.01 + 16 * _U64 * far
    tau[~(np.isfinite(dist).all(axis=1) & (tau <= 1e-10 * far))] = np.inf
    return tau


def _lists_block(X, sq, norms, c, k, ranks, norm, r0, r1):
    """Rows ``[r0, r1)`` of :func:`neighbour_lists`: (r0, high, low, far, index, tau,
    beyond, profile)."""
    if norm != 2:
        return _encoded(norm, r0, *_select(chebyshev(X[r0:r1], X), None, k, ranks))
    # no n-wide matrix of bounds: those of the listed pairs, and each row's largest
    D = _gemm_squared(X, sq, slice(r0, r1))
    na = norms[r0:r1, None]
    tol = (
        lambda index: pair_tolerance_at(na, norms[index], c),
        pair_tolerance_at(na, norms.max(), c)[:, 0],
    )
    if np.isfinite(D).all() and np.isfinite(tol[1]).all():
        dist, index, err, beyond, profile = _select(D, tol, k, ranks)
        # the pairs beyond 8 times the last entry's bound, exactly; then in order again
        # (any order among values within 2 tau: _read_rows decides a mean close to gamma
        # past such values on the exact row, so the fast unstable sort will do)
        tau = _tighten(X, np.arange(r0, r1), dist, err, 8 * err[:, -1:], cols=index)
        order = np.argsort(dist, axis=1)
        dist, index = np.take_along_axis(dist, order, 1), np.take_along_axis(index, order, 1)
        if np.isfinite(tau).all():
            return _encoded(norm, r0, dist, index, tau, beyond, profile)
    # Outside the GEMM's range, or bounds too loose to settle counts: exact distances.
    exact = np.array([_row(X, i, norm) for i in range(r0, r1)])
    return _encoded(norm, r0, *_select(exact, None, k, ranks))


def _encoded(norm, r0, dist, index, tau, beyond, profile):
    """A block of lists as :func:`neighbour_lists` stores it (the distances coded)."""
    high, low, far, tau = _encode(dist, tau, _code_type(norm))
    return r0, high, low, far, index, tau, beyond, profile


def _distance_bounds(D, tol):
    """Distances from squared values within ``tol`` of the exact ones, and their bounds:
    the exact distance lies in ``[sqrt(D - tol), sqrt(D + tol)]``. Overwrites ``D``
    (no temporary of its shape beyond the two that come back)."""
    dist = np.maximum(D, 0.0)
    np.sqrt(dist, out=dist)
    err = np.subtract(D, tol)
    np.maximum(err, 0.0, out=err)
    np.sqrt(err, out=err)
    np.subtract(dist, err, out=err)  # dist - lower end
    D += tol
    np.sqrt(D, out=D)
    D -= dist  # upper end - dist
    np.maximum(err, D, out=err)
    return dist, err


def _select(D, tol, k, ranks):
    """Each row's k smallest values of ``D`` (distances, or squared values within the
    bounds ``tol`` of the exact ones: (the bounds of given pairs, each row's largest))
    as (dist, index, per-pair error bound, beyond, profile)."""
    n = D.shape[1]
    rows = np.arange(D.shape[0])[:, None]
    part = np.argpartition(D, ranks, axis=1)
    index = part[:, :k]
    # exact values: ties in index order; bounded ones: any order (see _lists_block)
    kind = "stable" if tol is None else None
    index = index[rows, np.argsort(D[rows, index], axis=1, kind=kind)]
    at_ranks = D[rows, part[:, ranks]]
    index_dtype = _index_dtype(n)
    if tol is None:  # exact distances
        beyond = at_ranks[:, 0] if k < n else np.full(D.shape[0], np.inf)
        return D[rows, index], index.astype(index_dtype), np.zeros(D.shape[0]), beyond, at_ranks
    tol_at, tmax = tol
    dist, err = _distance_bounds(D[rows, index], tol_at(index))
    # Order statistics move at most by the largest error of the row: every sample left
    # out lies at or beyond the k-th smallest value's lower bound (ranks[0] is k - 1).
    beyond = np.sqrt(np.maximum(at_ranks[:, 0] - tmax, 0.0)) * (1.0 - 4 * _U64)
    if k == n:
        beyond[:] = np.inf
    profile = np.sqrt(np.maximum(at_ranks + tmax[:, None], 0.0)) * (1.0 + 4 * _U64)
    return dist, index.astype(index_dtype), err, beyond, profile


def _index_dtype(n):
    """The smallest integer type that holds the indices of ``n`` samples (the lists'
    indices are 4 bytes, or 2, per listed pair)."""
    return np.uint16 if n <= 2**16 else np.int32 if n <= 2**31 else np.intp


def neighbour_lists(X, k, norm, block=64, n_jobs=None, verbose=0):
    """:class:`NeighbourLists` in O(n k) memory, by blocks of rows (on every core).

    L2: a float64 GEMM gives every squared distance within ``c (|a| + |b|)^2``
    (``skrob._search.blocks.pair_tolerance``); each row keeps its k smallest values, as
    distances with the row's bound ``tau`` (the few pairs whose own bound is far above
    the row's, the nearest, are re-scored exactly: difference, then norm). Outside the
    GEMM's range a block is computed exactly. L∞: exact Chebyshev blocks from the
    vectorised kernel :func:`skrob._search.chebyshev.chebyshev`. Every row is then kept
    as fixed-point codes of its largest distance, 39 or 47 bits (:func:`_code_type`;
    ``tau`` grows by their rounding): 7 or 8 bytes a listed pair with its index, not 10.
    :func:`best_region` decides on these values only where the bounds settle a count.
    """
    n = X.shape[0]
    k = min(k, n)
    sq, norms, c = _gemm_terms(X) if norm == 2 else (None, None, None)
    # ranks from the list's last one on, for lower bounds on counts (_PROFILE of them)
    ranks = np.unique(np.linspace(k - 1, n - 1, _PROFILE).astype(np.intp))
    lists = NeighbourLists(
        high=np.empty((n, k), dtype=np.uint32),
        low=np.empty((n, k), dtype=_code_type(norm)),
        far=np.empty(n),
        index=np.empty((n, k), dtype=_index_dtype(n)),
        tau=np.empty(n),
        beyond=np.empty(n),
        ranks=ranks,
        profile=np.empty((n, ranks.size)),
    )

    def store(result):  # each block into place as it arrives: no second copy
        r0, *parts = result
        names = ("high", "low", "far", "index", "tau", "beyond", "profile")
        for name, part in zip(names, parts, strict=True):
            getattr(lists, name)[r0 : r0 + part.shape[0]] = part

    tasks = [(r0, min(r0 + block, n)) for r0 in range(0, n, block)]
    shared = (X, sq, norms, c, k, ranks, norm)
    run_tasks(
        _lists_block,
        tasks,
        shared=shared,
        n_jobs=n_jobs,
        verbose=verbose,
        desc="neighbour lists",
        consume=store,
    )
    return lists


# The last neighbour lists computed, keyed by the data's hash: an epsilon or gamma grid
# on the same half reuses them.
_CACHE = {}


def cached_neighbour_lists(X, k, norm, verbose=0):
    key = (joblib.hash(X), norm)
    hit = _CACHE.get("lists")
    if hit is not None and hit[0] == key and hit[1].index.shape[1] >= min(k, X.shape[0]):
        return hit[1]
    # released before the new ones are built (this frame's reference too): one set at a time
    hit = _CACHE.pop("lists", None)
    del hit
    lists = neighbour_lists(X, k, norm, verbose=verbose)
    _CACHE["lists"] = (key, lists)
    return lists


def _read_rows(d, o, tau, beyond, uncovered, unreached, lu, sizes, eps, gamma, profile=None,
               pairs=True):  # fmt: skip
    """The (row, size) pairs that may meet gamma, for centres whose ascending distances
    ``d[b]`` to samples ``o[b]`` are each within ``tau[b]`` of the exact one, every
    other sample at ``beyond[b]`` or farther; ``sizes`` ascending.

    The (s+1)-th uncovered value gives the radius "just below" it; the covered count,
    their mean LU and the newly reached count follow. A count is settled where no value
    lies within ``tau`` of its threshold (the exact threshold lies between those of the
    value -/+ tau: rounding is monotone) and every sample that can lie within it is
    listed; ``exact`` marks pairs all of whose counts are settled. Elsewhere the cost
    is a lower bound (with ``profile`` = (ranks, profile rows, n_reached), also from
    the counts beyond the list) and the radius is the value. A row with ``tau`` 0 and
    ``beyond`` inf (an exact full row, ties in index order) is read exactly; every
    other row's tau is widened by a few ulps of its largest threshold, so that every
    bound holds after rounding, and past two values within 2 tau of each other (whose
    order may not be the exact one's) a mean within its rounding of gamma is not settled.

    One pass over each row (compiled, :func:`_reader`): the thresholds grow with the
    size, so every count is a pointer that only moves forward. Returns (rows, size
    indices, exact, cost, radius) of the pairs, in (row, size) order; with
    ``pairs=False`` each row's least exact cost, the first size index at it (0 where
    there is none) and the least lower bound of its other pairs, ``_NONE`` where there
    is none.
    """
    B = d.shape[0]
    if profile is None:
        profile = (np.zeros(0), np.zeros((B, 0)), 0)
    ranks, within, n_reached = profile
    cap = B * len(sizes) if pairs else 0
    out = (np.empty(B, np.int64), np.empty(B, np.intp), np.empty(B, np.int64))
    pair_out = (np.empty(cap, np.intp), np.empty(cap, np.intp), np.empty(cap, np.bool_),
                np.empty(cap, np.int64), np.empty(cap))  # fmt: skip

    def per_row(v):
        return np.ascontiguousarray(np.broadcast_to(np.asarray(v, np.float64), (B,)))

    n_pairs = _reader()(
        np.ascontiguousarray(d, dtype=np.float64), np.ascontiguousarray(o, dtype=np.intp),
        per_row(tau), per_row(beyond), np.ascontiguousarray(uncovered, dtype=np.bool_),
        np.ascontiguousarray(unreached, dtype=np.bool_), np.ascontiguousarray(lu, np.float64),
        np.ascontiguousarray(sizes, dtype=np.intp), float(eps), float(gamma),
        np.ascontiguousarray(ranks, dtype=np.intp), np.ascontiguousarray(within, np.float64),
        int(n_reached), *out, *pair_out,
    )  # fmt: skip
    if not pairs:
        return out
    return tuple(v[:n_pairs] for v in pair_out)


@functools.cache
def _reader():
    """The compiled reading of :func:`_read_rows` (numba, on first use in a process)."""
    import numba

    margin, none, u64 = 1.0 - RADIUS_MARGIN, _NONE, _U64

    # error_model="numpy": 0 / 0 is NaN (a mean over no covered sample), as in numpy
    @numba.njit(nogil=True, boundscheck=False, error_model="numpy", cache=False)
    def read(d, o, tau, beyond, uncovered, unreached, lu, sizes, eps, gamma, ranks, within,
             n_reached, least, first, bound, p_row, p_si, p_exact, p_cost, p_radius):  # fmt: skip
        B, k = d.shape
        n_all = uncovered.shape[0]
        n_prof = within.shape[1] if ranks.shape[0] > 0 else 0
        cu, cr = np.empty(k + 1, np.int64), np.empty(k + 1, np.int64)
        cl, upos = np.empty(k + 1), np.empty(k, np.int64)
        n_pairs = 0
        for b in range(B):
            row = d[b]
            least[b], first[b], bound[b] = none, 0, none
            # cumulative counts of the uncovered and the unreached samples, and the sum
            # of the uncovered ones' LU, in the row's order; where the uncovered ones are
            cu[0], cr[0], cl[0] = 0, 0, 0.0
            n_unc = 0
            for j in range(k):
                sample = o[b, j]
                cr[j + 1] = cr[j] + (1 if unreached[sample] else 0)
                if uncovered[sample]:
                    upos[n_unc] = j
                    n_unc += 1
                    cl[j + 1] = cl[j] + lu[sample]
                else:
                    cl[j + 1] = cl[j]
                cu[j + 1] = n_unc
            if k == 0:
                continue
            t, far = tau[b], beyond[b]
            if t > 0.0 or far < np.inf:
                t = t + 8 * u64 * (row[k - 1] + eps)
            first_tie = k
            if t > 0.0:
                for j in range(k - 1):
                    if row[j + 1] - row[j] <= 2 * t:
                        first_tie = j + 1
                        break
            # counts: how many values lie at or below each threshold (non-decreasing in
            # the size, as the values are)
            p_below = p_above = p_low = p_high = p_prof = 0
            for si in range(sizes.shape[0]):
                s = sizes[si]
                if s >= n_unc:
                    break
                a = row[upos[s]]
                low, high = (a - t) * margin, (a + t) * margin
                below, above = low - t, high + t  # surely / possibly covered
                while p_below < k and row[p_below] <= below:
                    p_below += 1
                while p_above < k and row[p_above] <= above:
                    p_above += 1
                covered = cu[p_above]
                mean_lu = cl[p_above] / covered
                listed = above < far
                settled = listed and cu[p_below] == covered
                if settled and t > 0.0 and p_above > first_tie:
                    rounding = 4 * u64 * (covered + 1) * (mean_lu if mean_lu > gamma else gamma)
                    if abs(mean_lu - gamma) <= rounding:
                        settled = False
                if settled:
                    ok = covered > 0 and mean_lu >= gamma
                else:  # a lower bound: kept unless no sample can be covered
                    ok = not listed or covered > 0
                if not ok:
                    continue
                low_reach, high_reach = low + eps - t, high + eps + t
                while p_low < k and row[p_low] <= low_reach:
                    p_low += 1
                while p_high < k and row[p_high] <= high_reach:
                    p_high += 1
                sure_reached, reached = cr[p_low], cr[p_high]
                exact = settled and sure_reached == reached and high_reach < far
                cost = (reached if exact else sure_reached) - covered
                if not exact and n_prof > 0:
                    # at least ranks[m] + 1 samples within profile[m], at most n_reached
                    # of them reached before
                    while p_prof < n_prof and within[b, p_prof] <= low_reach:
                        p_prof += 1
                    at_least = (ranks[p_prof - 1] + 1 if p_prof > 0 else 0) - n_reached
                    cost = max(cost, at_least - covered)
                if not listed:
                    # the radius may cover samples left out of the list (each adds to
                    # the covered count, perhaps not to the reached): no bound
                    cost = -n_all
                if exact and cost < least[b]:
                    least[b], first[b] = cost, si
                elif not exact and cost < bound[b]:
                    bound[b] = cost
                if p_row.shape[0] > 0:
                    p_row[n_pairs], p_si[n_pairs], p_exact[n_pairs] = b, si, exact
                    p_cost[n_pairs] = cost
                    p_radius[n_pairs] = a * margin if exact else a
                    n_pairs += 1
        return n_pairs

    return read


def _centre(d, o, tau, uncovered, unreached, lu, sizes, eps, gamma):
    """Every size's (size indices, radius, cost, exact) for a centre's full distance
    row (ascending ``d`` to samples ``o``, within ``tau``); None when no size meets
    gamma. Exact where ``tau`` is 0."""
    args = (uncovered, unreached, lu, sizes, eps, gamma)
    _, si, exact, cost, radius = _read_rows(d[None], o[None], tau, np.inf, *args)
    return None if si.size == 0 else (si, radius, cost, exact)


def _read_list_rows(high, low, far, index, tau, beyond, ranks, profile, *args):
    """:func:`_read_rows` on the list rows ``[r0, r1)`` (``args``: uncovered, unreached,
    lu, sizes, eps, gamma, n_reached): (r0, each row's least exact cost, its least size
    index, the least lower bound of its unsettled sizes), ``_NONE`` where there is none.
    The lists' arrays come one by one: a distributed backend ships each once."""
    *args, n_reached, r0, r1 = args
    least, j, pending = _read_rows(
        _decode(high, low, far, r0, r1), index[r0:r1], tau[r0:r1], beyond[r0:r1], *args,
        profile=(ranks, profile[r0:r1], n_reached), pairs=False,
    )  # fmt: skip
    return r0, least, j, pending


def best_region(lists, X, norm, uncovered, unreached, lu, n_lower, n_upper, eps, gamma):
    """The (centre, size) of least expansion among all centres; None if none meets gamma.

    For one centre, the uncovered samples of its neighbour list keep their order, so the
    (s+1)-th nearest uncovered sample, the covered count and the covered samples' mean
    LU are read off the list (it is long enough: ``k > n_upper + covered so far``), for
    every size s at once. The list's values are within the row's ``tau`` of the exact
    distances: a count is read off them where no value lies that close to its threshold,
    and the newly reached count only while ``radius + eps`` stays below the samples left
    out. Elsewhere only a lower bound is known (the list, and the profile beyond it); a
    centre with such a pair whose bound does not exceed the best exact cost is settled
    on its full distance row (least bound first). Ties: the lowest centre index, then
    the smallest size, as a search over every centre chooses. Returns (cost, centre,
    radius, the centre's exact row), the radius from that row.
    """
    n = X.shape[0]
    sizes = np.arange(n_lower, n_upper + 1)
    best = None  # (cost, centre, size index)
    pending = []  # (lower bound, centre)
    n_reached = n - int(unreached.sum())
    args = (uncovered, unreached, lu, sizes, eps, gamma)
    m = lists.index.shape[0]
    tasks = [(r0, min(r0 + _ROW_BATCH, m)) for r0 in range(0, m, _ROW_BATCH)]
    codes = (lists.high, lists.low, lists.far)
    arrays = (*codes, lists.index, lists.tau, lists.beyond, lists.ranks, lists.profile)
    results = run_tasks(_read_list_rows, tasks, shared=(*arrays, *args, n_reached))
    for r0, exact_cost, j, low in sorted(results, key=lambda result: result[0]):
        low = low.astype(np.float64)
        # more duplicates than listed: radius 0 is not listed
        low[lists.beyond[r0 : r0 + low.size] <= 0] = -np.inf
        exact_cost[low == -np.inf] = _NONE
        r = int(np.argmin(exact_cost))
        if exact_cost[r] < _NONE and (best is None or exact_cost[r] < best[0]):
            best = (int(exact_cost[r]), r0 + r, int(j[r]))
        pending.extend((low[b], r0 + b) for b in np.flatnonzero(low < _NONE))
    best_row = None  # the best centre's exact row, where its search computed one
    # Least lower bound first: the first rows bring the best cost down, and once one
    # centre cannot win, no later one can (the bounds only grow, and on equal bounds the
    # indices). The winner is the least (cost, centre, size) whatever the order.
    pending.sort()
    gemm = _RowBlocks(X, norm)
    pos = 0
    while pos < len(pending):
        batch = []  # the next centres that can still win, for one block of rows
        while pos < len(pending) and len(batch) < _GEMM_BATCH and _could_win(best, *pending[pos]):
            batch.append(pending[pos])
            pos += 1
        if not batch:
            break
        centres = np.array([i for _, i in batch])
        dist, tau = gemm.rows(centres)
        # the batch's rows whose values are bounded, read at once: (row, size) pairs. No
        # radius passes the list's last exact distance (at most its value + its tau),
        # and no count looks further than eps past a radius: the values beyond that, and
        # a little more, are left out (a pair that would need them is not exact, and its
        # centre gets its exact row)
        fine = np.flatnonzero(np.isfinite(tau))
        reach = lists.far[centres[fine]] + lists.tau[centres[fine]] + eps
        reach = (reach + 5 * tau[fine]) * (1.0 + 1e-8)
        if fine.size < dist.shape[0]:
            dist = dist[fine]  # (no copy where every row is)
        least, first, bound = _read_rows(*_row_heads(dist, tau[fine], reach), *args, pairs=False)
        del dist
        for b, (low, i) in enumerate(batch):
            if not _could_win(best, low, i):
                continue
            at = np.searchsorted(fine, b)
            row = None
            if at < fine.size and fine[at] == b and bound[at] == _NONE:
                if least[at] == _NONE:
                    continue  # no size meets gamma
                found = (int(least[at]), i, int(first[at]))
            else:
                # unbounded, or a count within tau of a threshold: the exact row
                row = _row(X, i, norm)
                read = _exact_centre(row, *args)
                if read is None:
                    continue
                index, _, cost, _ = read
                j = int(np.argmin(cost))
                found = (int(cost[j]), i, int(index[j]))
            if best is None or found < best:
                best, best_row = found, row
    if best is None:
        return None
    cost, i, j = best
    # The winner's radius from its exact row (a list gives it only within tau).
    row = _row(X, i, norm) if best_row is None else best_row
    index, radius, exact_cost, _ = _exact_centre(row, *args)
    at = np.searchsorted(index, j)
    if at == index.size or index[at] != j or exact_cost[at] != cost:
        raise RuntimeError(
            f"Internal error: centre {i}'s exact row does not confirm the cost {cost} of "
            "its region read off the neighbour list; please report this."
        )
    return cost, i, float(radius[at]), row


def _could_win(best, low, i):
    """Whether a centre whose cost is at least ``low`` can beat the best, or tie it from
    an earlier centre or from the best's own (whose unsettled sizes may be smaller than
    the settled one at the same cost)."""
    return best is None or low < best[0] or (low == best[0] and i <= best[1])


def _row_heads(dist, tau, reach):
    """The nearest values of each row of ``dist`` (within ``tau`` of the exact ones): all
    those up to ``reach``, and as many as the row that has most of them; ascending, with
    their samples, and a lower bound on the exact distance of each sample left out.
    Returns (d, o, tau, beyond), as :func:`_read_rows` takes them. Ties in index order
    in exact rows (``tau`` 0), in any order in bounded ones (as the lists')."""
    B, n = dist.shape
    K = max(int(np.count_nonzero(dist <= reach[:, None], axis=1).max(initial=0)), 1)
    if K >= n:
        index, beyond = np.broadcast_to(np.arange(n), (B, n)), np.full(B, np.inf)
    else:
        part = np.argpartition(dist, K, axis=1)
        index = part[:, :K]
        # every value left out is at least the (K+1)-th smallest
        beyond = np.take_along_axis(dist, part[:, K : K + 1], axis=1)[:, 0]
        beyond = np.maximum((beyond - tau) * (1.0 - 4 * _U64), 0.0)
    values = np.take_along_axis(dist, index, axis=1)
    order = np.argsort(values, axis=1)
    exact = np.flatnonzero(tau == 0)
    if exact.size:
        order[exact] = np.lexsort((index[exact], values[exact]), axis=-1)
    d, o = np.take_along_axis(values, order, axis=1), np.take_along_axis(index, order, axis=1)
    return d, o, tau, beyond


class _RowBlocks:
    """Full distance rows of a batch of centres: L2 from one float64 GEMM, each value
    within its row's ``tau`` of the exact distance (the nearest pairs, whose bounds are
    the loosest, re-scored exactly; ``tau`` inf where the GEMM's bounds are too loose to
    use), L∞ exact (``tau`` 0)."""

    def __init__(self, X, norm):
        self.X, self.norm = X, norm
        self.terms = _gemm_terms(X) if norm == 2 else None

    def rows(self, batch):
        X, batch = self.X, np.asarray(batch)
        if self.norm != 2:
            return chebyshev(X[batch], X), np.zeros(batch.size)
        sq, norms, c = self.terms
        D = _gemm_squared(X, sq, batch)
        with np.errstate(over="ignore", invalid="ignore"):
            tol = pair_tolerance(norms[batch], norms, c)
        with np.errstate(invalid="ignore"):  # outside the GEMM's range: tau inf
            dist, err = _distance_bounds(D, tol)
        del D, tol
        # the cut: 8 times a typical bound (the median of every 8th; any cut is sound)
        tau = _tighten(X, batch, dist, err, 8 * np.median(err[:, ::8], axis=1, keepdims=True))
        return dist, tau


def _exact_centre(row, *args):
    """:func:`_centre` on a centre's exact distance row."""
    order = np.argsort(row, kind="stable")
    return _centre(row[order], order, 0.0, *args)


@dataclass
class Placement:
    """Regions placed on the first half (indices into it, radii in its units)."""

    centers: list = field(default_factory=list)
    radii: list = field(default_factory=list)
    region_lu: list = field(default_factory=list)
    rounds: list = field(default_factory=list)
    covered: np.ndarray = None
    reached: np.ndarray = None
    infeasible_round: tuple | None = None


def place_regions(Xa, lua, *, norm, epsilon, alpha, gamma, n_regions, delta, verbose=0):
    """Greedy placement of up to ``n_regions`` regions covering ``⌈n α (1 + δ)⌉`` samples.

    A round with no feasible (centre, size) stops placement: later rounds would try a
    subset of the same candidates (``Placement.infeasible_round``).
    """
    n = Xa.shape[0]
    target = math.ceil(n * alpha * (1 + delta))
    # Every size read off a list is below target + 1 - (covered so far): target + 1
    # neighbours always suffice, and _SPARE more settle the last one's order among the
    # values' bounds.
    lists = cached_neighbour_lists(Xa, target + 1 + _SPARE, norm, verbose=verbose)
    out = Placement(covered=np.zeros(n, dtype=bool), reached=np.zeros(n, dtype=bool))
    bar = progress_bar(verbose, n_regions, "regions", unit="region")
    for t in range(n_regions):
        bar.update(int(t > 0))
        remaining = target - int(out.covered.sum())
        if remaining <= 0:
            break
        n_lower = math.ceil(remaining / (n_regions - t))
        best = best_region(
            lists, Xa, norm, ~out.covered, ~out.reached, lua, n_lower, remaining, epsilon, gamma
        )
        record = {"round": t, "sizes": (n_lower, remaining)}
        if best is None:
            record["status"] = "infeasible"
            out.rounds.append(record)
            out.infeasible_round = (t, n_lower, remaining)
            break
        _, i, radius, dist = best
        new_cover = ~out.covered & (dist <= radius)
        new_reach = ~out.reached & (dist <= radius + epsilon)
        out.region_lu.append(float(lua[new_cover].mean()))
        out.covered |= new_cover
        out.reached |= new_reach
        out.centers.append(i)
        out.radii.append(radius)
        record.update(
            status="placed",
            center=i,
            radius=radius,
            covered=int(new_cover.sum()),
            reached=int(new_reach.sum()),
            label_uncertainty=out.region_lu[-1],
        )
        out.rounds.append(record)
    bar.update(bar.total - bar.n)
    bar.close()
    return out


def measure(Xb, centers, radii, epsilon, norm):
    """Which held-out samples lie inside a region, and which within ``epsilon`` of one."""
    if len(centers) == 0:
        none = np.zeros(Xb.shape[0], dtype=bool)
        return none, none
    Dt = distances(Xb, centers, norm)
    radii = np.asarray(radii)
    return (Dt <= radii).any(axis=1), (Dt <= radii + epsilon).any(axis=1)
