"""Block tasks and their runner (joblib, BLAS thread limits, tqdm), and block reductions."""

from contextlib import nullcontext

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

DEFAULT_BATCH_SIZE = 2048  # samples per block of the exact kernels


def run_tasks(func, tasks, *, n_jobs=None, verbose=0, desc=""):
    """Run ``func(*task)`` for every task, through joblib when ``n_jobs`` asks for it."""
    sequential = n_jobs in (None, 1) or len(tasks) <= 1
    # With joblib, one BLAS thread per job, so that jobs do not oversubscribe the cores;
    # a process-based or distributed backend limits its own workers.
    blas = nullcontext() if sequential else threadpool_limits(limits=1, user_api="blas")
    progress = None
    if verbose:
        from tqdm.auto import tqdm

        progress = tqdm(total=len(tasks), desc=desc, unit="block")
    try:
        with blas:
            if sequential:
                outputs = (func(*task) for task in tasks)
            else:
                parallel = Parallel(
                    n_jobs=n_jobs, prefer="threads", return_as="generator_unordered"
                )
                outputs = parallel(delayed(func)(*task) for task in tasks)
            results = []
            for result in outputs:
                results.append(result)
                if progress is not None:
                    progress.update()
        return results
    finally:
        if progress is not None:
            progress.close()


def run_candidates(func, tasks, *, n_jobs, verbose, desc):
    """Run the block tasks; concatenate their candidate pairs ``(i, j, value)``."""
    results = run_tasks(func, tasks, n_jobs=n_jobs, verbose=verbose, desc=desc)
    return tuple(concat(results, k) for k in range(3))


def concat(results, k):
    parts = [r[k] for r in results if len(r[k])]
    if not parts:
        return np.empty(0, dtype=results[0][k].dtype if results else np.float64)
    return np.concatenate(parts)


def reduce_min(keys, values, n_keys, partners):
    """Per key, the smallest value and the partner index that attains it (-1 when none)."""
    best = np.full(n_keys, np.inf)
    arg = np.full(n_keys, -1, dtype=np.intp)
    if keys.size:
        order = np.lexsort((values, keys))
        k_sorted = keys[order]
        first = np.ones(k_sorted.shape[0], dtype=bool)
        first[1:] = k_sorted[1:] != k_sorted[:-1]
        sel = order[first]
        best[keys[sel]] = values[sel]
        arg[keys[sel]] = partners[sel]
    return best, arg


def class_ranges(codes_sorted, n_classes):
    bounds = np.searchsorted(codes_sorted, np.arange(n_classes + 1))
    return bounds


def mask_self(D, self_col, cs, value):
    """Set ``D[r, self_col[r] - cs]`` to ``value`` where that column is in the block."""
    if self_col is None:
        return
    r = np.flatnonzero((self_col >= cs) & (self_col < cs + D.shape[1]))
    D[r, self_col[r] - cs] = value


def sorted_positions(order, exclude):
    """Where each excluded reference index sits after sorting by ``order`` (-1: none)."""
    if exclude is None:
        return None
    position = np.empty(order.size + 1, dtype=np.intp)
    position[order] = np.arange(order.size)
    position[-1] = -1
    return position[exclude]
