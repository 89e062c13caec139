"""Attacks and certified radii against the exact minimal distortion of a small ReLU net.

A 64-24-16-10 ReLU MLP trained on scikit-learn's digits (pixels / 16, box [0, 1], seed 0,
300 Adam steps, float64), 40 test digits. For L∞, skrob's ``auto`` attack and CROWN's
certified radius are compared with the exact minimum (``minimal_distortion(...,
method="exact")``, HiGHS MILP): the ratios per sample, their mean, 90th percentile and max,
and the time of each::

    python benchmarks/bench_exact_relu.py [--n-samples 40] [--seed 0]
"""

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import load_digits

from skrob.torch import certified_radius, minimal_distortion

parser = argparse.ArgumentParser()
parser.add_argument("--n-samples", type=int, default=40)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
torch.manual_seed(args.seed)
torch.set_num_threads(2)

X, y = load_digits(return_X_y=True)
X = X / 16.0
net = torch.nn.Sequential(
    torch.nn.Linear(64, 24),
    torch.nn.ReLU(),
    torch.nn.Linear(24, 16),
    torch.nn.ReLU(),
    torch.nn.Linear(16, 10),
).double()
opt = torch.optim.Adam(net.parameters(), 1e-2)
Xt, yt = torch.tensor(X[:1200]), torch.tensor(y[:1200])
for _ in range(300):
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(Xt), yt).backward()
    opt.step()
net.eval()
Xte, yte = X[1200 : 1200 + args.n_samples], y[1200 : 1200 + args.n_samples]

timings = {}
t0 = time.perf_counter()
exact = minimal_distortion(net, Xte, yte, method="exact", time_limit=60.0)
timings["exact"] = time.perf_counter() - t0
results = {}
for name, run in {
    "auto": lambda: minimal_distortion(net, Xte, yte),
    "ifgsm": lambda: minimal_distortion(net, Xte, yte, method="ifgsm"),
    "bim": lambda: minimal_distortion(net, Xte, yte, method="bim"),
    "CROWN certified": lambda: certified_radius(net, Xte, yte),
    "IBP certified": lambda: certified_radius(net, Xte, yte, method="ibp"),
}.items():
    t0 = time.perf_counter()
    results[name] = run()
    timings[name] = time.perf_counter() - t0
ok = np.isfinite(exact)
print(f"{ok.sum()} correctly classified of {len(yte)}; exact programs: {timings['exact']:.1f} s")
print(
    f"{'method':16s} {'mean ratio':>10s} {'median':>8s} {'p90':>8s} {'max':>8s} {'min':>8s} "
    f"{'time s':>7s}"
)
for name, d in results.items():
    r = d[ok] / exact[ok]
    print(
        f"{name:16s} {r.mean():10.4f} {np.median(r):8.4f} {np.percentile(r, 90):8.4f} "
        f"{r.max():8.4f} {r.min():8.4f} {timings[name]:7.2f}"
    )
