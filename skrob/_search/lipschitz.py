"""Regression: the blockwise maximum of ``|y - y'| / d(x, x')``, ``||y||_inf`` and R.

The formulas of paper 000 for real targets, in one place: ``Q(z) = max over z' with
another target of ||y(z) - y(z')|| / d(z, z')``, ``R = 1 / (1 + Q / ||y||_inf)``.
"""

import numpy as np

from skrob._search.blocks import DEFAULT_BATCH_SIZE, TASK_SPAN, mask_self, run_tasks, split_span
from skrob._search.cdist import cdist_scaling, paired_cdist, pairwise
from skrob._search.exact import exact_dist, max_abs, pow2_scale, scaled_mean

_U64 = float(np.finfo(np.float64).eps) / 2


class _LipschitzData:
    """Both sides of a Lipschitz search, scaled by powers of two.

    Targets are scaled so that their largest entry is below 1 and, for the Euclidean
    metric, features are centred and scaled so that no norm exceeds 1: squared distances
    and squared target differences neither overflow nor, outside the pairs that are
    re-scored ("delicate" pairs, below), underflow. Results are Q / ||y||_inf, which
    the scaling leaves unchanged.
    """

    def __init__(self, XA, YA, XB, YB, metric, exclude=None):
        both = XB is None
        self.exclude = exclude
        self.XA, self.XB, self.metric = XA, (XA if both else XB), metric
        YB = YA if both else YB
        gy = pow2_scale(max_abs(YB) if both else max_abs(YA, YB))
        self.YA = YA * gy
        self.YB = self.YA if both else YB * gy
        self.norm = float(np.sqrt(np.einsum("ij,ij->i", self.YB, self.YB)).max())
        XA = np.asarray(XA, dtype=np.float64)
        if metric != "euclidean":
            XB = XA if both else np.asarray(self.XB, dtype=np.float64)
            (self.A, self.B), self.unscale = cdist_scaling(metric, XA, XB)
            if both:
                self.B = self.A
            # unit: a distance here is unscale^-1 of one in X's units
            self.unit = None
            self.tolA = np.zeros(self.A.shape[0])
            self.sqA = self.sqB = self.nA = self.nB = None  # no GEMM: no norms, no bound
            self.c = 0.0
            return
        self.unscale = None
        g = pow2_scale(max_abs(XA) if both else max_abs(XA, self.XB))
        center = scaled_mean(self.XB, g)
        self.A = XA * g - center
        self.B = self.A if both else self.XB * g - center
        h = pow2_scale(max(np.abs(self.A).max(initial=0.0), np.abs(self.B).max(initial=0.0)))
        self.A *= h
        if not both:
            self.B *= h
        self.unit = (g, h)  # a distance here is g * h times the distance in X's units
        self.sqA = np.einsum("ij,ij->i", self.A, self.A)
        self.sqB = self.sqA if both else np.einsum("ij,ij->i", self.B, self.B)
        self.nA, self.nB = np.sqrt(self.sqA), np.sqrt(self.sqB)
        # Where a squared distance is not 1e8 times its error bound, or could have lost
        # its value to underflow, the pair is delicate and re-scored exactly.
        self.c = (XA.shape[1] + 8) * _U64 * 1.01 * 1e8
        max_norm = max(self.nA.max(initial=0.0), self.nB.max(initial=0.0))
        self.tolA = self.c * (self.nA + max_norm) ** 2 + _TINY

    def to_relative(self, q_scaled):
        """Q / ||y||_inf from a Q in the scaled units."""
        q = q_scaled / self.norm
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self.unit is None:  # a cdist metric: q ~ 1 / distance
                return np.where(q > 0, 1.0 / self.unscale(1.0 / q), 0.0)
            return q * self.unit[0] * self.unit[1]

    def shared(self, both, col_block):
        """The arrays and settings every block task reads (see ``run_tasks``)."""
        return (self.A, self.B, self.sqA, self.sqB, self.nA, self.nB, self.tolA, self.YA,
                self.YB, self.exclude, self.metric, self.c, both, col_block)  # fmt: skip

    def delicate(self, i, j):
        """Q / ||y||_inf of the pairs ``(i, j)``, from exact distances in X's units."""
        dy = exact_dist(self.YA, self.YB, i, j) / self.norm
        dx = (
            exact_dist(self.XA, self.XB, i, j)
            if self.metric == "euclidean"
            else self.unscale(paired_cdist(self.A, self.B, i, j, self.metric))
        )
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            q = dy / dx
        q[dy == 0] = 0.0  # equal targets: no pair of Gamma, even at distance 0
        return q


# Below this a squared distance (norms <= 1) may have lost its value to underflow.
_TINY = 2.0**-960


def _sq_label_diff(YA, YB):
    out = np.subtract.outer(YA[:, 0], YB[:, 0])
    out *= out
    for k in range(1, YA.shape[1]):
        diff = np.subtract.outer(YA[:, k], YB[:, k])
        diff *= diff
        out += diff
    return out


def _lipschitz_block(A, B, sqA, sqB, nA, nB, tolA, YA, YB, exclude, metric, c, r0, r1, c0, c1):
    """Squared scaled ratios of a block (0 for delicate pairs) and its delicate pairs.

    Delicate pairs (a distance that is not 1e8 times its error bound, or may have lost
    its value to underflow) with different targets are returned, to be re-scored exactly.
    """
    L2 = _sq_label_diff(YA[r0:r1], YB[c0:c1])
    if metric != "euclidean":
        with np.errstate(over="ignore", invalid="ignore"):
            D2 = pairwise(A[r0:r1], B[c0:c1], metric)
        if not np.isfinite(D2).all():
            raise ValueError(
                f"metric={metric!r} gives non-finite distances for finite X; "
                "rescale X or choose another metric."
            )
        D2 *= D2
        ii, jj = np.nonzero(D2 <= _TINY)
    else:
        D2 = A[r0:r1] @ B[c0:c1].T
        D2 *= -2.0
        D2 += sqA[r0:r1, None]
        D2 += sqB[None, c0:c1]
        ii, jj = np.nonzero(D2 <= tolA[r0:r1, None])
        if ii.size:  # the row bound is loose with an outlier: check each pair's own
            tol = nA[r0 + ii] + nB[c0 + jj]
            keep = D2[ii, jj] <= c * tol * tol + _TINY
            ii, jj = ii[keep], jj[keep]
    conflicting = L2[ii, jj] > 0  # equal targets: no pair of Gamma, Q = 0
    D2[ii, jj] = 1.0
    L2[ii, jj] = 0.0
    ii, jj = ii[conflicting], jj[conflicting]
    np.divide(L2, D2, out=L2)
    if exclude is not None:  # leave-one-out: no pair with the excluded column
        ex = exclude[r0:r1]
        mask_self(L2, ex, c0, 0.0)
        keep = ex[ii] != c0 + jj
        ii, jj = ii[keep], jj[keep]
    return L2, ii, jj


def _lipschitz_task(*args):
    """Row (and column) maxima of squared scaled ratios over a block row, and its
    delicate pairs ``(i, j)``; ``args`` are ``_LipschitzData.shared()`` then the block."""
    *arrays, both, col_block, r0, r1, c0, c1 = args
    row_max = np.zeros(r1 - r0)
    col_max = np.zeros(c1 - c0) if both else None
    pairs_i, pairs_j = [np.empty(0, np.intp)], [np.empty(0, np.intp)]
    for cs in range(c0, c1, col_block):
        ce = min(cs + col_block, c1)
        L2, ii, jj = _lipschitz_block(*arrays, r0, r1, cs, ce)
        np.maximum(row_max, L2.max(axis=1), out=row_max)
        if both:
            np.maximum(col_max[cs - c0 : ce - c0], L2.max(axis=0), out=col_max[cs - c0 : ce - c0])
        pairs_i.append(r0 + ii)
        pairs_j.append(cs + jj)
    return r0, row_max, c0, col_max, (np.concatenate(pairs_i), np.concatenate(pairs_j))


def _delicate_max(data, results, n_rows, n_cols):
    """Row (and, without ``n_cols`` None, column) maxima of the delicate pairs' exact Q."""
    i = np.concatenate([r[4][0] for r in results])
    j = np.concatenate([r[4][1] for r in results])
    row_del = np.zeros(n_rows)
    col_del = None if n_cols is None else np.zeros(n_cols)
    if i.size:
        q = data.delicate(i, j)
        np.maximum.at(row_del, i, q)
        if col_del is not None:
            np.maximum.at(col_del, j, q)
    return row_del, col_del


def lipschitz_max(X, Y, *, metric="euclidean", batch_size=None, n_jobs=None, verbose=0):
    """Q(z) / ||y||_inf, Q(z) = max over z' with another target of |y(z) - y(z')| / d(z, z').

    Each unordered pair is visited once (row and column maxima of the upper block
    triangle). Returns float64, ``inf`` where a duplicate of z has another target.
    """
    n = X.shape[0]
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    data = _LipschitzData(X, Y, None, None, metric)
    tasks = [
        (r0, min(r0 + batch_size, n), c0, c1)
        for r0 in range(0, n, batch_size)
        for c0, c1 in split_span(r0, n, TASK_SPAN * batch_size)
    ]
    tasks.sort(key=lambda t: -(t[1] - t[0]) * (t[3] - t[2]))  # big tasks first
    results = run_tasks(
        _lipschitz_task,
        tasks,
        shared=data.shared(True, batch_size),
        n_jobs=n_jobs,
        verbose=verbose,
        desc="Lipschitz maximum",
    )
    q2 = np.zeros(n)
    for r0, row_max, c0, col_max, _ in results:
        rows = slice(r0, r0 + row_max.shape[0])
        np.maximum(q2[rows], row_max, out=q2[rows])
        np.maximum(q2[c0 : c0 + col_max.shape[0]], col_max, out=q2[c0 : c0 + col_max.shape[0]])
    row_del, col_del = _delicate_max(data, results, n, n)
    return np.maximum(data.to_relative(np.sqrt(q2)), np.maximum(row_del, col_del))


def lipschitz_max_query(
    Q, YQ, X, Y, *, metric="euclidean", batch_size=None, n_jobs=None, verbose=0, exclude=None
):
    """Q_x(t) / ||y||_inf for labelled queries ``(Q, YQ)`` against the reference ``(X, Y)``.

    ``||y||_inf`` is the reference's. ``exclude[q]`` (optional) is a reference index
    that query ``q`` is not compared with (-1 for none), as in :func:`nearest_in_groups`.
    """
    n_q = Q.shape[0]
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    data = _LipschitzData(Q, YQ, X, Y, metric, exclude)
    tasks = [
        (r0, min(r0 + batch_size, n_q), c0, c1)
        for r0 in range(0, n_q, batch_size)
        for c0, c1 in split_span(0, X.shape[0], TASK_SPAN * 2 * batch_size)
    ]
    results = run_tasks(
        _lipschitz_task,
        tasks,
        shared=data.shared(False, 2 * batch_size),
        n_jobs=n_jobs,
        verbose=verbose,
        desc="Lipschitz maximum",
    )
    q2 = np.zeros(n_q)
    for r0, row_max, _, _, _ in results:
        rows = slice(r0, r0 + row_max.shape[0])
        np.maximum(q2[rows], row_max, out=q2[rows])
    row_del, _ = _delicate_max(data, results, n_q, None)
    return np.maximum(data.to_relative(np.sqrt(q2)), row_del)


def regression_targets(y):
    """Return ``y`` as a float64 2-D array and its max norm, which must be positive."""
    Y = np.asarray(y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2:
        raise ValueError(f"Regression targets must be 1-D or 2-D, got shape {Y.shape}.")
    if not np.all(np.isfinite(Y)):
        raise ValueError("Regression targets contain NaN or infinity.")
    # The largest row norm, scaled by a power of two so that it neither overflows nor
    # underflows on the way (inf only where float64 cannot hold the norm itself).
    scale = pow2_scale(np.abs(Y).max(initial=0.0))
    with np.errstate(over="ignore"):
        norm_inf = float(np.sqrt(((Y * scale) ** 2).sum(axis=1)).max()) / scale
    if norm_inf == 0.0:
        raise ValueError(
            "All regression targets are zero (max norm ||y||_inf = 0): sample robustness "
            "R = 1 / (1 + Q / ||y||_inf) is undefined."
        )
    if np.unique(Y, axis=0).shape[0] < 2:
        raise ValueError(
            "Sample robustness needs at least two distinct target values; all targets are "
            f"equal ({Y.shape[0]} sample{'s' if Y.shape[0] != 1 else ''}, one value: "
            "no sample has a differently labelled neighbour)."
        )
    return Y, norm_inf


def robustness_from_q(q):
    """R = 1 / (1 + q) for q = Q / ||y||_inf (what the kernels return); 0 where q is inf."""
    return 1.0 / (1.0 + q)
