"""The inverted-list backend: class-pure k-means lists, probed by the other classes.

Every class is cut by k-means into lists of about ``list_size`` samples. Each sample
probes the ``nprobe`` list centres nearest to it *among the other classes' lists*, so
every list it scans holds only differently labelled samples. The samples probing a list
are scored against its members by one float32 GEMM (the augmented, scaled layout of
:class:`skrob._search.euclidean.EuclideanData`, with its error bounds), and the candidates
within the bound of each sample's best are re-scored exactly in float64. Every returned
distance is therefore that of a real differently labelled sample: an upper bound on the
exact reach, equal to it whenever the nearest one lies in a probed list (recall@1 is
measured in benchmarks/bench_sample_robustness.py).

The cost is ``n * nprobe * list_size * d`` for the scans plus k-means, linear in n at a
fixed list size, against the exact kernel's ``n^2 d / 2``.
"""

import math
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.utils import check_random_state

from skrob._search.blocks import run_tasks
from skrob._search.euclidean import EuclideanData, _row_candidates, refine, row_layout

# Samples per list: the k-means of each class has ceil(n_class / LIST_SIZE) centres.
LIST_SIZE = 128

# Lloyd iterations of each class's k-means: lists need not be optimal, only compact.
_KMEANS_ITER = 10

# Training samples of each class's k-means, per list.
_TRAIN_PER_LIST = 32

# Rows per block of the probe (samples against every list centre).
_PROBE_BLOCK = 4096

# Lists per task of the scan.
_LISTS_PER_TASK = 32


def _nearest_centre(rows, centres):
    """Index of each row's nearest centre (one float32 GEMM)."""
    D = rows @ centres.T
    D *= np.float32(-2.0)
    D += np.einsum("ij,ij->i", centres, centres)
    return D.argmin(axis=1)


def _lists(body, codes, n_classes, list_size, rng):
    """k-means lists of every class: (centres, class of each list, list of each sample).

    As an IVF index is trained: k-means (random start, ``_KMEANS_ITER`` Lloyd steps)
    on at most ``_TRAIN_PER_LIST`` samples per list of the class, then every member
    assigned to its nearest centre.
    """
    centres, list_class = [], []
    labels = np.empty(body.shape[0], dtype=np.intp)
    for k in range(n_classes):
        members = np.flatnonzero(codes == k)
        n_lists = math.ceil(members.size / list_size)
        if n_lists == 0:
            continue
        if n_lists == 1:
            local, found = np.zeros(members.size, dtype=np.intp), body[members].mean(axis=0)[None]
        else:
            train = members
            if members.size > _TRAIN_PER_LIST * n_lists:
                train = np.sort(rng.choice(members, _TRAIN_PER_LIST * n_lists, replace=False))
            found = (
                KMeans(
                    n_lists,
                    init="random",  # k-means++ measured 20x slower for 3 % less inertia
                    n_init=1,
                    max_iter=_KMEANS_ITER,
                    random_state=rng.randint(np.iinfo(np.int32).max),
                )
                .fit(body[train])
                .cluster_centers_.astype(np.float32)
            )
            local = np.concatenate(
                [
                    _nearest_centre(body[members[s : s + _PROBE_BLOCK]], found)
                    for s in range(0, members.size, _PROBE_BLOCK)
                ]
            )
        # A centre without members is no list: keep only the used ones.
        used, local = np.unique(local, return_inverse=True)
        labels[members] = len(list_class) + local
        centres.append(found[used])
        list_class.extend([k] * used.size)
    return np.vstack(centres).astype(np.float32), np.asarray(list_class), labels


def _probe_task(body, codes, centres, c_sq, list_class, nprobe, s, e):
    """The ``nprobe`` nearest other-class lists of samples ``[s, e)``: (sample, list) pairs."""
    D = body[s:e] @ centres.T
    D *= np.float32(-2.0)
    D += c_sq
    D[codes[s:e, None] == list_class[None, :]] = np.inf  # own class: never probed
    near = np.argpartition(D, nprobe - 1, axis=1)[:, :nprobe]
    ok = np.isfinite(np.take_along_axis(D, near, axis=1))
    rows = np.broadcast_to(np.arange(s, e)[:, None], near.shape)
    return rows[ok], near[ok]


def _probe(body, codes, centres, list_class, nprobe, n_jobs):
    """The ``nprobe`` nearest other-class lists of every sample, as (sample, list) pairs."""
    n = body.shape[0]
    nprobe = min(nprobe, centres.shape[0])
    c_sq = np.einsum("ij,ij->i", centres, centres)
    tasks = [(s, min(s + _PROBE_BLOCK, n)) for s in range(0, n, _PROBE_BLOCK)]
    results = run_tasks(
        _probe_task,
        tasks,
        shared=(body, codes, centres, c_sq, list_class, nprobe),
        n_jobs=n_jobs,
    )
    return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])


def _scan_task(B, tol, member_ptr, members, probe_ptr, probers, l0, l1):
    """Candidates of lists ``[l0, l1)``: each prober's best member and any within bound."""
    out = []
    for lst in range(l0, l1):
        q = probers[probe_ptr[lst] : probe_ptr[lst + 1]]
        mem = members[member_ptr[lst] : member_ptr[lst + 1]]
        if q.size == 0 or mem.size == 0:
            continue
        # the probers in the column layout as they are, the few members in the row
        # layout (the same values: the formula is symmetric); row_layout on the probers
        # cost 3x the GEMM in copies
        D = B[q] @ row_layout(B[mem]).T
        local = []
        _row_candidates(D, np.full(q.size, np.inf, np.float32), tol[q], 0, 0, local)
        for i, j, v in local:
            out.append((q[i], mem[j], v))
    if not out:
        return np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0, np.float32)
    return tuple(np.concatenate([o[k] for o in out]) for k in range(3))


def ivf_nearest_other_label(
    X,
    codes,
    *,
    nprobe=48,
    list_size=LIST_SIZE,
    random_state=None,
    n_jobs=None,
    verbose=0,
    steps=None,
):
    """Approximate :func:`skrob._search.neighbors.nearest_other_label` by class-pure inverted lists.

    Returns ``(reach, partner)``: float64 distances, each exact for its partner (a
    differently labelled sample), at least the exact reach. ``steps`` (a dict, for the
    benchmarks) receives each step's seconds and the scan's flop count.
    """
    clock = _Clock(steps)
    rng = check_random_state(random_state)
    n = X.shape[0]
    n_classes = int(codes.max()) + 1
    data = EuclideanData(X, None, None, None)
    B = data.B
    body = B[:, :-2]
    clock("layout")
    centres, list_class, labels = _lists(body, codes, n_classes, list_size, rng)
    n_lists = centres.shape[0]
    members = np.argsort(labels, kind="stable")
    member_ptr = np.searchsorted(labels[members], np.arange(n_lists + 1))
    clock("k-means")
    q, lst = _probe(body, codes, centres, list_class, nprobe, n_jobs)
    # numpy sorts 16-bit keys by radix: about 3x faster than a stable sort of intp keys
    key = lst.astype(np.uint16) if n_lists <= np.iinfo(np.uint16).max + 1 else lst
    by_list = np.argsort(key, kind="stable")
    probers = q[by_list]
    probe_ptr = np.searchsorted(lst[by_list], np.arange(n_lists + 1))
    del q, lst, by_list
    clock("probe")
    tasks = [(l0, min(l0 + _LISTS_PER_TASK, n_lists)) for l0 in range(0, n_lists, _LISTS_PER_TASK)]
    results = run_tasks(
        _scan_task,
        tasks,
        shared=(B, data.tolA, member_ptr, members, probe_ptr, probers),
        n_jobs=n_jobs,
        verbose=verbose,
        desc="inverted lists",
    )
    i, j, v = (np.concatenate([r[k] for r in results]) for k in range(3))
    clock("scan")
    found = refine(data, i, j, v, data.tolA, i, n)
    clock("re-scoring")
    if steps is not None:
        pairs = np.diff(probe_ptr) @ np.diff(member_ptr)
        steps["scan flop"] = 2.0 * B.shape[1] * float(pairs)
    return found


class _Clock:
    """``clock(name)`` adds the seconds since the last call to ``steps[name]``."""

    def __init__(self, steps):
        self.steps, self.last = steps, time.perf_counter()

    def __call__(self, name):
        if self.steps is not None:
            now = time.perf_counter()
            self.steps[name] = now - self.last
            self.last = now
