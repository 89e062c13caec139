"""The two kernels behind ``skrob report``'s slowest sections, against their baselines.

One run on Fashion-MNIST (all 70,000 images by default; ``--n`` takes the first n):

* **Each sample's nearest sample of every class**, leave-one-out (``diagnose`` and the
  report's verdict): ``nearest_in_groups(X, X, exclude=arange(n))``, which visits each
  pair once (the triangle), against the same search given a copy of ``X`` (not the same
  object, so every pair is visited from both sides: what the call did before). Both must
  return the same distances.
* **The robust-subsets matrix**: a 5-nearest-neighbour classifier trained on each of six
  subsets of the report's 75 % training split, predicting the 25 % test split. skrob
  (``skrob.report._sections._knn_predictions``: one ``k_nearest`` search with six column
  sets) against scikit-learn's ``KNeighborsClassifier(5)`` fitted on each subset. Both
  must predict the same labels.

    python benchmarks/bench_report.py [--n 70000]

The whole report is timed by ``time skrob report --data fashion-mnist`` (docs/report.md).
"""

import argparse
import time
from types import SimpleNamespace

import numpy as np
from sklearn.neighbors import KNeighborsClassifier


def timed(func):
    t = time.perf_counter()
    out = func()
    return out, time.perf_counter() - t


def groups(X, y):
    from skrob._search.neighbors import nearest_in_groups

    classes, codes = np.unique(y, return_inverse=True)
    n = len(y)
    (ours, _), t_ours = timed(
        lambda: nearest_in_groups(X, X, codes, classes.size, exclude=np.arange(n))
    )
    copy = X.copy()
    (base, _), t_base = timed(
        lambda: nearest_in_groups(X, copy, codes, classes.size, exclude=np.arange(n))
    )
    print(f"nearest sample of every class, n = {n:,}:")
    print(f"  every pair from both sides (a copy of X): {t_base:8.2f} s")
    print(f"  each pair once (X itself):                {t_ours:8.2f} s   {t_base / t_ours:.2f}x")
    print(f"  same distances: {np.array_equal(ours, base)}")


def subsets(X, y):
    from sklearn.base import clone

    from skrob import SampleRobustnessTransformer
    from skrob._subsets import subset_indices
    from skrob.report._sections import _TRAIN_SUBSETS, _knn_predictions, _split

    ctx = SimpleNamespace(
        X=X, y=y, task="classification", metric="euclidean", random_state=0, cache={}
    )
    X_x, X_t, y_x, _ = _split(ctx, classification=True)
    R_x = SampleRobustnessTransformer().fit(X_x, y_x).robustness_
    sets = {name: subset_indices(R_x, *spec) for name, spec in _TRAIN_SUBSETS.items()}
    rng = np.random.default_rng(0)
    sets["random 40 %"] = rng.choice(len(y_x), int(0.4 * len(y_x)), replace=False)
    model = KNeighborsClassifier(n_neighbors=5)
    ours, t_ours = timed(lambda: _knn_predictions(ctx, model, X_x, y_x, X_t, sets))
    base, t_base = timed(
        lambda: {
            name: clone(model).set_params(n_jobs=-1).fit(X_x[r], y_x[r]).predict(X_t)
            for name, r in sets.items()
        }
    )
    same = all(np.array_equal(ours[k], base[k]) for k in sets)
    print(f"kNN predictions of {len(sets)} training subsets ({len(y_x):,} training, "
          f"{len(X_t):,} test samples):")  # fmt: skip
    print(f"  scikit-learn, one model per subset:       {t_base:8.2f} s")
    print(f"  skrob, one search with column sets:       {t_ours:8.2f} s   {t_base / t_ours:.2f}x")
    print(f"  same predictions: {same}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=70_000, help="the first n images")
    args = parser.parse_args(argv)
    from skrob.datasets import load_fashion_mnist

    X, y = load_fashion_mnist(return_X_y=True)
    X = np.ascontiguousarray(X[: args.n], dtype=np.float64)
    y = y[: args.n]
    groups(X, y)
    subsets(X, y)


if __name__ == "__main__":
    main()
