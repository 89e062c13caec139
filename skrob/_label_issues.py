"""Confident learning on out-of-sample class probabilities (Northcutt, Jiang & Chuang,
JAIR 2021), the label-issue filter of cleanlab's ``find_label_issues`` with its default
``filter_by="prune_by_noise_rate"``, and the kNN probabilities skrob feeds it.

The probabilities come from each sample's nearest *other* samples, so they are
out-of-sample without folds or a model (leave-one-out kNN), averaged over several
neighbourhood sizes.
"""

import numpy as np

# cleanlab's tolerance when comparing a probability with its class threshold
_TOLERANCE = 1e-6
# the neighbourhood sizes averaged for n_neighbors="auto" (those below the sample count)
K_GRID = (5, 10, 20, 30, 50)


# metrics that commute with translation and scale by powers of two
_EQUIVARIANT = ("euclidean", "l2", "minkowski", "manhattan", "cityblock", "l1", "chebyshev")


# from this many features on, a GEMM dominates the leave-one-out search and skrob's
# float32 triangle (neighbour_order) beats scikit-learn's float64 square
# (benchmarks/bench_label_issues.py --knn); below, selection dominates
_OWN_KERNEL_MIN_FEATURES = 512
# up to this many samples scikit-learn's search runs on one thread
_SMALL = 5000


def nearest_neighbours(X, k, *, metric="euclidean", metric_params=None, cuts=None, n_jobs=None):
    """``(indices, copies)``: every sample's ``k`` nearest *other* samples, nearest first,
    and which of them are exact copies of it (the same feature values). ``cuts``: the
    list lengths whose neighbour *sets* the caller reads (None: the order matters
    everywhere), see :func:`~skrob._search.knn.neighbour_order`.

    Dense Euclidean data with many features go through skrob's own kernel
    (:func:`skrob._search.knn.neighbour_order`: exact float64 order from a float32 GEMM
    over half the pairs); the rest through scikit-learn's ``NearestNeighbors``, dense
    data centred and scaled by powers of two for the equivariant metrics, CSR data scaled
    only, so that distances neither overflow nor cancel on large offsets."""
    import scipy.sparse as sp
    from sklearn.neighbors import NearestNeighbors

    from skrob._search.blocks import resolve_n_jobs
    from skrob._search.exact import centred_unit, pow2_scale
    from skrob._search.knn import neighbour_order

    sparse = sp.issparse(X)
    if (
        not sparse
        and X.shape[1] >= _OWN_KERNEL_MIN_FEATURES
        and _is_euclidean(metric, metric_params)
    ):
        return neighbour_order(X, k, cuts=cuts, n_jobs=n_jobs)
    Z = X
    if sparse:  # scaled by a power of two only: centring would densify it
        Z = X * pow2_scale(abs(X).max() if X.nnz else 0.0)
    elif isinstance(metric, str) and metric in _EQUIVARIANT:
        Z, _ = centred_unit(X)  # float64 chunk by chunk
    # skrob's meaning of n_jobs: None is every core; up to 5,000 samples, starting
    # joblib's threads costs more than the search (wine: 5 ms alone, 20-40 ms threaded)
    jobs = 1 if X.shape[0] <= _SMALL else resolve_n_jobs(n_jobs)
    nn = NearestNeighbors(n_neighbors=k, metric=metric, metric_params=metric_params, n_jobs=jobs)
    nn.fit(Z)
    dist, idx = nn.kneighbors(return_distance=True)  # excludes each sample itself
    # a copy is at distance 0 up to rounding (GEMM Euclidean on entries below 1, 1 − cos,
    # ...); the candidates are checked for equal features
    near = dist <= 1e-6
    copies = np.zeros(idx.shape, dtype=bool)
    if near.any():
        i, j = np.nonzero(near)
        a, b = X[i], X[idx[i, j]]
        copies[i, j] = (
            np.asarray((a != b).sum(axis=1)).ravel() == 0
            if sparse
            else (np.asarray(a) == np.asarray(b)).all(axis=1)
        )
    return idx, copies


def _is_euclidean(metric, metric_params):
    """Whether ``metric`` (with ``metric_params``) is the Euclidean distance."""
    from skrob._search.cdist import ALIASES

    if not isinstance(metric, str):
        return False
    params = dict(metric_params or {})
    if ALIASES.get(metric, metric) == "euclidean":
        return not params
    return metric == "minkowski" and set(params) <= {"p"} and params.get("p", 2) == 2


def copies_last(copies, idx, codes):
    """Neighbour labels with each sample's copies (same features, same label) moved
    behind every other neighbour: a copy is the same observation, not a second opinion,
    and votes only where nothing else is left (stable: the others keep their order).
    ``copies``: which neighbours have the sample's features (:func:`nearest_neighbours`)."""
    labels = codes[idx]
    copies = copies & (labels == codes[:, None])
    if copies.any():
        order = np.argsort(copies, axis=1, kind="stable")
        labels = np.take_along_axis(labels, order, axis=1)
    return labels


def soft_labels(neighbour_codes, k, n_classes, prior):
    """kNN class probabilities from the first ``k`` neighbours, smoothed by one pseudo-count
    spread as the class prior (no class gets probability 0 from a finite sample)."""
    return (vote_counts(neighbour_codes[:, :k], n_classes) + prior[None, :]) / (k + 1.0)


def vote_counts(neighbour_codes, n_classes):
    """(n, n_classes): how many of each row's neighbours carry each class."""
    n, k = neighbour_codes.shape
    flat = (np.arange(n)[:, None] * n_classes + neighbour_codes).ravel()
    return np.bincount(flat, minlength=n * n_classes).reshape(n, n_classes).astype(float)


def multiscale_soft_labels(neighbour_codes, n_classes, prior, grid=K_GRID):
    """The mean of :func:`soft_labels` over every k of ``grid`` (those available): a
    kNN estimate that does not hinge on one k. Near a class boundary the small k see the
    local mix, the large k the prior around it; their mean ranks and thresholds more
    stably than any single k (``benchmarks/bench_label_issues.py``)."""
    k_max = neighbour_codes.shape[1]
    ks = [k for k in grid if k <= k_max] or [k_max]
    return np.mean([soft_labels(neighbour_codes, k, n_classes, prior) for k in ks], axis=0), ks


def _round_preserving_sum(values):
    """Round to integers keeping the (rounded) sum: round each, then move the entries
    rounded furthest the wrong way by one until the sums agree (cleanlab's rule)."""
    floats = np.asarray(values, dtype=float)
    ints = floats.round()
    target = np.sum(floats).round()
    total = np.sum(ints).round()
    while abs(total - target) > _TOLERANCE:
        diff = np.round(target - total)
        step = -1 if diff < 0 else 1
        changes = min(int(abs(diff)), len(floats))
        for i in np.argsort(floats - ints)[::-step][:changes]:
            ints[i] += step
        total = np.sum(ints).round()
    return ints


def _round_preserving_row_totals(M):
    return np.apply_along_axis(_round_preserving_sum, 1, np.asarray(M, float)).astype(int)


def confident_joint(probs, codes, n_classes):
    """The calibrated confident joint ``C[given, true]`` (counts) and the per-class
    thresholds: the mean probability of class j among samples labelled j."""
    counts = np.bincount(codes, minlength=n_classes)
    thresholds = np.array(
        [probs[codes == j, j].mean() if counts[j] else np.inf for j in range(n_classes)]
    )
    confident = probs >= thresholds[None, :] - _TOLERANCE
    n_confident = confident.sum(axis=1)
    # one confident class: it; several: the most probable class overall (as cleanlab)
    true = np.where(n_confident == 1, confident.argmax(axis=1), probs.argmax(axis=1))
    has = n_confident > 0
    C = (
        np.bincount(codes[has] * n_classes + true[has], minlength=n_classes * n_classes)
        .reshape(n_classes, n_classes)
        .astype(float)
    )
    # every class keeps at least one sample confidently its own
    np.fill_diagonal(C, np.maximum(np.diagonal(C), 1))
    # calibrate: each row sums to its label's count, the whole to n
    C = C / np.clip(C.sum(axis=1, keepdims=True), 1e-100, None) * counts[:, None]
    C = C / max(C.sum(), 1e-100) * counts.sum()
    return _round_preserving_row_totals(C), thresholds


def prune_by_noise_rate(probs, codes, n_classes, min_per_class=1):
    """cleanlab's default filter: for every off-diagonal (given i, true j) of the
    confident joint, flag the ``C[i, j]`` samples labelled i with the largest margin
    ``p_j − p_i``; then unflag those whose most probable class is their label."""
    C, _ = confident_joint(probs, codes, n_classes)
    # keep at least min_per_class per class: raise a diagonal that is lower, taking the
    # difference evenly from the non-zero off-diagonals of its row
    P = C.T.astype(float)  # cleanlab's prune-count matrix: [true, given]
    diag = np.diagonal(P).copy()
    new_diag = np.maximum(diag, min_per_class)
    nonzero = np.maximum(np.count_nonzero(P, axis=0) - 1.0, 1.0)
    P = P - (new_diag - diag) / nonzero
    P[P < 0] = 0
    np.fill_diagonal(P, new_diag)
    C = _round_preserving_row_totals(P).T
    issue = np.zeros(len(codes), dtype=bool)
    for i in range(n_classes):
        members = np.flatnonzero(codes == i)
        if members.size <= min_per_class:
            continue
        for j in range(n_classes):
            take = int(C[i, j])
            if j == i or take <= 0:
                continue
            margin = probs[members, j] - probs[members, i]
            issue[members[np.argsort(-margin)[:take]]] = True
    bonus = probs.copy()
    bonus[np.arange(len(codes)), codes] += _TOLERANCE
    issue &= bonus.argmax(axis=1) != codes
    return issue
