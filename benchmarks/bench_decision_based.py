"""Decision-based minimal distortion: skrob against ART's HopSkipJump at equal queries.

Models that are not networks (gradient boosting, a random forest, an RBF SVM, k-nearest
neighbours) on a real tabular set (breast cancer, features min-max scaled to [0, 1]) and on
scikit-learn's 8x8 digits (pixels / 16), box [0, 1]. Both attacks see labels only: each
model is wrapped so that ``predict`` is all there is (ART then one-hots it), and the wrapper
counts the rows every attack asks. ART runs first; skrob then gets the same number of
queries per sample (``max_queries`` = ART's mean). Every adversarial point is checked
(in the box, label changed by ``predict``); a failure counts as no point found. Where
:func:`skrob.exact_distortion` knows the minimum (the tree ensembles, within its time
limit), the ratio to it is printed.

ART is *not* a skrob dependency; give it its own folder on PYTHONPATH::

    pip install --no-deps --target /tmp/art-lib adversarial-robustness-toolbox six
    PYTHONPATH=/tmp/art-lib python benchmarks/bench_decision_based.py [--n-samples 20]

Target: smaller mean distortion than ART at equal queries, and at least 5x faster.

``--quality`` (no ART needed) prints instead how close the default budget lands to the
exact minimum on models where it is known (digits, pixels / 16, box [0, 1], 100 test
samples): the ratio found / exact per method and norm.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import MinMaxScaler
from sklearn.svm import SVC

from skrob import decision_based_distortion, exact_distortion

parser = argparse.ArgumentParser()
parser.add_argument("--n-samples", type=int, default=20)
parser.add_argument("--norms", default="2,inf")
parser.add_argument("--art-iter", type=int, default=20, help="ART HopSkipJump max_iter")
parser.add_argument("--exact-time", type=float, default=20.0, help="seconds per sample")
parser.add_argument("--quality", action="store_true", help="ratio to exact, no ART")
args = parser.parse_args()
warnings.filterwarnings("ignore")


def quality():
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, ytr, Xte, yte = X[:1200], y[:1200], X[1200:1300], y[1200:1300]
    models = {
        "LogisticRegression": LogisticRegression(max_iter=2000),
        "DecisionTree(depth 8)": DecisionTreeClassifier(max_depth=8, random_state=0),
        "RandomForest(10 trees, depth 4)": RandomForestClassifier(
            n_estimators=10, max_depth=4, random_state=0
        ),
    }
    print(
        f"{'model':32s} {'norm':>4s} {'method':6s} {'median':>7s} {'mean':>7s} {'p90':>7s} "
        f"{'max':>7s} {'below':>5s} {'time s':>7s}"
    )
    for name, model in models.items():
        model.fit(Xtr, ytr)
        for norm, methods in ((np.inf, ("auto", "hsj", "ray")), (2, ("auto", "hsj"))):
            lo, up = exact_distortion(
                model,
                Xte,
                yte,
                norm=norm,
                clip=(0, 1),
                time_limit=args.exact_time,
                return_bounds=True,
            )
            ex = np.where(lo == up, up, np.nan)
            for method in methods:
                t0 = time.perf_counter()
                d = decision_based_distortion(
                    model, Xte, yte, norm=norm, clip=(0, 1), method=method, random_state=0
                )
                secs = time.perf_counter() - t0
                r = d / ex
                below = int(np.sum(d < lo * (1 - 1e-9)))
                r = r[np.isfinite(r)]
                print(
                    f"{name:32s} {'inf' if norm == np.inf else '2':>4s} {method:6s} "
                    f"{np.median(r):7.4f} {r.mean():7.4f} {np.percentile(r, 90):7.4f} "
                    f"{r.max():7.4f} {below:5d} {secs:7.2f}",
                    flush=True,
                )


if args.quality:
    quality()
    raise SystemExit

from art.attacks.evasion import HopSkipJump  # noqa: E402
from art.estimators.classification.scikitlearn import ScikitlearnClassifier  # noqa: E402


class LabelsOnly(ClassifierMixin, BaseEstimator):
    """``predict`` as class indices, and the number of rows asked."""

    def __init__(self, model):
        self.model = model
        self.classes_ = np.arange(len(model.classes_))
        self.n_features_in_ = model.n_features_in_  # ART reads the input shape from it
        self.rows = 0

    def predict(self, X):
        self.rows += len(X)
        return np.searchsorted(self.model.classes_, self.model.predict(X))


def data():
    Xb, yb = load_breast_cancer(return_X_y=True)
    Xb = MinMaxScaler().fit_transform(Xb)
    Xd, yd = load_digits(return_X_y=True)
    yield "breast cancer (30 features)", Xb, yb
    yield "digits (64 pixels)", Xd / 16.0, yd


MODELS = {
    "gradient boosting": lambda: GradientBoostingClassifier(
        n_estimators=20, max_depth=2, random_state=0
    ),
    "random forest": lambda: RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0),
    "RBF SVM": lambda: SVC(C=10.0, gamma="scale"),
    "kNN (k=5)": lambda: KNeighborsClassifier(5),
}
EXACT = {"gradient boosting", "random forest"}


def checked(model, X, y, X_adv, norm):
    ok = np.all(np.isfinite(X_adv), axis=1)
    ok &= np.all((X_adv >= 0) & (X_adv <= 1), axis=1)
    ok[ok] &= model.predict(X_adv[ok]) != y[ok]
    d = np.full(len(X), np.inf)
    d[ok] = np.linalg.norm(X_adv[ok] - X[ok], ord=norm, axis=1)
    return d


print(
    f"{'data':28s} {'model':18s} {'norm':>4s} {'attack':6s} {'queries':>8s} "
    f"{'mean dist':>10s} {'ratio exact':>11s} {'found':>6s} {'time s':>7s}"
)
for name, X, y in data():
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    for mname, make in MODELS.items():
        model = make().fit(Xtr, ytr)
        wrapped = LabelsOnly(model)
        pred = model.predict(Xte)
        idx = np.flatnonzero(pred == yte)[: args.n_samples]
        x, t = Xte[idx], np.searchsorted(model.classes_, yte[idx])
        for norm_name in args.norms.split(","):
            norm = np.inf if norm_name == "inf" else 2
            # ART's HopSkipJump, one sample at a time (its loop), labels only
            clf = ScikitlearnClassifier(model=wrapped, clip_values=(0.0, 1.0))
            attack = HopSkipJump(
                clf,
                norm=norm,
                max_iter=args.art_iter,
                max_eval=1000,
                init_eval=100,
                init_size=100,
                verbose=False,
            )
            wrapped.rows = 0
            np.random.seed(0)  # ART draws from numpy's global generator
            t0 = time.perf_counter()
            adv = attack.generate(x=x.astype(np.float64))
            t_art = time.perf_counter() - t0
            q_art = wrapped.rows / len(x)
            d_art = checked(wrapped, x, t, adv, norm)
            # skrob, the same queries per sample
            wrapped.rows = 0
            t0 = time.perf_counter()
            d_sk = decision_based_distortion(
                wrapped,
                x,
                t,
                norm=norm,
                clip=(0.0, 1.0),
                max_queries=int(q_art),
                random_state=0,
            )
            t_sk = time.perf_counter() - t0
            q_sk = wrapped.rows / len(x)
            ex = None
            if mname in EXACT:
                lo, up = exact_distortion(
                    model,
                    x,
                    model.classes_[t],
                    norm=norm,
                    clip=(0.0, 1.0),
                    time_limit=args.exact_time,
                    return_bounds=True,
                )
                ex = np.where(lo == up, up, np.nan)
            for label, d, q, secs in (("ART", d_art, q_art, t_art), ("skrob", d_sk, q_sk, t_sk)):
                fin = np.isfinite(d)
                ratio = "-"
                if ex is not None:
                    r = d / ex
                    r = r[np.isfinite(r)]
                    ratio = f"{np.mean(r):.3f}" if r.size else "-"
                print(
                    f"{name:28s} {mname:18s} {norm_name:>4s} {label:6s} {q:8.0f} "
                    f"{np.mean(d[fin]) if fin.any() else np.nan:10.4f} {ratio:>11s} "
                    f"{fin.mean():6.2f} {secs:7.2f}",
                    flush=True,
                )
            if ex is not None:
                print(
                    f"{'':28s} {'':18s} {'':>4s} exact: proven for {np.isfinite(ex).sum()} "
                    f"of {len(x)} samples",
                    flush=True,
                )
            both = np.isfinite(d_art) & np.isfinite(d_sk)
            print(
                f"{'':28s} {'':18s} {'':>4s} skrob/ART mean distortion (both found) "
                f"{d_sk[both].mean() / d_art[both].mean():.3f}, time ratio ART/skrob "
                f"{t_art / t_sk:.1f}x",
                flush=True,
            )
