"""How close each attack of ``minimal_distortion`` comes to the smallest distortion, over 14 nets.

The networks of ``examples/plot_robustness_vs_training_size.py``: a 2-layer perceptron
and a small CNN, trained (plain torch, Adam, 5 epochs) on 7 nested class-balanced
Fashion-MNIST training sets from 600 to 60,000 images (MNIST 5k when Fashion-MNIST is not
installed: 3 sets). On the first ``--n-samples`` test images that all of them classify
correctly, every method's per-sample distortion is divided by the smallest any method
found for that sample; the table gives the mean of that ratio per network, and per method
its mean over networks, its worst network and its total time.

    python benchmarks/bench_adversarial_models.py [--n-samples 100] [--norms inf,2]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from skrob import balanced_nested_subsets
from skrob.datasets import load_fashion_mnist, load_mnist_5k
from skrob.torch import common_correct_mask, minimal_distortion

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from _common import perceptron, small_cnn

parser = argparse.ArgumentParser()
parser.add_argument("--n-samples", type=int, default=100)
parser.add_argument("--norms", default="inf,2")
args = parser.parse_args()
torch.set_num_threads(2)

try:
    data = load_fashion_mnist()
except FileNotFoundError:
    data = load_mnist_5k()
X = torch.as_tensor(data.data.reshape(-1, 1, 28, 28), dtype=torch.float32)
y = torch.as_tensor(data.target.astype(np.int64))
train = torch.as_tensor(data.is_train)
X_train, y_train, X_test, y_test = X[train], y[train], X[~train], y[~train]
per_class = int(torch.bincount(y_train).min())
sizes = [s for s in (600, 1200, 3000, 6000, 12000, 30000, 60000) if s // 10 <= per_class]
subsets = balanced_nested_subsets(y_train.numpy(), sizes, random_state=0)

ARCHITECTURES = {"perceptron": perceptron, "CNN": small_cnn}


class Predictor:
    """Just enough of an estimator for common_correct_mask."""

    def __init__(self, module):
        self.module = module

    def predict(self, X):
        with torch.no_grad():
            return self.module(X).argmax(1).numpy()


models = {}
t0 = time.perf_counter()
for arch, build in ARCHITECTURES.items():
    for size, rows in zip(sizes, subsets, strict=True):
        torch.manual_seed(0)
        net = build()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        rows = torch.as_tensor(rows)
        for _epoch in range(5):
            for batch in rows[torch.randperm(len(rows))].split(128):
                opt.zero_grad()
                nn.functional.cross_entropy(net(X_train[batch]), y_train[batch]).backward()
                opt.step()
        models[f"{arch} {size}"] = net.eval()
print(f"trained {len(models)} networks in {time.perf_counter() - t0:.0f} s")
common = common_correct_mask([Predictor(m) for m in models.values()], X_test, y_test.numpy())
Xc, yc = X_test[common][: args.n_samples], y_test[common][: args.n_samples]
print(f"{int(common.sum())} test images are correct for all; attacking the first {len(yc)}")

METHODS = {np.inf: ["auto", "fab", "bim", "deepfool"], 2: ["auto", "fab", "ddn", "deepfool"]}
for key in args.norms.split(","):
    p = np.inf if key == "inf" else 2
    distortion = {m: [] for m in METHODS[p]}
    seconds = dict.fromkeys(METHODS[p], 0.0)
    for net in models.values():
        for m in METHODS[p]:
            t = time.perf_counter()
            distortion[m].append(minimal_distortion(net, Xc, yc, norm=p, method=m, clip=(0.0, 1.0)))
            seconds[m] += time.perf_counter() - t
    D = np.stack([np.vstack(distortion[m]) for m in METHODS[p]])  # (method, net, sample)
    failed = np.isinf(D)  # not flipped (Xc: correctly classified samples only)
    D = np.where(failed, np.nan, D)
    ratio = np.nanmean(D / np.nanmin(D, axis=0), axis=2)  # (method, net)
    label = "L-inf" if p == np.inf else "L2"
    print(f"\n{label}: mean ratio to the per-sample smallest distortion found")
    print(f"{'network':16s}" + "".join(f"{m:>10s}" for m in METHODS[p]))
    for j, name in enumerate(models):
        print(f"{name:16s}" + "".join(f"{r:10.3f}" for r in ratio[:, j]))
    print(f"{'mean':16s}" + "".join(f"{r:10.3f}" for r in ratio.mean(1)))
    print(f"{'worst':16s}" + "".join(f"{r:10.3f}" for r in ratio.max(1)))
    print(f"{'time (s)':16s}" + "".join(f"{seconds[m]:10.1f}" for m in METHODS[p]))
    print(f"{'failures':16s}" + "".join(f"{failed[i].mean():10.3f}" for i in range(len(D))))
