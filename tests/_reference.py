"""Float64 brute-force references (scipy's cdist), n x n in memory: small data only."""

import math

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist

from skrob._concentration import RADIUS_MARGIN


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
            uncovered_sorted = np.sort(dist[~covered])
            for s in range(n_lower, remaining + 1):
                if s >= len(uncovered_sorted):
                    continue
                radius = uncovered_sorted[s] * (1 - RADIUS_MARGIN)
                new_cover = ~covered & (dist <= radius)
                new_reach = ~reached & (dist <= radius + epsilon)
                if new_cover.sum() == 0 or lu[new_cover].mean() < gamma:
                    continue
                cost = new_reach.sum() - new_cover.sum()
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
