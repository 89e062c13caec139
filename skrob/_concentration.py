"""Concentration of measure: the greedy union-of-regions placement and its evaluation.

Zhang & Evans (ICLR 2022), as their reference code computes it, made fast: each centre's
distances are sorted once, and every (centre, size) pair of a round is answered by a
``searchsorted`` and a cumulative sum. Works on data already centred and scaled (the
estimator does that, so the estimate is unit-free).
"""

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.distance import cdist

# A region's radius is "just below" the distance to the first sample it leaves out: that
# distance times (1 - RADIUS_MARGIN), so that the estimate does not depend on X's units.
RADIUS_MARGIN = 1e-9


def distances(A, B, norm):
    if norm == 2:
        return cdist(A, B, "euclidean")
    return cdist(A, B, "chebyshev")


def best_region(D_sorted, order, uncovered, unreached, lu, n_lower, n_upper, eps, gamma):
    """The (centre, size) of least expansion among all centres; None if none meets gamma.

    ``D_sorted[i]`` holds centre i's distances to every sample in ascending order and
    ``order[i]`` the samples in that order, both computed once. For one centre the
    uncovered and unreached samples keep that order, so every candidate size is a
    ``searchsorted`` on them, and the mean LU of the newly covered samples a cumulative sum.
    """
    sizes = np.arange(n_lower, n_upper + 1)
    best = None
    for i in range(D_sorted.shape[0]):
        d, o = D_sorted[i], order[i]
        u = uncovered[o]
        du = d[u]
        dv = d[unreached[o]]
        valid = sizes < du.size  # the (s+1)-th nearest uncovered sample must exist
        if not valid.any():
            continue
        s = sizes[valid]
        radius = du[s] * (1.0 - RADIUS_MARGIN)
        covered = np.searchsorted(du, radius, side="right")
        reached = np.searchsorted(dv, radius + eps, side="right")
        cum_lu = np.concatenate(([0.0], np.cumsum(lu[o][u])))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_lu = cum_lu[covered] / covered
        ok = (covered > 0) & (mean_lu >= gamma)
        if not ok.any():
            continue
        cost = np.where(ok, reached - covered, np.iinfo(np.int64).max)
        j = int(np.argmin(cost))
        if best is None or cost[j] < best[0]:
            best = (int(cost[j]), i, float(radius[j]))
    return best


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


def place_regions(Xa, lua, *, norm, epsilon, alpha, gamma, n_regions, delta):
    """Greedy placement of up to ``n_regions`` regions covering ``⌈n α (1 + δ)⌉`` samples.

    A round with no feasible (centre, size) stops placement: later rounds would try a
    subset of the same candidates (``Placement.infeasible_round``).
    """
    n = Xa.shape[0]
    D = distances(Xa, Xa, norm)
    order = np.argsort(D, axis=1, kind="stable")
    D_sorted = np.take_along_axis(D, order, axis=1)
    del D
    target = math.ceil(n * alpha * (1 + delta))
    out = Placement(covered=np.zeros(n, dtype=bool), reached=np.zeros(n, dtype=bool))
    for t in range(n_regions):
        remaining = target - int(out.covered.sum())
        if remaining <= 0:
            break
        n_lower = math.ceil(remaining / (n_regions - t))
        best = best_region(
            D_sorted, order, ~out.covered, ~out.reached, lua, n_lower, remaining, epsilon, gamma
        )
        record = {"round": t, "sizes": (n_lower, remaining)}
        if best is None:
            record["status"] = "infeasible"
            out.rounds.append(record)
            out.infeasible_round = (t, n_lower, remaining)
            break
        _, i, radius = best
        dist = D_sorted[i, np.argsort(order[i])]  # back to sample order
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
    return out


def measure(Xb, centers, radii, epsilon, norm):
    """Which held-out samples lie inside a region, and which within ``epsilon`` of one."""
    if len(centers) == 0:
        none = np.zeros(Xb.shape[0], dtype=bool)
        return none, none
    Dt = distances(Xb, centers, norm)
    radii = np.asarray(radii)
    return (Dt <= radii).any(axis=1), (Dt <= radii + epsilon).any(axis=1)
