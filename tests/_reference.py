"""Float64 brute-force references (scipy's cdist), n x n in memory: small data only."""

import math

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist

from skrob._concentration import _U64, RADIUS_MARGIN


def brute_dist(A, B, metric="euclidean"):
    """Pairwise distances; Euclidean ones over the whole finite float64 range.

    Each difference is halved (exact) and scaled by its largest entry before the norm,
    so neither the difference, nor its square, overflows or underflows.
    """
    if metric != "euclidean":
        return cdist(A, B, metric=metric)
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    diff = A[:, None, :] * 0.5 - B[None, :, :] * 0.5
    m = np.abs(diff).max(axis=2, keepdims=True)
    m[m == 0] = 1.0
    with np.errstate(over="ignore"):
        return np.sqrt(((diff / m) ** 2).sum(axis=2)) * m[..., 0] * 2.0


def brute_reach(X, y, metric="euclidean", reference=None, ref_y=None):
    """Distance from each (X, y) sample to the nearest differently labelled reference."""
    if reference is None:
        reference, ref_y = X, y
    D = brute_dist(X, reference, metric=metric)
    D[np.asarray(y)[:, None] == np.asarray(ref_y)[None, :]] = np.inf
    return D.min(axis=1)


def _max_norm(Y):
    return brute_dist(Y, np.zeros((1, Y.shape[1])))[:, 0].max()


def brute_q(X, Y, metric="euclidean", reference=None, ref_Y=None):
    """Q(z) / ||y||_inf, Q(z) = max over z' with another target of |y(z) - y(z')| / d(z, z').

    ``||y||_inf`` is the reference's largest target norm.
    """
    Y = np.asarray(Y, dtype=float).reshape(len(X), -1)
    if reference is None:
        reference, ref_Y = X, Y
    ref_Y = np.asarray(ref_Y, dtype=float).reshape(len(reference), -1)
    D = brute_dist(X, reference, metric=metric)
    L = brute_dist(Y, ref_Y) / _max_norm(ref_Y)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = L / D
    ratio[L == 0] = 0.0
    return ratio.max(axis=1)


def brute_robustness(X, y, task, metric="euclidean"):
    if task == "classification":
        r = brute_reach(X, y, metric)
        return r / (r + 1)
    return 1.0 / (1.0 + brute_q(X, y, metric))


def brute_loo_transform(X, y, per_class=False):
    """``SampleRobustnessTransformer.fit_transform``: each row against the others only.

    Classification: per class, the distance to its nearest member other than the row
    itself; R of the best pseudo-label (or of every label with ``per_class``).
    """
    D = brute_dist(X, X)
    np.fill_diagonal(D, np.inf)
    classes = np.unique(y)
    dist = np.stack([D[:, y == k].min(axis=1) for k in classes], axis=1)
    reach = np.empty_like(dist)
    for k in range(len(classes)):
        reach[:, k] = np.delete(dist, k, axis=1).min(axis=1)
    R = np.where(np.isinf(reach), 1.0, reach / (reach + 1))
    if per_class:
        return R
    return R[np.arange(len(X)), dist.argmin(axis=1)][:, None]


def brute_loo_regression(X, Y):
    """Regression ``fit_transform``: pseudo-target of the nearest other row, Q vs the others."""
    Y = np.asarray(Y, dtype=float).reshape(len(X), -1)
    D = brute_dist(X, X)
    np.fill_diagonal(D, np.inf)
    pseudo = Y[D.argmin(axis=1)]
    L = brute_dist(pseudo, Y) / _max_norm(Y)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = L / D
    ratio[L == 0] = 0.0
    return 1.0 / (1.0 + ratio.max(axis=1))[:, None]


def brute_force_costs(dist, covered, reached, lu, sizes, epsilon, gamma):
    """One centre's regions, every size from scratch: {size: (cost, radius, newly covered,
    newly reached)} for the sizes (in their order) whose covered samples' mean label
    uncertainty is at least gamma. ``dist``: the centre's exact distances."""
    uncovered_sorted = np.sort(dist[~covered])
    out = {}
    for s in sizes:
        if s >= len(uncovered_sorted):
            continue
        radius = uncovered_sorted[s] * (1 - RADIUS_MARGIN)
        new_cover = ~covered & (dist <= radius)
        new_reach = ~reached & (dist <= radius + epsilon)
        if new_cover.sum() == 0 or lu[new_cover].mean() < gamma:
            continue
        out[s] = (new_reach.sum() - new_cover.sum(), radius, new_cover, new_reach)
    return out


def brute_force_regions(Xa, lu, *, epsilon, alpha, gamma, norm, n_regions, delta):
    """The greedy union-of-regions search as described (and as Zhang & Evans' reference
    code runs it): every centre and size recomputed from scratch. Also the timed baseline
    of benchmarks/bench_intrinsic_robustness.py."""
    metric = "euclidean" if norm == 2 else "chebyshev"
    n = len(Xa)
    target = math.ceil(n * alpha * (1 + delta))
    covered = np.zeros(n, dtype=bool)
    reached = np.zeros(n, dtype=bool)
    regions = []
    for t in range(n_regions):
        remaining = target - covered.sum()
        if remaining <= 0:
            break
        n_lower = math.ceil(remaining / (n_regions - t))
        best = None
        for i in range(n):
            dist = cdist(Xa[i : i + 1], Xa, metric)[0]
            sizes = range(n_lower, remaining + 1)
            for cost, radius, new_cover, new_reach in brute_force_costs(
                dist, covered, reached, lu, sizes, epsilon, gamma
            ).values():
                if best is None or cost < best[0]:
                    best = (cost, i, radius, new_cover, new_reach)
        if best is None:
            regions.append(None)
            continue
        _, i, radius, new_cover, new_reach = best
        covered |= new_cover
        reached |= new_reach
        regions.append((i, radius))
    return regions, covered, reached


def assert_exact_order(X, idx, copies, k):
    """``idx`` lists each sample's k nearest others in float64 brute-force order: the
    distances they attain are the k smallest, non-decreasing (to rounding: ties in exact
    arithmetic may round either way), and ``copies`` marks exactly the zero ones."""
    n = len(X)
    D = brute_dist(X, X)
    np.fill_diagonal(D, np.inf)
    got = np.take_along_axis(D, idx, axis=1)
    assert_allclose(got, np.sort(D, axis=1)[:, :k], rtol=1e-12, atol=0)
    assert np.all(np.diff(got, axis=1) >= -1e-12 * got[:, 1:])
    assert not np.any(idx == np.arange(n)[:, None])
    assert all(np.unique(row).size == k for row in idx)
    assert_array_equal(copies, got == 0)


def read_rows_vectorised(
    d, o, tau, beyond, uncovered, unreached, lu, sizes, eps, gamma, profile=None
):
    """skrob._concentration._read_rows as numpy arrays of every (row, size) pair (until
    2026-12-04): the baseline of ``benchmarks/bench_intrinsic_robustness.py --read``, and
    a second reading for the tests. Several rows' counts come from one ``searchsorted``
    over keys with a rounding error, which widens every row's tau.

    What it reads, and why each count is exact or a lower bound: the production
    function's docstring. Returns (rows, size indices, exact, cost, radius). Where the
    value before the (s+1)-th lies below the radius's interval the covered count needs
    no search; where the value after the reach count lies above its interval, the
    other bound neither.
    """
    B, k = d.shape
    if B == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp), *np.zeros((3, 0))
    U = uncovered[o]
    cu, cr, cl = (np.zeros((B, k + 1), dtype=t) for t in (np.intp, np.intp, np.float64))
    np.cumsum(U, axis=1, out=cu[:, 1:])
    np.cumsum(unreached[o], axis=1, out=cr[:, 1:])
    np.cumsum(np.where(U, lu[o], 0.0), axis=1, out=cl[:, 1:])  # adding 0.0 is exact
    # the (s+1)-th uncovered entry of each row (its uncovered entries, row after row);
    # flat indices into d (row * k + column) and into the counts (row * (k + 1) + column)
    n_unc = cu[:, -1]
    rows, si = np.nonzero(sizes[None, :] < n_unc[:, None])
    start = np.concatenate(([0], np.cumsum(n_unc)[:-1]))
    flat = np.flatnonzero(U)[start[rows] + sizes[si]]
    at = flat - k * rows
    d_flat, cu, cr, cl = d.ravel(), cu.ravel(), cr.ravel(), cl.ravel()
    a = d_flat[flat]
    count, error = _counter_vectorised(d)
    # Each row's tau, widened by the keys' error and by a few ulps of its largest
    # threshold: every bound below holds after rounding (none for an exact row).
    row_tau = np.broadcast_to(np.asarray(tau, dtype=np.float64), (B,))
    if error > 0 or np.any(row_tau > 0):
        row_tau = row_tau + error + 8 * _U64 * (d[:, -1] + eps)
    tau = row_tau[rows]
    beyond = np.broadcast_to(np.asarray(beyond, dtype=np.float64), (B,))[rows]
    low = (a - tau) * (1.0 - RADIUS_MARGIN)
    high = (a + tau) * (1.0 - RADIUS_MARGIN)
    below, above = low - tau, high + tau  # surely / possibly covered
    pos_sure, pos = at.copy(), at.copy()
    searched = (at == 0) | (d_flat[np.maximum(flat - 1, 0)] > below) | (a <= above)
    pos_sure[searched] = count(below[searched], rows[searched])
    pos[searched] = count(above[searched], rows[searched])
    base = (k + 1) * rows
    covered = cu[base + pos]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_lu = cl[base + pos] / covered
    listed = above < beyond
    settled = listed & (cu[base + pos_sure] == covered)
    if np.any(tau > 0):
        # Past two values within 2 tau of each other, the covered set read in this order
        # may sum in another order than the exact one's: a mean within its rounding of
        # gamma is decided on the exact row.
        tied = np.diff(d, axis=1) <= 2 * row_tau[:, None]
        first_tie = np.where(tied.any(axis=1), tied.argmax(axis=1) + 1, k)
        rounding = 4 * _U64 * (covered + 1) * np.maximum(mean_lu, gamma)
        settled &= ~((pos > first_tie[rows]) & (np.abs(mean_lu - gamma) <= rounding))
    ok = np.where(settled, (covered > 0) & (mean_lu >= gamma), ~listed | (covered > 0))
    keep = np.flatnonzero(ok)
    rows, si, a, tau, beyond, low, high, covered, listed, settled = (
        v[keep] for v in (rows, si, a, tau, beyond, low, high, covered, listed, settled)
    )
    low_reach, high_reach = low + eps - tau, high + eps + tau
    pos_sure = count(low_reach, rows)
    pos = pos_sure.copy()
    searched = (pos < k) & (d_flat[k * rows + np.minimum(pos, k - 1)] <= high_reach)
    pos[searched] = count(high_reach[searched], rows[searched])
    base = (k + 1) * rows
    sure_reached, reached = cr[base + pos_sure], cr[base + pos]
    exact = settled & (sure_reached == reached) & (high_reach < beyond)
    cost = np.where(exact, reached, sure_reached) - covered
    if profile is not None and not exact.all():
        # at least ranks[m] + 1 samples within profile[m], at most n_reached of them
        # reached before
        ranks, within, n_reached = profile
        count_profile, p_error = _counter_vectorised(within)
        m = count_profile(low_reach - p_error, rows)
        at_least = np.where(m > 0, ranks[np.maximum(m - 1, 0)] + 1, 0) - n_reached
        cost = np.where(exact, cost, np.maximum(cost, at_least - covered))
    # no bound where the radius may cover samples left out of the list (each adds to
    # the covered count, perhaps not to the reached)
    cost = np.where(listed, cost, -uncovered.size)
    radius = np.where(exact, a * (1.0 - RADIUS_MARGIN), a)
    return rows, si, exact, cost, radius


def _counter_vectorised(values):
    """``count(thresholds, rows)``: how many of each row's ascending ``values`` are at
    most the threshold (one row: exactly), and the error of that count in the values'
    units (several rows: one ``searchsorted`` over keys ``2 b + v / (2 max v)``)."""
    B, k = values.shape
    if B == 1:
        return (lambda t, rows: np.searchsorted(values[0], t, side="right")), 0.0
    scale = max(float(values.max()), np.finfo(np.float64).tiny)
    keys = (values * (0.5 / scale) + 2.0 * np.arange(B)[:, None]).ravel()

    def count(threshold, rows):
        t = np.clip(threshold * (0.5 / scale), -0.25, 0.75) + 2.0 * rows
        return np.searchsorted(keys, t, side="right") - k * rows

    return count, 64 * _U64 * (B + 1) * scale
