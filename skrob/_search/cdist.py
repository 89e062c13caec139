"""The cdist backend: exact float64 ``scipy.spatial.distance.cdist`` blocks, any metric."""

import numpy as np
import scipy.sparse as sp
from scipy.spatial.distance import cdist

from skrob._search.blocks import mask_self
from skrob._search.chebyshev import chebyshev
from skrob._search.exact import max_abs, pow2_scale

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


# scikit-learn's pairwise_distances names for scipy's metrics.
ALIASES = {"manhattan": "cityblock", "l1": "cityblock", "l2": "euclidean"}
# scipy's names that cdist accepts.
_SCIPY_METRICS = {
    "braycurtis", "canberra", "chebyshev", "cityblock", "correlation", "cosine", "dice",
    "euclidean", "hamming", "jaccard", "jensenshannon", "kulczynski1", "mahalanobis",
    "matching", "minkowski", "rogerstanimoto", "russellrao", "seuclidean", "sokalmichener",
    "sokalsneath", "sqeuclidean", "yule",
}  # fmt: skip


class CdistMetric:
    """A scipy ``cdist`` metric with its parameters, fixed once for a whole computation.

    ``seuclidean`` and ``mahalanobis`` without ``V``/``VI`` get them from the reference
    set: scipy would compute them from each block's rows, so that distances would depend
    on how the data are blocked.
    """

    def __init__(self, metric, params=None):
        self.metric = metric
        self.params = dict(params or {})

    @property
    def name(self):
        return self.metric if isinstance(self.metric, str) else None

    def __call__(self, A, B):
        if self.metric == "chebyshev" and not self.params and not sp.issparse(A):
            return chebyshev(A, B)  # the same values, from a kernel that vectorises
        return cdist(A, B, metric=self.metric, **self.params)

    def __repr__(self):
        return repr(self.metric) if not self.params else f"{self.metric!r} {self.params!r}"


def resolve_metric(metric, metric_params, X):
    """``"euclidean"`` (the float32-GEMM kernel), or a :class:`CdistMetric`.

    Takes every name of ``sklearn.metrics.pairwise_distances`` that scipy computes
    (``manhattan``, ``l1``, ``l2`` too), callables, and ``metric_params``.
    """
    params = dict(metric_params or {})
    if isinstance(metric, str):
        name = ALIASES.get(metric, metric)
        if name not in _SCIPY_METRICS:
            raise ValueError(
                f"Unknown metric {metric!r}; use one of {sorted(_SCIPY_METRICS | set(ALIASES))}"
                " or a callable."
            )
        if name == "euclidean" and not params:
            return "euclidean"
        if sp.issparse(X):  # the sparse path takes three metrics, and no V / VI
            return CdistMetric(name, params)
        X = np.asarray(X, dtype=np.float64)
        if name == "seuclidean" and "V" not in params:
            params["V"] = X.var(axis=0, ddof=1)
        if name == "mahalanobis" and "VI" not in params:
            params["VI"] = np.linalg.pinv(np.atleast_2d(np.cov(X.T)))
        d = X.shape[1]
        for key, shape in (("VI", (d, d)), ("V", (d,)), ("w", (d,))):
            if key in params and np.shape(params[key]) != shape:
                raise ValueError(
                    f"metric={name!r}: metric_params[{key!r}] must have shape {shape} for X "
                    f"with {d} features; got shape {np.shape(params[key])}."
                )
        if name == "seuclidean" and not np.all(np.asarray(params["V"]) > 0):
            raise ValueError(
                "metric='seuclidean' divides by each feature's variance V; some are 0 "
                "(constant features): drop them or pass metric_params={'V': ...}."
            )
        return _checked(CdistMetric(name, params), X)
    return CdistMetric(metric, params)


def _checked(metric, X):
    """Try the metric on one row, so that bad metric_params get an error naming them."""
    row = np.asarray(X[:1], dtype=np.float64)
    try:
        metric(row, row)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"metric={metric.metric!r} does not take metric_params={metric.params!r}: {exc}"
        ) from None
    return metric


def as_metric(metric):
    """A metric for the kernels: "euclidean" stays, a name or callable becomes a CdistMetric."""
    if metric == "euclidean" or isinstance(metric, CdistMetric):
        return metric
    return CdistMetric(metric)


def pairwise(A, B, metric):
    """Distances of every row of A to every row of B."""
    return as_metric(metric)(A, B)


def cdist_scaling(metric, *arrays):
    """The arrays scaled for ``metric``, and a function taking distances back to X's units.

    Metrics with parameters fixed in X's units (``V``, ``VI``, ``w``) are not scaled.
    """
    metric = as_metric(metric)
    degree = None if metric.params else _METRIC_DEGREE.get(metric.name)
    if degree is None:
        return arrays, lambda dist: dist
    g = pow2_scale(max_abs(*arrays))  # scale-free metrics too: no norm underflows

    def unscale(dist):
        with np.errstate(over="ignore"):
            return dist if degree == 0 else dist / g if degree == 1 else dist / g / g

    return tuple(A * g for A in arrays), unscale


def cdist_task(XA, XB, both, col_block, metric, self_col, r0, r1, c0, c1):
    """Exact float64 ``cdist`` blocks; row (and column) minima with their partners."""
    out = []
    a = XA[r0:r1]
    self_col = None if self_col is None else self_col[r0:r1]
    for cs in range(c0, c1, col_block):
        ce = min(cs + col_block, c1)
        with np.errstate(over="ignore", invalid="ignore"):
            D = pairwise(a, XB[cs:ce], metric)
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
    """``d(XA[i], XB[j])`` for a cdist metric, exact float64 (scaled like the exact
    kernel, so extreme magnitudes neither overflow nor underflow). Consecutive pairs
    that share a row of XA are computed in one cdist call."""
    i, j = np.asarray(i), np.asarray(j)
    out = np.empty(len(i), dtype=np.float64)
    if len(i) == 0:
        return out
    starts = np.flatnonzero(np.r_[True, i[1:] != i[:-1]])
    ends = np.r_[starts[1:], len(i)]
    for s, e in zip(starts, ends, strict=True):
        (a, b), unscale = cdist_scaling(metric, XA[i[[s]]], XB[j[s:e]])
        with np.errstate(over="ignore", invalid="ignore"):
            out[s:e] = unscale(pairwise(a, b, metric)[0])
    return out
