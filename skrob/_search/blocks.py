"""Block tasks and their runner (joblib, BLAS thread limits, tqdm), and block reductions."""

from contextlib import nullcontext
from numbers import Integral

import numpy as np
from joblib import Parallel, delayed
from joblib.parallel import get_active_backend
from threadpoolctl import threadpool_limits

from skrob._progress import progress_bar

DEFAULT_BATCH_SIZE = 2048  # samples per block of the exact kernels

# A task scans at most this many batches of columns: enough tasks for every worker of a
# cluster (n = 80,000 gives ~90), each seconds of GEMM at d = 784.
TASK_SPAN = 8


def resolve_n_jobs(n_jobs):
    """``n_jobs``, with None resolved: the active ``joblib.parallel_config``'s ``n_jobs``
    when one sets it, else -1 (every core, or every worker of a Dask cluster)."""
    if n_jobs is not None:
        return n_jobs
    _, context_n_jobs = get_active_backend()
    return context_n_jobs if isinstance(context_n_jobs, Integral) else -1


def run_tasks(func, tasks, *, shared=(), n_jobs=None, verbose=0, desc="", consume=None):
    """Run ``func(*shared, *task)`` for every task, through joblib unless ``n_jobs`` is 1.

    The results come back as a list, in no set order, or each goes to ``consume`` as it
    arrives (and the list stays empty: one result held at a time, not all).

    ``func`` is a module-level function and ``shared`` the arrays every task reads, passed
    as arguments, not inside a closure: a process backend (loky) memory-maps them and
    Dask's joblib backend scatters them once per call (each worker fetches them once),
    instead of pickling them with every task. ``n_jobs=None`` uses every core
    (:func:`resolve_n_jobs`); threads run with one BLAS thread each.
    """
    n_jobs = resolve_n_jobs(n_jobs)
    sequential = n_jobs == 1 or len(tasks) <= 1
    if not sequential:
        shared = _replicate_on_dask(shared)
    # With joblib, one BLAS thread per job, so that jobs do not oversubscribe the cores;
    # a process-based or distributed backend limits its own workers.
    blas = nullcontext() if sequential else threadpool_limits(limits=1, user_api="blas")
    progress = progress_bar(verbose, len(tasks), desc, unit="block")
    try:
        with blas:
            if sequential:
                outputs = (func(*shared, *task) for task in tasks)
            else:
                parallel = Parallel(
                    n_jobs=n_jobs, prefer="threads", return_as="generator_unordered"
                )
                outputs = parallel(delayed(func)(*shared, *task) for task in tasks)
            results = []
            for result in outputs:
                if consume is None:
                    results.append(result)
                else:
                    consume(result)
                progress.update()
        return results
    finally:
        progress.close()


def _replicate_on_dask(shared):
    """On joblib's Dask backend, the large arrays scattered to every worker up front.

    joblib would scatter them to one worker, and the scheduler, which prefers to run a
    task where its data are, would keep the others idle until it steals work; copied to
    all first (``Client.replicate``, worker to worker), every worker starts at once.
    Dask resolves the futures into the arrays in each task.
    """
    backend, _ = get_active_backend()
    client = getattr(backend, "client", None)
    if client is None or type(backend).__name__ != "DaskDistributedBackend":
        return shared
    arrays = {}  # id -> array: an array passed twice (rows = columns) travels once
    for a in shared:
        if isinstance(a, np.ndarray) and a.nbytes > 2**20:
            arrays.setdefault(id(a), a)
    if not arrays:
        return shared
    futures = dict(zip(arrays, client.scatter(list(arrays.values()), hash=False), strict=True))
    client.replicate(list(futures.values()))
    return tuple(futures.get(id(a), a) for a in shared)


def run_candidates(func, tasks, *, shared=(), n_jobs, verbose, desc):
    """Run the block tasks; concatenate their candidate pairs ``(i, j, value)``."""
    results = run_tasks(func, tasks, shared=shared, n_jobs=n_jobs, verbose=verbose, desc=desc)
    return tuple(concat(results, k) for k in range(3))


def deal(weights, n_bins):
    """Indices of ``weights`` dealt into at most ``n_bins`` non-empty bins, the heaviest
    first, each to the bin with the least weight so far (one task per worker)."""
    weights = np.asarray(weights, dtype=float)
    bins, load = [[] for _ in range(max(1, n_bins))], np.zeros(max(1, n_bins))
    for i in np.argsort(-weights, kind="stable"):
        b = int(np.argmin(load))
        bins[b].append(int(i))
        load[b] += weights[i]
    return [b for b in bins if b]


def split_span(c0, c1, span):
    """``[c0, c1)`` cut into consecutive pieces of at most ``span`` (none when empty)."""
    return [(s, min(s + span, c1)) for s in range(c0, c1, span)]


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


def pair_tolerance(na, nb, c):
    """``c (|a| + |b|)² + 2**-1000``: each pair's bound on the rounding of a GEMM value
    ``|a|² + |b|² - 2 a·b`` (the last term covers underflow; norms at most 1)."""
    return pair_tolerance_at(na[:, None], nb[None, :], c)


def pair_tolerance_at(na, nb, c):
    """:func:`pair_tolerance` of the pairs of norms ``na``, ``nb`` (arrays that
    broadcast). It grows with either norm (every step rounds monotonically), so a row's
    largest bound is the one at the largest ``nb``."""
    tol = na + nb
    tol *= tol
    tol *= c
    tol += 2.0**-1000
    return tol


def bounded_candidates(block, blocks, n_rows, n_groups):
    """The pairs that can be a (row, group)'s nearest, from values known up to a bound.

    ``blocks`` are ``(r0, r1, group, c0, c1)`` and ``block(r0, r1, c0, c1)`` returns the
    values and their bounds ``(D, tol)``, ``inf`` for a masked pair. A first pass takes
    each (row, group)'s smallest upper bound; the second keeps every pair whose lower
    bound is below it. Returns the rows and the (block) columns of the kept pairs.
    """
    upper = np.full((n_rows, n_groups), np.inf)
    for r0, r1, grp, c0, c1 in blocks:
        D, tol = block(r0, r1, c0, c1)
        np.minimum(upper[r0:r1, grp], (D + tol).min(axis=1), out=upper[r0:r1, grp])
    rows, cols = [np.empty(0, np.intp)], [np.empty(0, np.intp)]
    for r0, r1, grp, c0, c1 in blocks:
        D, tol = block(r0, r1, c0, c1)
        ii, jj = np.nonzero((D - tol <= upper[r0:r1, grp, None]) & np.isfinite(D))
        rows.append(r0 + ii)
        cols.append(c0 + jj)
    return np.concatenate(rows), np.concatenate(cols)
