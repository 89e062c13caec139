"""Float64 brute-force references (scipy's cdist), n x n in memory: small data only."""

import numpy as np
from scipy.spatial.distance import cdist


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
