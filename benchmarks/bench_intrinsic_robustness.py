"""IntrinsicRobustnessEstimator against the reference code's search, in one run.

The baseline follows the reference code of Zhang & Evans (github.com/xiaozhanguva/
intrinsic_rob_lu, concentration_lu_ball.py) in numpy: in every round, for every centre,
the distances to the uncovered and to the unreached samples are computed, and for every
candidate size s the radius, the covered and reached counts and the covered samples' mean
label uncertainty are recomputed by comparisons over all samples. skrob sorts each
centre's distances once and answers every (centre, s) with a searchsorted and a cumulative
sum. Both must place the same regions.

Data: a random subset of Fashion-MNIST (falls back to scikit-learn's digits), kNN soft
labels (k = 10), alpha = 0.05, gamma = 0.17, epsilon = 1.0 (L2), 5 regions.

    python benchmarks/bench_intrinsic_robustness.py [--n-samples 5000] [--n-large 10000]

``--paper-size`` instead fits the estimator on all 60,000 Fashion-MNIST training images
(30,000 per half) over the ε-grid and gammas of examples/plot_intrinsic_robustness.py,
and prints the wall time and the process's peak memory (``ru_maxrss``), against the
O(n^2) distance matrix the previous version held:

    python benchmarks/bench_intrinsic_robustness.py --paper-size [--norms 2 inf] [--max-budgets N]

``--linf-lists`` times the L∞ neighbour lists of the paper-size placing half (30,000
images, alpha = 0.15) from the compiled Chebyshev kernel and from scipy's ``cdist``
(the previous blocks), in one run, checks that both lists are the same and prints the
ratio:

    python benchmarks/bench_intrinsic_robustness.py --linf-lists [--n-half 30000]

``--read`` places three L2 regions on the same half (alpha = 0.15, epsilon = 2,
gamma = 0.17), each round read off the lists by the compiled pass and by the previous
vectorised reading (tests/_reference.py), checks that both find the same region and
prints both times:

    python benchmarks/bench_intrinsic_robustness.py --read [--read-epsilon 2.0] [--n-half 30000]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: tests/

from skrob import IntrinsicRobustnessEstimator, knn_soft_labels, label_uncertainty
from tests._reference import brute_force_regions

parser = argparse.ArgumentParser()
parser.add_argument("--n-samples", type=int, default=5000, help="both methods")
parser.add_argument("--n-large", type=int, default=10000, help="skrob alone")
parser.add_argument("--paper-size", action="store_true", help="60,000 images, the example's grid")
parser.add_argument("--norms", nargs="+", default=["2", "inf"], help="with --paper-size")
parser.add_argument("--alpha", type=float, default=0.15, help="with --paper-size")
parser.add_argument(
    "--max-budgets", type=int, default=None, help="with --paper-size: the first N budgets per norm"
)
parser.add_argument(
    "--float64", action="store_true", help="with --paper-size: a float64 copy of X (as before)"
)
parser.add_argument("--linf-lists", action="store_true", help="L-inf lists: kernel vs cdist")
parser.add_argument("--read", action="store_true", help="L2 rounds: compiled vs vectorised")
parser.add_argument("--read-epsilon", type=float, default=2.0, help="with --read")
parser.add_argument("--n-half", type=int, default=30000, help="with --linf-lists, --read")
args = parser.parse_args()
EPS, ALPHA, GAMMA, N_REGIONS, DELTA = 1.0, 0.05, 0.17, 5, 0.05

rng = np.random.default_rng(0)


def paper_size():
    """All training images, the example's budgets and gammas; time and peak memory."""
    import resource
    import warnings

    from skrob.datasets import load_fashion_mnist

    X, y = load_fashion_mnist(subset="train", return_X_y=True)  # float32, as loaded
    if args.float64:
        X = X.astype(np.float64)
    t0 = time.perf_counter()
    lu = label_uncertainty(knn_soft_labels(X, y, 10), y)
    print(f"Fashion-MNIST train, {len(y):,} images; kNN label uncertainty (k = 10): "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
    budgets = {
        "2": (2, [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0]),
        "inf": (np.inf, [0.0, 0.02, 0.05, 0.1, 0.15, 0.2]),
    }
    total = time.perf_counter()
    for key in args.norms:
        norm, epsilons = budgets[key]
        epsilons = epsilons[: args.max_budgets]
        t_norm = time.perf_counter()
        for eps in epsilons:
            row = []
            for gamma in (0.0, 0.17, 1.0):
                est = IntrinsicRobustnessEstimator(
                    eps, alpha=args.alpha, gamma=gamma, norm=norm, random_state=0
                )
                t = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    est.fit(X, lu)
                row.append(f"gamma={gamma}: IR {est.intrinsic_robustness_:.4f} "
                           f"({time.perf_counter() - t:5.1f} s)")  # fmt: skip
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
            print(f"  L{key} eps={eps:<5}", "; ".join(row), f"[peak so far {peak:.2f} GiB]")
        elapsed = time.perf_counter() - t_norm
        target = f" ({elapsed / 600:.2f} of issue 28's 10 minutes)" if key == "2" else ""
        print(f"  L{key}: {elapsed:.1f} s for {3 * len(epsilons)} fits{target}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    n_half = len(y) // 2
    matrix = n_half**2 * 8 / 2**30
    print(f"total {time.perf_counter() - total:.1f} s; peak memory of the process {peak:.2f} "
          f"GiB = {peak * 2**30 / 1e9:.2f} GB ({peak * 2**30 / 2e9:.2f} of issue 28's 2 GB; "
          f"an n_half x n_half float64 matrix alone: {matrix:.1f} GiB)")  # fmt: skip


def linf_lists():
    """The L∞ neighbour lists of the placing half, from the kernel and from cdist."""
    import math
    from unittest import mock

    from scipy.spatial.distance import cdist

    from skrob import _concentration
    from skrob._search.exact import centred_unit
    from skrob.datasets import load_fashion_mnist

    X, _ = load_fashion_mnist(subset="train", return_X_y=True)
    half = np.sort(np.random.default_rng(0).permutation(len(X))[: args.n_half])
    Xa = centred_unit(X[half].astype(np.float64))[0]
    k = math.ceil(len(half) * args.alpha * (1 + DELTA)) + 1 + _concentration._SPARE
    print(f"L-inf neighbour lists of {len(half):,} Fashion-MNIST images, {k} each, every core")
    _concentration.chebyshev(Xa[:16], Xa[:16])  # compile outside the timing (under 1 s)
    ours, t_ours = timed(_concentration.neighbour_lists, Xa, k, np.inf)
    print(f"  compiled Chebyshev kernel: {t_ours:7.1f} s")
    with mock.patch.object(_concentration, "chebyshev", lambda A, B: cdist(A, B, "chebyshev")):
        base, t_base = timed(_concentration.neighbour_lists, Xa, k, np.inf)
    print(f"  scipy cdist blocks       : {t_base:7.1f} s")
    same = all(
        np.array_equal(getattr(ours, f), getattr(base, f))
        for f in ("dist", "index", "tau", "beyond", "profile")
    )
    print(f"  cdist / kernel: {t_base / t_ours:.2f}x; the same lists: {same}")
    assert same


def read_rounds():
    """Three rounds of the paper-size L2 placement, each read off the lists by the
    compiled pass and by the previous vectorised reading (numpy arrays of every (centre,
    size) pair, tests/_reference.py), in one run: the same regions, both times."""
    import functools
    import math
    from unittest import mock

    from skrob import _concentration
    from skrob._search.blocks import run_tasks
    from skrob._search.exact import centred_unit
    from skrob.datasets import load_fashion_mnist
    from tests._reference import read_rows_vectorised

    X, y = load_fashion_mnist(subset="train", return_X_y=True)
    lu = label_uncertainty(knn_soft_labels(X, y, 10), y)
    half = np.sort(np.random.default_rng(0).permutation(len(X))[: args.n_half])
    Xa, lua = centred_unit(X[half].astype(np.float64))[0], lu[half]
    del X
    n, eps, gamma = len(half), args.read_epsilon, 0.17
    target = math.ceil(n * args.alpha * (1 + DELTA))
    k = target + 1 + _concentration._SPARE
    lists, t_lists = timed(_concentration.neighbour_lists, Xa, k, 2)
    print(f"L2 neighbour lists of {n:,} Fashion-MNIST images ({k} each): {t_lists:.1f} s; "
          f"epsilon={eps}, gamma={gamma}, alpha={args.alpha}, 5 regions")  # fmt: skip

    def vectorised(high, low, far, index, tau, beyond, ranks, profile, *a):
        """The previous _read_list_rows: every pair's arrays, then per-row minima."""
        *a, n_reached, r0, r1 = a
        rows, si, exact, cost, _ = read_rows_vectorised(
            _concentration._decode(high, low, far, r0, r1), index[r0:r1], tau[r0:r1],
            beyond[r0:r1], *a,
            profile=(ranks, profile[r0:r1], n_reached),
        )  # fmt: skip
        least, pending = (
            np.full(r1 - r0, _concentration._NONE),
            np.full(r1 - r0, _concentration._NONE),
        )
        np.minimum.at(least, rows[exact], cost[exact])
        np.minimum.at(pending, rows[~exact], cost[~exact])
        first = exact & (cost == least[rows])
        j = np.zeros(r1 - r0, dtype=np.intp)
        hit, at = np.unique(rows[first], return_index=True)
        j[hit] = si[first][at]
        return r0, least, j, pending

    # compile outside the timing (a few seconds)
    state = (np.ones(n, dtype=bool), np.ones(n, dtype=bool), lua, np.arange(3), eps, gamma)
    _concentration._read_list_rows(
        lists.high,
        lists.low,
        lists.far,
        lists.index,
        lists.tau,
        lists.beyond,
        lists.ranks,
        lists.profile,
        *state,
        0,
        0,
        1,
    )
    uncovered, unreached = np.ones(n, dtype=bool), np.ones(n, dtype=bool)
    covered_count, totals = 0, np.zeros(4)
    for t in range(3):
        remaining = target - covered_count
        n_lower = math.ceil(remaining / (5 - t))
        state = (uncovered, unreached, lua, np.arange(n_lower, remaining + 1), eps, gamma)
        tasks = [(r0, min(r0 + 64, n)) for r0 in range(0, n, 64)]
        codes = (lists.high, lists.low, lists.far)
        shared = (*codes, lists.index, lists.tau, lists.beyond, lists.ranks, lists.profile,
                  *state, n - int(unreached.sum()))  # fmt: skip
        read_all = functools.partial(run_tasks, tasks=tasks, shared=shared)
        _, t_read = timed(read_all, _concentration._read_list_rows)
        _, t_read_base = timed(read_all, vectorised)
        call = (lists, Xa, 2, uncovered, unreached, lua, n_lower, remaining, eps, gamma)
        ours, t_ours = timed(_concentration.best_region, *call)
        with mock.patch.object(_concentration, "_read_list_rows", vectorised):
            base, t_base = timed(_concentration.best_region, *call)
        assert ours[:3] == base[:3], (ours[:3], base[:3])
        totals += (t_read_base, t_read, t_base, t_ours)
        print(f"  round {t + 1} (sizes {n_lower}-{remaining}): reading the lists "
              f"{t_read_base:5.2f} s -> {t_read:5.2f} s ({t_read_base / t_read:.1f}x); the "
              f"round {t_base:5.2f} s -> {t_ours:5.2f} s; the same region (centre "
              f"{ours[1]}, cost {ours[0]})")  # fmt: skip
        cost, i, radius, row = ours
        new_cover = uncovered & (row <= radius)
        unreached &= ~(row <= radius + eps)
        uncovered &= ~new_cover
        covered_count += int(new_cover.sum())
    print(f"  three rounds: reading {totals[0]:.2f} s -> {totals[1]:.2f} s "
          f"({totals[0] / totals[1]:.1f}x); rounds {totals[2]:.2f} s -> {totals[3]:.2f} s "
          f"({totals[2] / totals[3]:.1f}x)")  # fmt: skip


def timed(f, *a):
    t = time.perf_counter()
    out = f(*a)
    return out, time.perf_counter() - t


if args.linf_lists:
    linf_lists()
    sys.exit()
if args.read:
    read_rounds()
    sys.exit()
if args.paper_size:
    paper_size()
    sys.exit()


def default_data():
    """The data of the default comparison (loaded only for it: the other modes load
    their own, and a second copy of X would count in their peak memory)."""
    try:
        from skrob.datasets import load_fashion_mnist

        X, y = load_fashion_mnist(subset="train", return_X_y=True)
        return X, y, "Fashion-MNIST"
    except FileNotFoundError:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return X / 16.0, y, "digits"


X_all, y_all, name = default_data()


def sample(n):
    idx = rng.choice(len(y_all), min(n, len(y_all)), replace=False)
    X, y = X_all[idx].astype(np.float64), y_all[idx]
    return X, label_uncertainty(knn_soft_labels(X, y, 10), y)


def reference_search(Xa, lu):
    """The reference code's loops (tests/_reference.py): per round, centre and size."""
    regions, _, _ = brute_force_regions(
        Xa, lu, epsilon=EPS, alpha=ALPHA, gamma=GAMMA, norm=2, n_regions=N_REGIONS, delta=DELTA
    )
    return [r for r in regions if r is not None]


X, lu = sample(args.n_samples)
est = IntrinsicRobustnessEstimator(
    EPS, alpha=ALPHA, gamma=GAMMA, n_regions=N_REGIONS, delta=DELTA, random_state=0
)
t = time.perf_counter()
est.fit(X, lu)
t_ours = time.perf_counter() - t
Xa, lua = X[est.train_indices_], lu[est.train_indices_]
t = time.perf_counter()
regions = reference_search(Xa, lua)
t_ref = time.perf_counter() - t
same = len(regions) == len(est.radii_) and all(
    np.array_equal(Xa[i], c) and abs(r - rr) <= 1e-12 * rr
    for (i, r), c, rr in zip(regions, est.centers_, est.radii_, strict=False)
)
print(
    f"{name}, {len(X)} samples ({len(Xa)} in the half the regions are placed on), "
    f"{X.shape[1]} features; epsilon={EPS}, alpha={ALPHA}, gamma={GAMMA}"
)
print(f"  reference search: {t_ref:8.2f} s")
print(f"  skrob:            {t_ours:8.2f} s   -> {t_ref / t_ours:.0f}x faster")
print(f"  same regions: {same}; intrinsic robustness {est.intrinsic_robustness_:.4f}")

X, lu = sample(args.n_large)
t = time.perf_counter()
est.fit(X, lu)
print(
    f"skrob alone on {len(X)} samples: {time.perf_counter() - t:.2f} s "
    f"(intrinsic robustness {est.intrinsic_robustness_:.4f})"
)
