"""Concentration of measure: the greedy union-of-regions placement and its evaluation.

Zhang & Evans (ICLR 2022), as their reference code computes it, made fast and O(n · nα) in
memory: each centre keeps its ⌈nα(1+δ)⌉ + 1 nearest samples, sorted once, and a profile
of its farther distances (:func:`neighbour_lists`); every (centre, size) pair of a round
is answered by a ``searchsorted`` and a cumulative sum on the list, or bounded by the
profile, and only the centres whose bound could win get their full row
(:func:`best_region`). Works on data already centred and scaled (the estimator does that,
so the estimate is unit-free).
"""

import math
from dataclasses import dataclass, field

import joblib
import numpy as np
from scipy.spatial.distance import cdist

from skrob._progress import progress_bar
from skrob._search.blocks import pair_tolerance, run_tasks
from skrob._search.exact import SAFE_MAX, SAFE_MIN, exact_dist

_U64 = float(np.finfo(np.float64).eps) / 2

# Ranks of each centre's distance profile beyond its list (lower bounds on counts).
_PROFILE = 128

# A region's radius is "just below" the distance to the first sample it leaves out: that
# distance times (1 - RADIUS_MARGIN), so that the estimate does not depend on X's units.
RADIUS_MARGIN = 1e-9


def distances(A, B, norm):
    if norm == 2:
        return cdist(A, B, "euclidean")
    return cdist(A, B, "chebyshev")


def _row(X, i, norm):
    """Exact distances from sample ``i`` to every sample."""
    if norm == 2:  # the row broadcast, not gathered once per pair
        n = X.shape[0]
        return _row_pairs_dist(X, i, np.zeros(n, dtype=np.intp), np.arange(n))
    return cdist(X[i : i + 1], X, "chebyshev")[0]


@dataclass
class NeighbourLists:
    """Each sample's ``k`` nearest samples (itself included) in (distance, index) order.

    ``dist[i]`` are exact distances, ascending; ``index[i]`` the samples. The list is a
    prefix of the full sorted row, so any count up to a radius below ``dist[i, -1]`` is
    read off it. Beyond, ``profile[i, m]`` bounds from above the distance of the
    ``ranks[m] + 1``-th nearest sample: at least ``ranks[m] + 1`` samples lie within any
    radius at or above it (a lower bound on counts, :func:`best_region`).
    """

    dist: np.ndarray
    index: np.ndarray
    ranks: np.ndarray
    profile: np.ndarray


def _row_pairs_dist(X, r0, rows, cols):
    """``exact_dist`` of the pairs ``(r0 + rows, cols)``, ``rows`` sorted: row by row, the
    row's own entries broadcast instead of gathered once per pair."""
    out = np.empty(rows.size)
    bounds = np.searchsorted(rows, np.arange(rows.max(initial=-1) + 2))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for r in range(bounds.size - 1):
            lo, hi = bounds[r], bounds[r + 1]
            if lo == hi:
                continue
            diff = X[cols[lo:hi]]
            np.subtract(diff, X[r0 + r], out=diff)
            sq = np.einsum("ij,ij->i", diff, diff)
            bad = ~((sq > SAFE_MIN) & (sq < SAFE_MAX))
            out[lo:hi] = np.sqrt(sq)
            if bad.any():  # overflow, underflow or duplicates: the scaled path
                k = lo + np.flatnonzero(bad)
                out[k] = exact_dist(X, X, r0 + rows[k], cols[k])
    return out


def _lists_block(X, sq, norms, c, k, ranks, norm, r0, r1):
    """Rows ``[r0, r1)`` of :func:`neighbour_lists`: (r0, distances, indices, profile)."""
    if norm == 2:
        D = X[r0:r1] @ X.T
        D *= -2.0
        D += sq[r0:r1, None]
        D += sq[None, :]
        tol = pair_tolerance(norms[r0:r1], norms, c)
        upper = np.partition(D + tol, k - 1, axis=1)[:, k - 1]
        rows, cols = np.nonzero(D - tol <= upper[:, None])
        vals = _row_pairs_dist(X, r0, rows, cols)
        # order statistics move at most by the largest error of the row
        D += tol.max(axis=1, keepdims=True)
        profile = np.sqrt(np.maximum(np.partition(D, ranks, axis=1)[:, ranks], 0.0))
        profile *= 1.0 + 4 * _U64  # the square root's rounding
    else:
        D = cdist(X[r0:r1], X, "chebyshev")
        kth = np.partition(D, k - 1, axis=1)[:, k - 1]
        rows, cols = np.nonzero(D <= kth[:, None])
        vals = D[rows, cols]
        profile = np.partition(D, ranks, axis=1)[:, ranks]
    order = np.lexsort((cols, vals, rows))  # by row, then distance, then index
    rows, cols, vals = rows[order], cols[order], vals[order]
    start = np.searchsorted(rows, np.arange(r1 - r0))
    rank = np.arange(rows.size) - start[rows]
    keep = rank < k
    dist = np.empty((r1 - r0, k))
    index = np.empty((r1 - r0, k), dtype=np.int32 if X.shape[0] < 2**31 else np.intp)
    dist[rows[keep], rank[keep]] = vals[keep]
    index[rows[keep], rank[keep]] = cols[keep]
    return r0, dist, index, profile


def neighbour_lists(X, k, norm, block=256, n_jobs=None, verbose=0):
    """:class:`NeighbourLists` in O(n k) memory, by blocks of rows (on every core).

    L2: a float64 GEMM bounds every squared distance within ``c (|a| + |b|)^2``
    (``skrob._search.blocks.pair_tolerance``); the pairs whose lower bound is below a row's
    k-th smallest upper bound include its k nearest, and are re-scored exactly
    (difference, then norm). L∞: exact Chebyshev blocks.
    """
    n, d = X.shape
    k = min(k, n)
    sq = norms = None
    if norm == 2:
        sq = np.einsum("ij,ij->i", X, X)
        norms = np.sqrt(sq)
    c = (d + 8) * _U64 * 1.01
    # ranks beyond the list, for lower bounds on counts (_PROFILE of them, evenly spaced)
    ranks = np.unique(np.linspace(k - 1, n - 1, _PROFILE).astype(np.intp))
    tasks = [(r0, min(r0 + block, n)) for r0 in range(0, n, block)]
    shared = (X, sq, norms, c, k, ranks, norm)
    results = run_tasks(
        _lists_block, tasks, shared=shared, n_jobs=n_jobs, verbose=verbose, desc="neighbour lists"
    )
    dist = np.empty((n, k))
    index = np.empty((n, k), dtype=results[0][2].dtype)
    profile = np.empty((n, ranks.size))
    for r0, dist_block, index_block, profile_block in results:
        dist[r0 : r0 + dist_block.shape[0]] = dist_block
        index[r0 : r0 + dist_block.shape[0]] = index_block
        profile[r0 : r0 + dist_block.shape[0]] = profile_block
    return NeighbourLists(dist, index, ranks, profile)


# The last neighbour lists computed, keyed by the data's hash: an epsilon or gamma grid
# on the same half reuses them.
_CACHE = {}


def cached_neighbour_lists(X, k, norm, verbose=0):
    key = (joblib.hash(X), norm)
    hit = _CACHE.get("lists")
    if hit is not None and hit[0] == key and hit[1].dist.shape[1] >= min(k, X.shape[0]):
        return hit[1]
    lists = neighbour_lists(X, k, norm, verbose=verbose)
    _CACHE["lists"] = (key, lists)
    return lists


def _centre(d, o, complete, uncovered, unreached, lu, sizes, eps, gamma, bound=None):
    """Every size's (size indices, radius, cost, exact) for one centre, from its sorted
    distances ``d`` to samples ``o`` (a prefix of the sorted row unless ``complete``);
    None when no size meets gamma. Where ``exact`` is False the cost is a lower bound."""
    u = uncovered[o]
    du = d[u]
    valid = sizes < du.size  # the (s+1)-th nearest uncovered sample must be listed
    if not valid.any():
        return None
    s = sizes[valid]
    radius = du[s] * (1.0 - RADIUS_MARGIN)
    covered = np.searchsorted(du, radius, side="right")
    cum_lu = np.concatenate(([0.0], np.cumsum(lu[o[u]])))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_lu = cum_lu[covered] / covered
    ok = (covered > 0) & (mean_lu >= gamma)
    if not ok.any():
        return None
    reached = np.searchsorted(d[unreached[o]], radius + eps, side="right")
    # Listed: every sample within radius + eps (else the count is a lower bound).
    exact = np.ones(s.size, dtype=bool) if complete else radius + eps < d[-1]
    if bound is not None and not exact.all():
        # At least ranks[m] + 1 samples lie within profile[m]; at most n_reached of them
        # were reached before.
        ranks, profile, n_reached = bound
        m = np.searchsorted(profile, radius + eps, side="right")  # profiles within
        at_least = np.where(m > 0, ranks[np.maximum(m - 1, 0)] + 1, 0) - n_reached
        reached = np.where(exact, reached, np.maximum(reached, at_least))
    index = np.flatnonzero(valid)[ok]
    return index, radius[ok], (reached - covered)[ok], exact[ok]


def best_region(lists, X, norm, uncovered, unreached, lu, n_lower, n_upper, eps, gamma):
    """The (centre, size) of least expansion among all centres; None if none meets gamma.

    For one centre, the uncovered samples of its neighbour list keep their order, so the
    (s+1)-th nearest uncovered sample, the covered count and the covered samples' mean
    LU are read off the list (it is long enough: ``k > n_upper + covered so far``), for
    every size s at once. The newly reached count is too, when ``radius + eps`` stays
    below the list's last distance. Beyond it only a lower bound is known (the unreached
    samples of the whole list); a centre with such a pair whose bound does not exceed
    the best exact cost is settled on its full distance row. Ties: the lowest centre
    index, then the smallest size, as a search over every centre chooses.
    """
    n = X.shape[0]
    sizes = np.arange(n_lower, n_upper + 1)
    best = None  # (cost, centre, size index, radius)
    pending = []  # (lower bound, centre)
    full = lists.dist.shape[1] == n
    n_reached = n - int(unreached.sum())
    for i in range(lists.dist.shape[0]):
        d, o = lists.dist[i], lists.index[i]
        if not full and d[-1] == 0:  # more duplicates than listed: radius 0 is not listed
            pending.append((-np.inf, i))
            continue
        bound = (lists.ranks, lists.profile[i], n_reached)
        found = _centre(d, o, full, uncovered, unreached, lu, sizes, eps, gamma, bound)
        if found is None:
            continue
        index, radius, cost, exact = found
        if exact.any():
            j = int(np.argmin(np.where(exact, cost, np.iinfo(np.int64).max)))
            if best is None or cost[j] < best[0]:
                best = (int(cost[j]), i, int(index[j]), float(radius[j]))
        if not exact.all():
            pending.append((int(cost[~exact].min()), i))
    for low, i in pending:
        if best is not None and (low > best[0] or (low == best[0] and i > best[1])):
            continue  # can neither beat the best nor tie it from an earlier centre
        row = _row(X, i, norm)
        order = np.argsort(row, kind="stable")
        found = _centre(row[order], order, True, uncovered, unreached, lu, sizes, eps, gamma)
        if found is None:
            continue
        index, radius, cost, _ = found
        j = int(np.argmin(cost))
        if best is None or (cost[j], i, index[j]) < (best[0], best[1], best[2]):
            best = (int(cost[j]), i, int(index[j]), float(radius[j]))
    return None if best is None else (best[0], best[1], best[3])


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
    # neighbours always suffice.
    lists = cached_neighbour_lists(Xa, target + 1, norm, verbose=verbose)
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
        _, i, radius = best
        dist = _row(Xa, i, norm)
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
