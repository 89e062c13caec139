"""Sparse (CSR) data: the nearest member of every group, exactly, for three metrics.

- "euclidean": ``|a|² + |b|² - 2 a·b`` from sparse products in float64 on data scaled by
  a power of two, with each pair's own error bound; the pairs that can be a minimum are
  re-scored exactly from their sparse difference (scaled, so it neither overflows nor
  underflows): the float64 guarantee of the dense kernels, without densifying X.
- "cosine": the same on the rows scaled to unit norm; re-scored as ``|â - b̂|² / 2``
  (difference-then-norm on the unit sphere, accurate for near-parallel rows too).
- "cityblock" (and "manhattan", "l1"): exact sums from scikit-learn's sparse Manhattan
  distances, no re-scoring needed.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.metrics.pairwise import manhattan_distances

from skrob._search.blocks import (
    bounded_candidates,
    class_ranges,
    pair_tolerance,
    reduce_min,
    sorted_positions,
)
from skrob._search.cdist import ALIASES, CdistMetric
from skrob._search.exact import pow2_scale

_U64 = float(np.finfo(np.float64).eps) / 2


def _csr(X):
    return sp.csr_matrix(X, dtype=np.float64)


def _max_abs(X):
    return float(abs(X).max()) if X.nnz else 0.0


def _row_norms(X):
    return np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())


def _unit_rows(X, name):
    """Rows scaled to unit norm (first by a power of two, so no norm under- or overflows)."""
    m = np.asarray(abs(X).max(axis=1).todense()).ravel()
    if (m == 0).any():
        raise ValueError(f"metric='cosine' is undefined for the all-zero rows of {name}.")
    _, e = np.frexp(m)
    X = sp.diags(np.ldexp(1.0, -e)) @ X
    return sp.diags(1.0 / _row_norms(X)) @ X


def _exact_sparse_dist(A, B, i, j, chunk=4096):
    """``|A[i] - B[j]|`` per pair, from sparse differences scaled per row."""
    out = np.empty(i.shape[0])
    for s in range(0, i.shape[0], chunk):
        diff = (A[i[s : s + chunk]] - B[j[s : s + chunk]]).tocsr()
        m = np.asarray(abs(diff).max(axis=1).todense()).ravel()
        _, e = np.frexp(np.where(m > 0, m, 1.0))
        scaled = sp.diags(np.ldexp(1.0, -e)) @ diff
        with np.errstate(over="ignore"):
            out[s : s + chunk] = np.ldexp(_row_norms(scaled), e)
    return out


def sparse_groups(A, B, groups, n_groups, metric, *, exclude=None, row_block=256, col_block=4096):
    """Nearest row of the CSR ``B`` in every group, for each row of the CSR ``A``.

    Returns ``(dist, arg)`` of shape (n_A, n_groups), inf and -1 for an empty group;
    ``exclude[r]`` is a row of B that row r is never paired with (-1: none).
    """
    name = sparse_metric(metric)
    A, B = _csr(A), _csr(B)
    n_a = A.shape[0]
    order = np.argsort(groups, kind="stable")
    bounds = class_ranges(groups[order], n_groups)
    self_col = sorted_positions(order, exclude)
    B = B[order]
    if name == "cosine":
        A, B = _unit_rows(A, "X"), _unit_rows(B, "the reference")
    g = 1.0
    if name == "euclidean":
        g = pow2_scale(max(_max_abs(A), _max_abs(B)))
        A, B = A * g, B * g
    blocks = [
        (r0, min(r0 + row_block, n_a), grp, c0, min(c0 + col_block, bounds[grp + 1]))
        for r0 in range(0, n_a, row_block)
        for grp in range(n_groups)
        for c0 in range(bounds[grp], bounds[grp + 1], col_block)
    ]
    if name == "cityblock":
        return _direct(A, B, blocks, n_a, n_groups, self_col, order)
    scale = g if name == "euclidean" else 1.0
    return _bounded(A, B, blocks, (n_a, n_groups), self_col, order, groups[order], name, scale)


def _masked(D, self_col, r0, c0):
    if self_col is not None:
        sc = self_col[r0 : r0 + D.shape[0]]
        r = np.flatnonzero((sc >= c0) & (sc < c0 + D.shape[1]))
        D[r, sc[r] - c0] = np.inf
    return D


def _direct(A, B, blocks, n_a, n_groups, self_col, order):
    """Exact block values (Manhattan): per (row, group) minimum and its column."""
    dist = np.full((n_a, n_groups), np.inf)
    arg = np.full((n_a, n_groups), -1, dtype=np.intp)
    for r0, r1, grp, c0, c1 in blocks:
        D = _masked(manhattan_distances(A[r0:r1], B[c0:c1]), self_col, r0, c0)
        j = D.argmin(axis=1)
        v = D[np.arange(r1 - r0), j]
        better = v < dist[r0:r1, grp]
        dist[r0:r1, grp] = np.where(better, v, dist[r0:r1, grp])
        arg[r0:r1, grp] = np.where(better, order[c0 + j], arg[r0:r1, grp])
    return dist, arg


def _bounded(A, B, blocks, shape, self_col, order, groups_sorted, name, g):
    """Sparse products with per-pair bounds; candidates re-scored exactly."""
    n_a, n_groups = shape
    sqa, sqb = _row_norms(A) ** 2, _row_norms(B) ** 2
    na, nb = np.sqrt(sqa), np.sqrt(sqb)
    c = (A.shape[1] + 8) * _U64 * 1.01

    def block(r0, r1, c0, c1):
        D = (A[r0:r1] @ B[c0:c1].T).toarray()
        D *= -2.0
        D += sqa[r0:r1, None]
        D += sqb[None, c0:c1]
        return _masked(D, self_col, r0, c0), pair_tolerance(na[r0:r1], nb[c0:c1], c)

    i, j = bounded_candidates(block, blocks, n_a, n_groups)
    d = _exact_sparse_dist(A, B, i, j)
    if name == "cosine":
        d = d * d / 2.0  # |â - b̂|² / 2 = 1 - cos
    else:
        with np.errstate(over="ignore"):
            d = d / g
    keys = i * n_groups + groups_sorted[j]
    best, partner = reduce_min(keys, d, n_a * n_groups, j)
    arg = np.where(partner >= 0, order[np.maximum(partner, 0)], -1)
    return best.reshape(n_a, n_groups), arg.reshape(n_a, n_groups)


def sparse_metric(metric):
    """The metric's name for the sparse path; an error for the ones it cannot compute."""
    name = metric.name if isinstance(metric, CdistMetric) and not metric.params else metric
    name = ALIASES.get(name, name) if isinstance(name, str) else name
    if name not in ("euclidean", "cosine", "cityblock"):
        raise ValueError(
            f"Sparse X supports metric='euclidean', 'cosine' and 'cityblock' (or "
            f"'manhattan', 'l1', 'l2'); got {metric!r}. Use one of these, or X.toarray()."
        )
    return name
