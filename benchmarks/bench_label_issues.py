"""Finding wrong labels: skrob.label_issues against cleanlab, in one run.

Labels are flipped at random on data sets whose labels we trust, then each method flags
samples and ranks them:

- skrob: ``label_issues(X, y)``, confident learning on leave-one-out kNN probabilities
  (no model, no folds);
- cleanlab-kNN: ``cleanlab.filter.find_label_issues`` on 5-fold out-of-fold
  ``KNeighborsClassifier(10)`` probabilities; ranking by self-confidence;
- cleanlab-logreg: the same on out-of-fold ``LogisticRegression`` probabilities.

Noise: "uniform" (a flipped label goes to any other class with equal chance) and
"class" (class-conditional: every class flips to one other class, a random derangement),
at 5, 10 and 20 %. Every set is standardised first (all methods see the same features).
Printed per set and noise: precision, recall and F1 of the flags, AUROC of the ranking,
and seconds (the cross-validated fits included for cleanlab); then the targets.

    python benchmarks/bench_label_issues.py            # 5 seeds (100 on sets < 1000 rows)
    python benchmarks/bench_label_issues.py --quick    # 1 seed, no mnist-5k
    python benchmarks/bench_label_issues.py --knn      # the neighbour search alone

``--knn`` times the leave-one-out 50-nearest-neighbour search behind the flags: skrob's
float32 triangle with exact order (``skrob._search.knn.neighbour_order``) against
scikit-learn's ``NearestNeighbors`` (brute force, float64, every core) on the same
data, in one run, at several sizes and feature counts, and checks that both return the
same neighbours.

On the small sets a seed flips few labels (9 of wine's 178 at 5 %), so one seed's F1
swings by ±0.1: they run 20 times as many seeds (100 by default), which brings the
standard error of a mean F1 difference to about 0.005 (with 20 seeds it was 0.012-0.018,
as large as the differences themselves).

Seconds are the best of 3 runs on the first seed (the other seeds run once, for the
quality figures). F1 and AUROC are means over seeds; "±" is the standard error of the
mean difference skrob − baseline over the seeds, so a difference within it is a tie.
"""

import argparse
import time

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from skrob import label_issues

# seeds per --seeds on the sets below 1,000 rows (their per-seed F1 is noisy)
_SMALL_SET_SEEDS = 20


def data_sets(quick):
    sets = {
        "digits (image)": load_digits(return_X_y=True),
        "breast_cancer (tabular)": load_breast_cancer(return_X_y=True),
        "wine (tabular)": load_wine(return_X_y=True),
        "synthetic (tabular)": make_classification(
            n_samples=3000,
            n_features=20,
            n_informative=10,
            n_classes=4,
            n_clusters_per_class=2,
            class_sep=1.5,
            random_state=0,
        ),
    }
    if not quick:
        try:
            from skrob.datasets import load_mnist_5k

            d = load_mnist_5k()
            sets["mnist-5k (image)"] = (d.data, d.target)
        except (ImportError, OSError) as exc:
            print(f"mnist-5k skipped: {exc}")
    return {
        name: (StandardScaler().fit_transform(X), np.asarray(y)) for name, (X, y) in sets.items()
    }


def corrupt(y, rate, kind, rng):
    """Flip round(rate * n) labels; return the noisy labels and the mask of flipped ones."""
    classes = np.unique(y)
    k = classes.size
    n_flip = int(round(rate * len(y)))
    flip = rng.choice(len(y), n_flip, replace=False)
    noisy = y.copy()
    codes = np.searchsorted(classes, y)
    if kind == "uniform":
        shift = rng.integers(1, k, n_flip)
        noisy[flip] = classes[(codes[flip] + shift) % k]
    else:
        perm = rng.permutation(k)
        while k > 1 and np.any(perm == np.arange(k)):  # a derangement: no class to itself
            perm = rng.permutation(k)
        noisy[flip] = classes[perm[codes[flip]]]
    truth = np.zeros(len(y), dtype=bool)
    truth[flip] = True
    return noisy, truth


def run_skrob(X, y):
    found = label_issues(X, y)
    return found["label_issue"].to_numpy(), 1.0 - found["label_quality"].to_numpy()


def run_cleanlab(model):
    def run(X, y, seed=0):
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores

        classes, codes = np.unique(y, return_inverse=True)
        cv = StratifiedKFold(5, shuffle=True, random_state=seed)
        probs = cross_val_predict(model, X, codes, cv=cv, method="predict_proba")
        flags = find_label_issues(codes, probs)
        return flags, 1.0 - get_label_quality_scores(codes, probs)

    return run


METHODS = {
    "skrob": run_skrob,
    "cleanlab-kNN": run_cleanlab(KNeighborsClassifier(n_neighbors=10)),
    "cleanlab-logreg": run_cleanlab(LogisticRegression(max_iter=2000)),
}


def knn_search():
    """skrob's leave-one-out neighbour search against scikit-learn's, in one run."""
    from sklearn.neighbors import NearestNeighbors

    from skrob._search.knn import neighbour_order
    from skrob.datasets import load_fashion_mnist, load_mnist_5k

    fashion = np.asarray(load_fashion_mnist().data, dtype=np.float64)
    rng = np.random.default_rng(0)
    cases = {
        "MNIST 5k (standardised)": StandardScaler().fit_transform(load_mnist_5k().data),
        "Fashion-MNIST 10k": fashion[:10000],
        "Fashion-MNIST 20k": fashion[:20000],
        "Fashion-MNIST 10k, 128 random pixels": fashion[:10000][
            :, rng.choice(784, 128, replace=False)
        ],
        "Fashion-MNIST 70k": fashion,
    }
    k = 50
    print(f"leave-one-out {k}-nearest-neighbour search, best of 3 (1 at 70k), seconds")
    for name, X in cases.items():
        ours, theirs = np.inf, np.inf
        for _ in range(1 if len(X) > 50000 else 3):
            t = time.perf_counter()
            idx, _ = neighbour_order(X, k)
            ours = min(ours, time.perf_counter() - t)
            time.sleep(0.5)  # scikit-learn's OpenMP threads spin for a while after a call
            t = time.perf_counter()
            _, ref = NearestNeighbors(n_neighbors=k, n_jobs=-1).fit(X).kneighbors()
            theirs = min(theirs, time.perf_counter() - t)
            time.sleep(0.5)
        same = float(np.mean(np.sort(idx, axis=1) == np.sort(ref, axis=1)))
        print(
            f"  {name:38s} n={X.shape[0]:6d} d={X.shape[1]:3d}  skrob {ours:7.2f}  "
            f"scikit-learn {theirs:7.2f}  ratio {theirs / ours:5.2f}x  same neighbours {same:.4f}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="x20 on sets below 1000 rows")
    parser.add_argument("--quick", action="store_true", help="1 seed, the small sets")
    parser.add_argument("--knn", action="store_true", help="time the neighbour search alone")
    args = parser.parse_args(argv)
    if args.knn:
        knn_search()
        return
    rows = []
    for name, (X, y) in data_sets(args.quick).items():
        seeds = 1 if args.quick else args.seeds * (_SMALL_SET_SEEDS if len(y) < 1000 else 1)
        for kind in ("uniform", "class"):
            for rate in (0.05, 0.10, 0.20):
                for seed in range(seeds):
                    rng = np.random.default_rng(seed)
                    noisy, truth = corrupt(y, rate, kind, rng)
                    for method, run in METHODS.items():
                        seconds = np.inf
                        for _ in range(3 if seed == 0 else 1):
                            t = time.perf_counter()
                            flags, score = run(X, noisy)
                            seconds = min(seconds, time.perf_counter() - t)
                        rows.append(
                            {
                                "data": name,
                                "noise": f"{kind} {rate:.0%}",
                                "seed": seed,
                                "method": method,
                                "precision": precision_score(truth, flags, zero_division=0),
                                "recall": recall_score(truth, flags),
                                "F1": f1_score(truth, flags),
                                "AUROC": roc_auc_score(truth, score),
                                "seconds": seconds if seed == 0 else np.nan,
                            }
                        )
    df = pd.DataFrame(rows)
    table = (
        df.groupby(["data", "noise", "method"], sort=False)[
            ["precision", "recall", "F1", "AUROC", "seconds"]
        ]
        .mean()
        .round(3)
    )
    pd.set_option("display.width", 200)
    pd.set_option("display.max_rows", 500)
    print("means over the seeds (seconds: best of 3 on seed 0)")
    print(table.to_string())
    wide = table.unstack("method")
    # standard errors of the paired differences skrob - baseline, over seeds
    paired = df.pivot_table(
        index=["data", "noise", "seed"], columns="method", values=["F1", "AUROC"]
    )
    for metric in ("F1", "AUROC"):
        for base in ("cleanlab-kNN", "cleanlab-logreg"):
            diff = (paired[metric]["skrob"] - paired[metric][base]).groupby(
                level=["data", "noise"], sort=False
            )
            se = diff.std(ddof=1) / np.sqrt(diff.count())
            wide[(f"{metric} diff", base)] = diff.mean()
            wide[(f"{metric} se", base)] = se.fillna(0.0)
    print("\nskrob − baseline, mean ± standard error over seeds:")
    diffs = pd.DataFrame(
        {
            f"{metric} vs {base}": [
                f"{d:+.3f} ± {e:.3f}"
                for d, e in zip(
                    wide[(f"{metric} diff", base)], wide[(f"{metric} se", base)], strict=True
                )
            ]
            for metric in ("F1", "AUROC")
            for base in ("cleanlab-kNN", "cleanlab-logreg")
        },
        index=wide.index,
    )
    print(diffs.to_string())
    print("\nTargets (per data set and noise, means over seeds; tie: within one standard error):")
    for metric in ("F1", "AUROC"):
        for base in ("cleanlab-kNN", "cleanlab-logreg"):
            d, e = wide[(f"{metric} diff", base)], wide[(f"{metric} se", base)]
            print(
                f"  {metric} vs {base}: better or equal {int((d >= 0).sum())}, tie "
                f"{int(((d < 0) & (d >= -e)).sum())}, worse {int((d < -e).sum())} "
                f"of {d.size} settings"
            )
    checks = {
        "faster than cleanlab-kNN": (wide["seconds"]["skrob"] < wide["seconds"]["cleanlab-kNN"]),
        "faster than cleanlab-logreg": (
            wide["seconds"]["skrob"] < wide["seconds"]["cleanlab-logreg"]
        ),
    }
    for label, ok in checks.items():
        print(f"  {label}: {int(ok.sum())} of {ok.size} settings")
    by_set = wide.groupby(level="data", sort=False)
    speed = by_set.apply(
        lambda g: pd.Series(
            {
                "skrob s": g["seconds"]["skrob"].mean(),
                "cleanlab-kNN s": g["seconds"]["cleanlab-kNN"].mean(),
                "cleanlab-logreg s": g["seconds"]["cleanlab-logreg"].mean(),
            }
        )
    )
    speed["kNN / skrob"] = speed["cleanlab-kNN s"] / speed["skrob s"]
    speed["logreg / skrob"] = speed["cleanlab-logreg s"] / speed["skrob s"]
    print("\nMean seconds per set (ratio = baseline time / skrob time):")
    print(speed.round(3).to_string())


if __name__ == "__main__":
    main()
