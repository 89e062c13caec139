"""The kernels behind ``skrob report``'s slowest sections, against their baselines.

One run on Fashion-MNIST (all 70,000 images by default; ``--n`` takes the first n):

* **Each sample's nearest sample of every class**, leave-one-out (``diagnose`` and the
  report's verdict): ``nearest_in_groups(X, X, exclude=arange(n))``, which visits each
  pair once (the triangle), against the same search given a copy of ``X`` (not the same
  object, so every pair is visited from both sides: what the call did before). Both must
  return the same distances.
* **Each sample's 50 nearest others in exact order** (``neighbour_order``: the label
  issues and label uncertainty of ``diagnose``): the triangle's blocks in one task per
  core, each task with its own lists (merged at the end), against the same blocks in one
  task whose GEMMs use every core but whose list updates run on one (the layout before).
  Both must return the same neighbour sets at every cut the votes read.
* **Both of diagnose's searches in one pass** (``nearest_in_groups_and_order``, what
  ``diagnose`` and the report run on data with >= 512 features): the nearest sample of
  every class and the 50-neighbour lists from one pass of GEMM blocks, against the two
  searches above run one after the other. Both must give the same distances and the
  same neighbour sets at every cut.
* **The robust-subsets matrix**: a 5-nearest-neighbour classifier trained on each of six
  subsets of the report's 75 % training split, predicting the 25 % test split. skrob
  (``skrob.report._sections._knn_predictions``: one ``k_nearest`` search with six column
  sets) against scikit-learn's ``KNeighborsClassifier(5)`` fitted on each subset. Both
  must predict the same labels.

    python benchmarks/bench_report.py [--n 70000] [--parts groups order fused subsets]

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


def order(X, k=50):
    from unittest import mock

    from skrob._search import knn

    cuts = tuple(c for c in (5, 10, 20, 30) if c < k) + (k,)
    (ours, t_ours) = timed(lambda: knn.neighbour_order(X, k, cuts=cuts))
    with mock.patch.object(knn, "effective_n_jobs", lambda n_jobs: 1):  # one task
        (base, t_base) = timed(lambda: knn.neighbour_order(X, k, cuts=cuts))
    print(f"{k} nearest others in exact order, n = {len(X):,}:")
    print(f"  one task, list updates on one core:       {t_base:8.2f} s")
    print(f"  a task per core:                          {t_ours:8.2f} s   {t_base / t_ours:.2f}x")
    # the contract: the same neighbour sets at every cut (within the parts between cuts
    # the order is the float32 one, whose last bits depend on the GEMM's threading)
    same = all(
        np.array_equal(np.sort(ours[0][:, :c], axis=1), np.sort(base[0][:, :c], axis=1))
        for c in cuts
    )
    print(f"  same neighbour sets at every cut {cuts}: {same}")


def fused(X, y, k=50):
    from skrob._search.knn import neighbour_order
    from skrob._search.neighbors import nearest_in_groups, nearest_in_groups_and_order

    classes, codes = np.unique(y, return_inverse=True)
    n = len(y)
    cuts = (5, 10, 20, 30, 50, 10)  # diagnose's, with n_neighbors=10
    ((dist, _), (idx, _)), t_ours = timed(
        lambda: nearest_in_groups_and_order(X, codes, classes.size, k, cuts=cuts)
    )
    (base_dist, _), t_groups = timed(
        lambda: nearest_in_groups(X, X, codes, classes.size, exclude=np.arange(n))
    )
    (base_idx, _), t_order = timed(lambda: neighbour_order(X, k, cuts=cuts))
    t_base = t_groups + t_order
    print(f"nearest of every class and {k} nearest others, n = {n:,}:")
    label = f"two searches ({t_groups:.2f} s + {t_order:.2f} s):"
    print(f"  {label:<42}{t_base:8.2f} s")
    print(f"  one pass:                                 {t_ours:8.2f} s   {t_base / t_ours:.2f}x")
    same = all(
        np.array_equal(np.sort(idx[:, :c], axis=1), np.sort(base_idx[:, :c], axis=1)) for c in cuts
    )
    print(f"  same distances: {np.array_equal(dist, base_dist)}; same neighbour sets: {same}")


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
    parser.add_argument(
        "--parts", nargs="+", default=["groups", "order", "fused", "subsets"],
        choices=["groups", "order", "fused", "subsets"], help="the kernels to time",
    )  # fmt: skip
    args = parser.parse_args(argv)
    from skrob.datasets import load_fashion_mnist

    X, y = load_fashion_mnist(return_X_y=True)
    X = np.ascontiguousarray(X[: args.n], dtype=np.float64)
    y = y[: args.n]
    if "groups" in args.parts:
        groups(X, y)
    if "order" in args.parts:
        order(X)
    if "fused" in args.parts:
        fused(X, y)
    if "subsets" in args.parts:
        subsets(X, y)


if __name__ == "__main__":
    main()
