"""The approximate backend: one pynndescent index per class (imported lazily).

pynndescent compiles with numba on its first use in a process, so it is imported only
on this path.
"""

import numpy as np

from skrob._progress import progress_bar
from skrob._search.cdist import CdistMetric, paired_cdist
from skrob._search.exact import exact_dist, max_abs, pow2_scale, scaled_mean, scaled_norms

# pynndescent query: neighbours kept and search frontier (see approximate_nearest_other_label)
_QUERY_K = 10

_QUERY_EPSILON = 0.2


# scipy's cdist names that pynndescent spells differently
_PYNNDESCENT_NAMES = {"cityblock": "manhattan", "jensenshannon": "jensen_shannon"}


def _pynndescent_metric(name):
    """The pynndescent name of a scipy metric, or an error saying to use the exact path."""
    from pynndescent.distances import named_distances

    name = _PYNNDESCENT_NAMES.get(name, name)
    if name not in named_distances:
        raise ValueError(
            f"algorithm='approximate' (pynndescent) does not know metric={name!r}; use "
            "algorithm='exact', which takes every scipy cdist metric."
        )
    return name


def _rescore(X, rows, cand, metric):
    """Float64 distance of each ``rows[a]`` to its nearest candidate among ``cand[a]``
    (n, k): ``(distance, partner)``."""
    n, k = cand.shape
    flat_rows = np.repeat(rows, k)
    flat = cand.ravel()
    if metric == "euclidean":
        d = exact_dist(X, X, flat_rows, flat).reshape(n, k)
    else:
        d = paired_cdist(X, X, flat_rows, flat, metric).reshape(n, k)
    pick = d.argmin(axis=1)
    return d[np.arange(n), pick], cand[np.arange(n), pick]


def approximate_nearest_other_label(
    X, codes, *, metric="euclidean", n_neighbors=30, random_state=None, n_jobs=None, verbose=0
):
    """Approximate :func:`nearest_other_label` with one pynndescent index per class.

    Every sample queries the index of every other class for its nearest member, so the
    search can never miss *all* differently labelled neighbours: each returned distance
    is that of a real differently labelled sample (re-scored exactly in float64), an
    upper bound on the exact reach. pynndescent is imported here, lazily: it compiles
    with numba on first use in a process.
    """
    from pynndescent import NNDescent

    X = np.asarray(X, dtype=np.float64)
    if metric == "euclidean":
        name, kwds = "euclidean", None
    elif isinstance(metric, CdistMetric) and metric.name is not None:
        name, kwds = metric.name, metric.params or None
    elif isinstance(metric, str):
        name, kwds = metric, None
    else:
        raise ValueError(
            "algorithm='approximate' needs a metric name pynndescent knows, not a callable; "
            "use algorithm='exact'."
        )
    name = _pynndescent_metric(name)
    # Centred and scaled by powers of two, so that float32 holds any finite input; the
    # distances returned are re-scored on X itself.
    g = pow2_scale(max_abs(X))
    center = scaled_mean(X, g)
    h = pow2_scale(scaled_norms(X, g, center).max(initial=0.0))
    X32 = ((X * g - center) * h).astype(np.float32) if metric == "euclidean" else X
    if metric != "euclidean":  # other metrics need not scale with X: only clip to float32
        with np.errstate(over="ignore"):
            X32 = X.astype(np.float32)
        if not np.isfinite(X32).all():
            raise ValueError(
                f"algorithm='approximate' with metric={metric!r} needs features within "
                "float32's range (|x| < 3.4e38); use algorithm='exact'."
            )
    n = X.shape[0]
    n_classes = int(codes.max()) + 1
    best = np.full(n, np.inf)
    partner = np.full(n, -1, dtype=np.intp)
    classes = progress_bar(
        verbose, n_classes, "pynndescent indexes", unit="class", iterable=range(n_classes)
    )
    for k in classes:
        members = np.flatnonzero(codes == k)
        others = np.flatnonzero(codes != k)
        if members.size == 0 or others.size == 0:
            continue
        if members.size == 1:
            cand = np.full((others.size, 1), members[0])
        else:
            index = NNDescent(
                X32[members],
                metric=name,
                metric_kwds=kwds,
                n_neighbors=min(n_neighbors, members.size - 1),
                random_state=random_state,
                n_jobs=-1 if n_jobs is None else n_jobs,
                low_memory=True,
                compressed=False,
            )
            # k=1 queries miss often (recall ~0.5 measured); the search keeps a few and
            # widens its frontier (epsilon) for recall >= 0.98 on hard synthetic data.
            nn, _ = index.query(X32[others], k=min(_QUERY_K, members.size), epsilon=_QUERY_EPSILON)
            cand = members[nn]
        # Re-score every candidate in float64 (pynndescent ranks in float32): each
        # distance is that of a real pair, exact to rounding, never below the true reach.
        d, j = _rescore(X, others, cand, metric)
        better = d < best[others]
        best[others[better]] = d[better]
        partner[others[better]] = j[better]
    return best, partner
