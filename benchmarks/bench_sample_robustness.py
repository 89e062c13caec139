"""Sample robustness: skrob's exact and approximate kernels against their baselines.

One run times, on the same 10-class float32 data:

* the scikit-learn baseline, ``NearestNeighbors(algorithm="brute")`` fitted per class on
  the other classes' points and queried with the class's points;
* skrob's exact kernel (``sample_robustness(algorithm="exact")``);
* skrob's approximate kernel (pynndescent; numba's one-time compile is timed apart)
  with its recall@1 against the exact result;
* a plain numpy float32 GEMM with the exact kernel's flop count,

and prints the speed-up over the baseline and the fraction of the GEMM rate reached.
With ``--regression`` it times the exact regression kernel against a row-by-row numpy
loop (n = 32,000, d = 58 by default).

    python benchmarks/bench_sample_robustness.py                 # n = 20,000, d = 784
    python benchmarks/bench_sample_robustness.py --n 200000      # the larger size
    python benchmarks/bench_sample_robustness.py --regression
"""

import argparse
import time

import numpy as np
from sklearn.neighbors import NearestNeighbors

from skrob import sample_robustness


def make_data(n, d, n_classes, seed=0):
    """Clustered data of low intrinsic dimension, like images: 10 classes in 784-d."""
    rng = np.random.default_rng(seed)
    latent = 32
    y = rng.integers(0, n_classes, n)
    centers = rng.normal(size=(n_classes, latent)) * 1.5
    Z = centers[y] + rng.normal(size=(n, latent))
    W = rng.normal(size=(latent, d)) / np.sqrt(latent)
    X = Z @ W + 0.3 * rng.normal(size=(n, d))
    return X.astype(np.float32), y


def sklearn_baseline(X, y):
    reach = np.empty(X.shape[0])
    for k in np.unique(y):
        members = y == k
        nn = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(X[~members])
        reach[members] = nn.kneighbors(X[members])[0][:, 0]
    return reach


def gemm_rate(n_pairs, d, block=(2048, 4096)):
    """GFLOP/s of plain float32 GEMMs covering ``n_pairs`` dot products of length d."""
    rng = np.random.default_rng(1)
    a = rng.random((block[0], d), dtype=np.float32)
    b = rng.random((block[1], d), dtype=np.float32)
    out = np.empty(block, dtype=np.float32)
    n_gemm = max(1, round(n_pairs / (block[0] * block[1])))
    np.dot(a, b.T, out=out)
    t = time.perf_counter()
    for _ in range(n_gemm):
        np.dot(a, b.T, out=out)
    elapsed = time.perf_counter() - t
    return 2.0 * d * block[0] * block[1] * n_gemm / elapsed / 1e9, elapsed


def timed(f, *args, **kwargs):
    t = time.perf_counter()
    out = f(*args, **kwargs)
    return out, time.perf_counter() - t


def classification(args):
    X, y = make_data(args.n, args.d, 10)
    counts = np.bincount(y)
    n_pairs = (counts.sum() ** 2 - (counts**2).sum()) / 2  # each class pair once
    print(f"classification: n={args.n}, d={args.d}, 10 classes, float32")

    if not args.skip_baseline:
        ref, t_base = timed(sklearn_baseline, X, y)
        print(f"  sklearn NearestNeighbors(brute), per class : {t_base:8.2f} s")
    R_exact, t_exact = timed(sample_robustness, X, y, algorithm="exact")
    reach = R_exact / (1 - R_exact)
    print(f"  skrob exact                                : {t_exact:8.2f} s")
    if not args.skip_baseline:
        rel = np.abs(reach - ref) / np.maximum(ref, 1e-12)
        print(f"    speed-up over sklearn                    : {t_base / t_exact:8.2f} x")
        print(f"    max relative difference to sklearn (f32) : {rel.max():.2e}")

    gflops, _ = gemm_rate(n_pairs, args.d + 2)
    ours = 2.0 * (args.d + 2) * n_pairs / t_exact / 1e9
    print(f"  numpy float32 GEMM, same flop count        : {gflops:8.1f} GFLOP/s")
    print(
        f"    skrob exact effective rate               : {ours:8.1f} GFLOP/s "
        f"({100 * ours / gflops:.0f} % of GEMM)"
    )

    if not args.skip_approximate:
        small_X, small_y = make_data(500, args.d, 10, seed=3)
        _, t_compile = timed(
            sample_robustness, small_X, small_y, algorithm="approximate", random_state=0
        )
        print(f"  skrob approximate, first call (numba compile, n=500): {t_compile:6.1f} s")
        R_approx, t_approx = timed(sample_robustness, X, y, algorithm="approximate", random_state=0)
        reach_approx = R_approx / (1 - R_approx)
        recall = np.mean(reach_approx <= reach * (1 + 1e-9))
        print(f"  skrob approximate                          : {t_approx:8.2f} s")
        print(f"    recall@1 against exact                   : {recall:8.4f}")
        print(f"    exact / approximate time                 : {t_exact / t_approx:8.2f} x")


def regression(args):
    rng = np.random.default_rng(0)
    n, d = args.n_regression, 58
    X = rng.normal(size=(n, d))
    y = X[:, :5].sum(axis=1) + rng.normal(size=n)
    print(f"regression: n={n}, d={d}, float64")
    R, t_ours = timed(sample_robustness, X, y, task="regression")
    print(f"  skrob exact                                : {t_ours:8.2f} s")

    def loop(X, y):
        Q = np.empty(X.shape[0])
        for i in range(X.shape[0]):
            dist = np.sqrt(((X - X[i]) ** 2).sum(axis=1))
            diff = np.abs(y - y[i])
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = diff / dist
            ratio[diff == 0] = 0.0
            Q[i] = ratio.max()
        return Q

    n_loop = min(n, args.loop_rows)
    Q_loop, t_loop = timed(loop, X[:n_loop], y[:n_loop]) if n_loop == n else (None, None)
    if Q_loop is None:
        # Time the loop on its first rows against all samples; scale to n rows.
        def partial_loop():
            for i in range(n_loop):
                dist = np.sqrt(((X - X[i]) ** 2).sum(axis=1))
                with np.errstate(divide="ignore", invalid="ignore"):
                    np.abs(y - y[i]) / dist

        _, t_part = timed(partial_loop)
        t_loop = t_part * n / n_loop
        print(f"  row-by-row numpy loop (timed {n_loop} rows, scaled): {t_loop:8.2f} s")
    else:
        print(f"  row-by-row numpy loop                      : {t_loop:8.2f} s")
        norm = np.abs(y).max()
        print(
            f"    max |R - R_loop|                         : "
            f"{np.abs(R - norm / (norm + Q_loop)).max():.1e}"
        )
    print(f"    speed-up over the loop                   : {t_loop / t_ours:8.2f} x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--d", type=int, default=784)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-approximate", action="store_true")
    parser.add_argument("--regression", action="store_true", help="run the regression case")
    parser.add_argument("--n-regression", type=int, default=32_000)
    parser.add_argument(
        "--loop-rows",
        type=int,
        default=32_000,
        help="rows of the regression loop to time (scaled to n when fewer)",
    )
    args = parser.parse_args()
    if args.regression:
        regression(args)
    else:
        classification(args)


if __name__ == "__main__":
    main()
