"""Sample robustness: skrob's exact and approximate kernels against their baselines.

One run times, on the same 10-class data:

* the scikit-learn baseline, ``NearestNeighbors(algorithm="brute")`` fitted per class on
  the other classes' points and queried with the class's points;
* skrob's exact kernel (``sample_robustness(algorithm="exact")``) at the default
  ``n_jobs`` (every core) and at ``n_jobs=1``;
* a plain numpy float32 GEMM with the exact kernel's flop count, timed right before
  each run of the kernel (interleaved, ``--repeats`` pairs), so that both see the same
  machine load;
* with ``--approximate``: the inverted lists (``algorithm="approximate"``) and, with
  ``--nndescent``, pynndescent, with recall@1 against the exact result.

``--data fashion`` uses Fashion-MNIST's 70,000 images (and, for a larger ``--n``,
copies of them with Gaussian jitter of 0.02 per pixel); the default is synthetic
clustered data. ``--scaling`` times the exact kernel and its peak traced memory at
n = 10k ... 160k (d = 784) and d = 16 ... 3,072 (n = 20k), fits the exponents, projects
the time of n = 1M and 10M, and with ``--plot PATH`` draws it.
With ``--regression`` it times the exact regression kernel against a row-by-row numpy
loop (n = 32,000, d = 58 by default).

    python benchmarks/bench_sample_robustness.py                 # n = 20,000, d = 784
    python benchmarks/bench_sample_robustness.py --data fashion --n 200000 --approximate
    python benchmarks/bench_sample_robustness.py --scaling --plot docs/_static/scaling.png
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


def load_data(args):
    if args.data == "synthetic":
        return make_data(args.n, args.d, 10)
    from skrob.datasets import load_fashion_mnist

    X, y = load_fashion_mnist(return_X_y=True)
    rng = np.random.default_rng(0)
    parts, labels = [X], [y]
    while sum(len(p) for p in parts) < args.n:
        parts.append(X + rng.normal(scale=0.02, size=X.shape).astype(np.float32))
        labels.append(y)
    return np.vstack(parts)[: args.n], np.concatenate(labels)[: args.n]


def classification(args):
    X, y = load_data(args)
    counts = np.bincount(y)
    n_pairs = (counts.sum() ** 2 - (counts**2).sum()) / 2  # each class pair once
    print(f"classification: {args.data} data, n={len(y)}, d={X.shape[1]}, 10 classes, float32")

    if not args.skip_baseline:
        ref, t_base = timed(sklearn_baseline, X, y)
        print(f"  sklearn NearestNeighbors(brute), per class : {t_base:8.2f} s")
    times, rates = [], []
    for _ in range(args.repeats):  # the GEMM reference right before each kernel run
        gflops, _ = gemm_rate(n_pairs, X.shape[1] + 2)
        R_exact, t = timed(sample_robustness, X, y, algorithm="exact")
        times.append(t)
        rates.append(2.0 * (X.shape[1] + 2) * n_pairs / t / 1e9 / gflops)
    t_exact = min(times)
    reach = R_exact / (1 - R_exact)
    spread = f"(runs: {', '.join(f'{t:.2f}' for t in times)})"
    print(f"  skrob exact, n_jobs=None (every core)      : {t_exact:8.2f} s {spread}")
    fractions = ", ".join(f"{100 * r:.0f} %" for r in rates)
    print(f"    of the float32 GEMM rate, each run against the GEMM timed just before: {fractions}")
    if not args.skip_one_job:
        R1, t_one = timed(sample_robustness, X, y, algorithm="exact", n_jobs=1)
        assert np.array_equal(R1, R_exact)
        print(f"  skrob exact, n_jobs=1                      : {t_one:8.2f} s")
        print(f"    every core / n_jobs=1                    : {t_one / t_exact:8.2f} x")
    if not args.skip_baseline:
        rel = np.abs(reach - ref) / np.maximum(ref, 1e-12)
        print(f"    speed-up over sklearn                    : {t_base / t_exact:8.2f} x")
        print(f"    max relative difference to sklearn (f32) : {rel.max():.2e}")

    if args.approximate:
        # the kernels compile with numba on their first use in a process: timed apart
        _, t_compile = timed(
            sample_robustness, X[:5000], y[:5000], algorithm="approximate", random_state=0
        )
        print(f"  inverted lists, first call (numba compile, n=5000): {t_compile:6.2f} s")
        for nprobe in args.nprobe:
            for seed in args.seeds:  # the lists' k-means and the PCA's sample
                R_ivf, t_ivf = timed(
                    sample_robustness,
                    X,
                    y,
                    algorithm="approximate",
                    nprobe=nprobe,
                    random_state=seed,
                )
                recall = np.mean(R_ivf <= R_exact * (1 + 1e-12))
                print(
                    f"  skrob approximate (inverted lists), nprobe={nprobe}, "
                    f"random_state={seed}: {t_ivf:8.2f} s"
                )
                print(f"    recall@1 against exact                   : {recall:8.4f}")
                print(f"    exact / approximate time                 : {t_exact / t_ivf:8.2f} x")
    if args.approximate and args.steps:
        ivf_steps(X, y, args.nprobe[-1])
    if args.nndescent:
        small_X, small_y = make_data(500, X.shape[1], 10, seed=3)
        _, t_compile = timed(
            sample_robustness, small_X, small_y, algorithm="nndescent", random_state=0
        )
        print(f"  pynndescent, first call (numba compile, n=500): {t_compile:6.1f} s")
        R_nnd, t_nnd = timed(sample_robustness, X, y, algorithm="nndescent", random_state=0)
        recall = np.mean(R_nnd <= R_exact * (1 + 1e-12))
        print(f"  skrob nndescent (pynndescent per class)    : {t_nnd:8.2f} s")
        print(f"    recall@1 against exact                   : {recall:8.4f}")
        print(f"    exact / nndescent time                   : {t_exact / t_nnd:8.2f} x")


def ivf_steps(X, y, nprobe):
    """The inverted lists' steps, and the scan's rate against a float32 GEMM of the same
    flop count and inner dimension timed right after it."""
    from skrob._search.ivf import ivf_nearest_other_label

    steps = {}
    _, total = timed(ivf_nearest_other_label, X, y, nprobe=nprobe, random_state=0, steps=steps)
    flop, width = steps.pop("scan flop"), steps.pop("scan width")
    scan = "projected" if steps.pop("projected") else "full"
    gflops, _ = gemm_rate(flop / (2.0 * width), width)
    print(f"  inverted lists step by step, nprobe={nprobe}, {scan} scan ({total:.2f} s in all):")
    for name, seconds in steps.items():
        print(f"    {name:<12}: {seconds:8.2f} s")
    rate = flop / steps["scan"] / 1e9
    print(f"    the scan: {rate:.1f} GFLOP/s of GEMM ({width} columns), "
          f"{100 * rate / gflops:.0f} % of the float32 GEMM rate timed right after it "
          f"({gflops:.1f} GFLOP/s)")  # fmt: skip


def scaling(args):
    """Time and peak traced memory of the exact kernel against n and d; fitted exponents."""
    import tracemalloc

    def run(n, d):
        X, y = make_data(n, d, 10)
        tracemalloc.start()
        _, t = timed(sample_robustness, X, y, algorithm="exact")
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        return t, peak, X.nbytes / 2**20

    series = {"n": [], "d": []}
    print("exact kernel, n_jobs=None (every core); memory: peak traced by tracemalloc")
    print(f"{'n':>8} {'d':>6} {'time (s)':>10} {'peak (MiB)':>11} {'X (MiB)':>9}")
    for n in args.scaling_n:
        t, peak, data = run(n, 784)
        series["n"].append((n, t, peak))
        print(f"{n:8d} {784:6d} {t:10.2f} {peak:11.0f} {data:9.0f}")
    for d in args.scaling_d:
        t, peak, data = run(20_000, d)
        series["d"].append((d, t, peak))
        print(f"{20_000:8d} {d:6d} {t:10.2f} {peak:11.0f} {data:9.0f}")
    fits = {}
    for key, rows in series.items():
        x, t, m = (np.log(np.array(c, dtype=float)) for c in zip(*rows, strict=True))
        fits[key] = (np.polyfit(x, t, 1), np.polyfit(x, m, 1))
        print(
            f"fitted exponents in {key}: time ~ {key}^{fits[key][0][0]:.2f}, "
            f"memory ~ {key}^{fits[key][1][0]:.2f} (least squares on logs)"
        )
    # Projections at d = 784 from the time of the largest n, by the flop count n^2 (the
    # exponent between the two largest n is printed), and by compute rate: more cores (the
    # GEMM rate scaling with them), a GPU (its float32 rate against the rate measured
    # here), Dask workers (each with this machine's rate).
    n_max, t_max, _ = series["n"][-1]
    n_prev, t_prev, _ = series["n"][-2]
    gflops, _ = gemm_rate(2e10, 786)
    print(
        f"projections at d = 784 (n^2 from n = {n_max:,}: {t_max:.1f} s here; exponent "
        f"between the two largest n: {np.log(t_max / t_prev) / np.log(n_max / n_prev):.2f}; "
        f"float32 GEMM rate here: {gflops:.0f} GFLOP/s):"
    )
    gpu = args.gpu_tflops * 1e3 / gflops
    for n in (1_000_000, 10_000_000):
        t2 = t_max * (n / n_max) ** 2
        cores64, dask = t2 * args.cores / 64 / 3600, t2 / args.workers / 3600
        print(
            f"  n = {n:>10,}: here {t2 / 3600:7.1f} h; 64 cores {cores64:6.2f} h; a GPU at "
            f"{args.gpu_tflops:.0f} TFLOP/s float32 ({gpu:.0f}x) {t2 / gpu / 60:6.1f} min; "
            f"{args.workers} Dask workers like this machine {dask:6.2f} h"
        )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        for ax, key, other in ((axes[0], "n", "d = 784"), (axes[1], "d", "n = 20,000")):
            x, t, m = (np.array(c, dtype=float) for c in zip(*series[key], strict=True))
            ax.loglog(x, t, "o-", label=f"time, ~{key}^{fits[key][0][0]:.2f}")
            ax2 = ax.twinx()
            ax2.loglog(
                x, m, "s--", color="tab:orange", label=f"memory, ~{key}^{fits[key][1][0]:.2f}"
            )
            ax.set_xlabel(f"{key} ({other})")
            ax.set_ylabel("time (s)")
            ax2.set_ylabel("peak traced memory (MiB)")
            lines = ax.get_legend_handles_labels()
            lines2 = ax2.get_legend_handles_labels()
            ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left", fontsize=8)
        fig.suptitle(
            "Exact sample robustness: cost growth (python benchmarks/"
            "bench_sample_robustness.py --scaling)",
            fontsize=9,
        )
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"figure written to {args.plot}")


def regression(args):
    rng = np.random.default_rng(0)
    n, d = args.n_regression, 58
    X = rng.normal(size=(n, d))
    y = X[:, :5].sum(axis=1) + rng.normal(size=n)
    print(f"regression: n={n}, d={d}, float64")
    R, t_ours = timed(sample_robustness, X, y, task="regression")
    print(f"  skrob exact, n_jobs=None (every core)      : {t_ours:8.2f} s")
    if not args.skip_one_job:
        R1, t_one = timed(sample_robustness, X, y, task="regression", n_jobs=1)
        gap = np.abs(R1 - R).max()
        print(f"  skrob exact, n_jobs=1                      : {t_one:8.2f} s")
        print(f"    every core / n_jobs=1                    : {t_one / t_ours:8.2f} x")
        print(f"    max |R(n_jobs=1) - R|                    : {gap:.1e}")

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
    parser.add_argument("--data", choices=["synthetic", "fashion"], default="synthetic")
    parser.add_argument("--repeats", type=int, default=2, help="exact runs (GEMM interleaved)")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-one-job", action="store_true", help="skip the n_jobs=1 run")
    parser.add_argument("--approximate", action="store_true", help="time the inverted lists")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[48])
    parser.add_argument(
        "--steps", action="store_true", help="with --approximate: time each step of the last nprobe"
    )
    parser.add_argument("--nndescent", action="store_true", help="time pynndescent too")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="random_state of each approximate run (the recall varies with the lists)",
    )
    parser.add_argument("--scaling", action="store_true", help="cost growth in n and d")
    parser.add_argument(
        "--scaling-n", type=int, nargs="+", default=[10_000, 20_000, 40_000, 80_000, 160_000]
    )
    parser.add_argument("--scaling-d", type=int, nargs="+", default=[16, 64, 256, 784, 3072])
    parser.add_argument("--cores", type=int, default=2, help="cores of this machine (projections)")
    parser.add_argument(
        "--gpu-tflops", type=float, default=60.0, help="a GPU's float32 rate (H100/H200: ~60)"
    )
    parser.add_argument("--workers", type=int, default=16, help="Dask workers (projections)")
    parser.add_argument("--plot", help="write the scaling figure here")
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
    elif args.scaling:
        scaling(args)
    else:
        classification(args)


if __name__ == "__main__":
    main()
