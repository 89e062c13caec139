"""The cdist backend: exact float64 ``scipy.spatial.distance.cdist`` blocks, any metric."""

import numpy as np
from scipy.spatial.distance import cdist

from skrob._blocks import mask_self
from skrob._exact import max_abs, pow2_scale

# How scipy's cdist metrics scale with X: d(cX, cX') = c**degree d(X, X'). Data are scaled
# by a power of two (so |X| < 1) before these metrics, which would otherwise overflow or
# underflow inside (squares, p-th powers, norms); unknown metrics are left as they are,
# and a non-finite distance is an error.
_METRIC_DEGREE = {
    "euclidean": 1,
    "cityblock": 1,
    "chebyshev": 1,
    "minkowski": 1,
    "sqeuclidean": 2,
    "braycurtis": 0,
    "canberra": 0,
    "cosine": 0,
    "correlation": 0,
}


def cdist_scaling(metric, *arrays):
    """The arrays scaled for ``metric``, and a function taking distances back to X's units."""
    degree = _METRIC_DEGREE.get(metric) if isinstance(metric, str) else None
    if degree is None:
        return arrays, lambda dist: dist
    g = pow2_scale(max_abs(*arrays))  # scale-free metrics too: no norm underflows

    def unscale(dist):
        with np.errstate(over="ignore"):
            return dist if degree == 0 else dist / g if degree == 1 else dist / g / g

    return tuple(A * g for A in arrays), unscale


def cdist_task(XA, XB, r0, r1, c0, c1, both, col_block, metric, self_col=None):
    """Exact float64 ``cdist`` blocks; row (and column) minima with their partners."""
    out = []
    a = XA[r0:r1]
    self_col = None if self_col is None else self_col[r0:r1]
    for cs in range(c0, c1, col_block):
        ce = min(cs + col_block, c1)
        with np.errstate(over="ignore", invalid="ignore"):
            D = cdist(a, XB[cs:ce], metric=metric)
        if not np.isfinite(D).all():
            raise ValueError(
                f"metric={metric!r} gives non-finite distances for finite X (float64 "
                "overflow, or a metric undefined for some rows, e.g. cosine of a zero "
                "row); rescale X or choose another metric."
            )
        mask_self(D, self_col, cs, np.inf)
        j = D.argmin(axis=1)
        out.append((r0 + np.arange(r1 - r0), cs + j, D[np.arange(r1 - r0), j]))
        if both:
            i = D.argmin(axis=0)
            out.append((r0 + i, cs + np.arange(ce - cs), D[i, np.arange(ce - cs)]))
    return tuple(np.concatenate([o[k] for o in out]) for k in range(3))


def paired_cdist(XA, XB, i, j, metric):
    """``d(XA[i], XB[j])`` for a cdist metric, one pair at a time (few pairs only)."""
    return np.fromiter(
        (cdist(XA[[a]], XB[[b]], metric=metric)[0, 0] for a, b in zip(i, j, strict=True)),
        dtype=np.float64,
        count=len(i),
    )
