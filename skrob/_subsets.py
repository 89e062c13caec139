"""Subset arithmetic: how many to keep, the most or least robust, bins and aligned counts.

And the selection strategies of :class:`skrob.RobustSubsetSelector`, one function each
behind one table (:data:`STRATEGIES`): ``strategy(robustness, y, params, rng) ->
ascending indices``.
"""

from numbers import Integral

import numpy as np

SUBSETS = ("least", "most")


def n_to_keep(fraction, n_samples):
    """Number of samples that ``fraction`` (a share in (0, 1] or a count) keeps of ``n_samples``."""
    if isinstance(fraction, Integral):
        if fraction > n_samples:
            raise ValueError(f"Cannot keep {fraction} samples of {n_samples}.")
        return int(fraction)
    return max(1, int(round(fraction * n_samples)))


def extreme_indices(robustness, k, subset):
    """Indices of the ``k`` least or most robust samples, ascending.

    Ties are broken by position (a stable sort), so the choice is deterministic.
    """
    robustness = np.asarray(robustness)
    key = robustness if subset == "least" else -robustness
    return np.sort(np.argsort(key, kind="stable")[:k])


def subset_indices(robustness, subset, fraction):
    """Indices of the ``subset`` ("least", "most" or "all") part of a robustness vector."""
    n = robustness.shape[0]
    if subset == "all":
        return np.arange(n)
    return extreme_indices(robustness, n_to_keep(fraction, n), subset)


def shared_bins(robustness, target_robustness, n_bins):
    """Bin index of every value of both vectors, over ``n_bins`` equal bins of their union."""
    lo = min(robustness.min(), target_robustness.min())
    hi = max(robustness.max(), target_robustness.max())
    inner_edges = np.linspace(lo, hi, n_bins + 1)[1:-1]
    return (
        np.searchsorted(inner_edges, robustness, side="right"),
        np.searchsorted(inner_edges, target_robustness, side="right"),
    )


def aligned_counts(counts, target_counts, chunk=4096):
    """Largest per-bin counts ``k <= counts`` proportional to ``target_counts``.

    Proportional means the quota rule: with ``K = k.sum()`` and ``T = target_counts.sum()``,
    every ``k_b`` is ``K t_b / T`` rounded down or up (exactly that value when it is an
    integer). ``K`` is feasible when no bin's floor exceeds what the bin has and the bins
    can still take ``K`` samples with their ceilings; the largest feasible ``K`` is found
    by scanning down from an exact integer upper bound, a chunk of candidates at a time.
    Leftover samples go to the bins with the largest remainders (Hamilton's method).
    """
    counts = np.asarray(counts, dtype=np.int64)
    target_counts = np.asarray(target_counts, dtype=np.int64)
    T = int(target_counts.sum())
    occupied = target_counts > 0
    # floor(K t_b / T) <= c_b  <=>  K t_b < (c_b + 1) T  <=>  K <= ((c_b + 1) T - 1) // t_b
    bound = ((counts[occupied] + 1) * T - 1) // target_counts[occupied]
    top = int(min(counts.sum(), bound.min()))
    K = 0
    for start in range(top, -1, -chunk):
        cand = np.arange(start, max(start - chunk, -1), -1, dtype=np.int64)[:, None]
        ceil = -((-cand * target_counts) // T)
        feasible = np.minimum(counts, ceil).sum(axis=1) >= cand[:, 0]
        if feasible.any():
            K = int(cand[np.argmax(feasible), 0])
            break
    k = (K * target_counts) // T
    remainder = K * target_counts - k * T
    spare = (k < counts) & (remainder > 0)
    order = np.argsort(-np.where(spare, remainder, -1), kind="stable")
    k[order[: K - int(k.sum())]] += 1
    return k


def _extreme(robustness, y, params, rng):
    n_keep = n_to_keep(params.fraction, robustness.shape[0])
    return extreme_indices(robustness, n_keep, params.strategy)


def _at_least(robustness, y, params, rng):
    return np.flatnonzero(robustness >= params.cut)


def _align(robustness, y, params, rng):
    train_bin, target_bin = shared_bins(robustness, params.target_robustness, params.n_bins)
    counts = np.bincount(train_bin, minlength=params.n_bins)
    keep = aligned_counts(counts, np.bincount(target_bin, minlength=params.n_bins))
    chosen = [
        rng.choice(np.flatnonzero(train_bin == b), size=k, replace=False)
        for b, k in enumerate(keep)
        if k
    ]
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.intp)


# strategy -> function(robustness, y, params, rng); "rpr" keeps the RPR-robust samples
# (robustness = steps / max_steps = 1), "threshold" those at or above the threshold.
STRATEGIES = {
    "most": _extreme,
    "least": _extreme,
    "threshold": _at_least,
    "rpr": _at_least,
    "align": _align,
}


def class_balanced_indices(robustness, y, params, rng, plain=lambda v: v):
    """The same number of samples of every class: the most/least robust of each class, or
    a random draw among each class's qualifying samples ("threshold", "rpr")."""
    classes, codes = np.unique(y, return_inverse=True)
    members = [np.flatnonzero(codes == c) for c in range(classes.size)]
    per_class = None if params.class_balanced is True else int(params.class_balanced)
    extreme = params.strategy in SUBSETS
    if extreme:
        pools = members
        if per_class is None:
            n_keep = n_to_keep(params.fraction, y.shape[0])
            per_class = min(n_keep // classes.size, min(map(len, members)))
    else:
        pools = [m[robustness[m] >= params.cut] for m in members]
        if per_class is None:
            per_class = min(map(len, pools))
    short = [(c, len(p)) for c, p in zip(classes, pools, strict=True) if len(p) < per_class]
    if short:
        raise ValueError(
            f"class_balanced={params.class_balanced!r} needs {per_class} samples of every "
            f"class; class {plain(short[0][0])!r} has only {short[0][1]}."
        )
    if extreme:
        chosen = [m[extreme_indices(robustness[m], per_class, params.strategy)] for m in pools]
    else:
        chosen = [rng.choice(p, size=per_class, replace=False) for p in pools]
    return np.sort(np.concatenate(chosen))
