"""Float64 brute-force references (scipy's cdist), n x n in memory: small data only."""

import numpy as np
from scipy.spatial.distance import cdist


def brute_reach(X, y, metric="euclidean", reference=None, ref_y=None):
    """Distance from each (X, y) sample to the nearest differently labelled reference."""
    if reference is None:
        reference, ref_y = X, y
    D = cdist(X, reference, metric=metric)
    D[np.asarray(y)[:, None] == np.asarray(ref_y)[None, :]] = np.inf
    return D.min(axis=1)


def brute_q(X, Y, metric="euclidean", reference=None, ref_Y=None):
    """Q(z) = max over z' with another target of |y(z) - y(z')| / d(z, z')."""
    Y = np.asarray(Y, dtype=float).reshape(len(X), -1)
    if reference is None:
        reference, ref_Y = X, Y
    ref_Y = np.asarray(ref_Y, dtype=float).reshape(len(reference), -1)
    D = cdist(X, reference, metric=metric)
    L = np.linalg.norm(Y[:, None, :] - ref_Y[None, :, :], axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = L / D
    ratio[L == 0] = 0.0
    return ratio.max(axis=1)


def brute_robustness(X, y, task, metric="euclidean"):
    if task == "classification":
        r = brute_reach(X, y, metric)
        return r / (r + 1)
    Y = np.asarray(y, dtype=float).reshape(len(X), -1)
    norm_inf = np.linalg.norm(Y, axis=1).max()
    Q = brute_q(X, Y, metric)
    with np.errstate(divide="ignore"):
        R = norm_inf / (norm_inf + Q)
    R[np.isinf(Q)] = 0.0
    return R
