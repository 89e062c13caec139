"""The exact kernel on one core, on every core (threads) and on a Dask cluster, in one run.

Times ``sample_robustness(X, y)`` (classification, exact) and, with ``--regression``, the
regression kernel too, on the same data:

* ``n_jobs=1`` (one task after another; BLAS may use every core);
* ``n_jobs=2``, joblib's threads (one BLAS thread each);
* a ``distributed.LocalCluster`` of 2 single-threaded worker processes, through
  ``joblib.parallel_config(backend="dask")``.

It checks that the three give the same result, and for the cluster it prints the bytes
that crossed the loopback interface during the call (``/proc/net/dev``: data, tasks and
results together), against the data's size: each worker should receive the data once.

    python benchmarks/bench_distributed.py                 # n = 80,000, d = 784
    python benchmarks/bench_distributed.py --n 20000 --regression
"""

import argparse
import sys
import time
from pathlib import Path

import joblib
import numpy as np

from skrob import sample_robustness

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sample_robustness import make_data  # noqa: E402  (the same data)


def loopback_bytes():
    """Bytes received on the loopback interface so far (Linux), or None."""
    try:
        with open("/proc/net/dev") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name.strip() == "lo":
                    return int(rest.split()[0])
    except OSError:
        pass
    return None


def rel_gap(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-300)))


def timed(func, *args, **kwargs):
    t = time.perf_counter()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=80000)
    parser.add_argument("--d", type=int, default=784)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-classes", type=int, default=10)
    parser.add_argument("--regression", action="store_true", help="time the regression kernel too")
    parser.add_argument("--skip-classification", action="store_true")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    X, y = make_data(args.n, args.d, args.n_classes)
    X = X.astype(np.float64)  # what sample_robustness works on (float32 copies inside)
    jobs = [] if args.skip_classification else [("classification", y)]
    if args.regression:
        rng = np.random.default_rng(1)
        jobs.append(("regression", y + rng.normal(scale=0.1, size=y.shape)))
    mb = X.nbytes / 2**20
    print(f"n = {args.n:,}, d = {args.d}; X is {mb:,.0f} MiB (float64)")

    cluster = LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    try:
        for task, target in jobs:
            kw = dict(task=task)
            r1, t1 = timed(sample_robustness, X, target, n_jobs=1, **kw)
            r2, t2 = timed(sample_robustness, X, target, n_jobs=2, **kw)
            before = loopback_bytes()
            with joblib.parallel_config(backend="dask"):
                rd, td = timed(sample_robustness, X, target, n_jobs=-1, **kw)
            after = loopback_bytes()
            # Classification re-scores every candidate in float64: bit-identical. Regression
            # maxima come from GEMMs whose rounding depends on the BLAS threads (bounded).
            gap = max(rel_gap(r1, r2), rel_gap(r1, rd))
            same = gap == 0 if task == "classification" else gap <= 1e-6
            shipped = None if before is None else (after - before) / 2**20
            print(f"\n{task}: largest relative difference across the three: {gap:.1e}")
            print(f"  n_jobs=1                      {t1:8.2f} s")
            print(f"  n_jobs=2 (threads)            {t2:8.2f} s   {t1 / t2:5.2f}x n_jobs=1")
            print(
                f"  Dask LocalCluster, {args.workers} workers  {td:8.2f} s   "
                f"{td / t2:5.2f}x the threads' time"
            )
            if shipped is not None:
                print(
                    f"  loopback bytes during the Dask call: {shipped:,.0f} MiB = "
                    f"{shipped / mb / args.workers:.2f}x the data size per worker"
                )
            if not same:
                raise SystemExit("results differ")
    finally:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
