"""Attacks and certified radii against the exact minimal L∞ distortion of small ReLU nets.

Four ReLU MLPs trained on scikit-learn's digits (pixels / 16, box [0, 1]; 64-24-16-10 with
seeds 0 and 1, 64-32-10 with seed 2, 64-16-16-10 with seed 3; 300 Adam steps, float64),
40 test digits each. The exact minimum is ``minimal_distortion(..., method="exact")``
(HiGHS MILP); against it, per method, the ratios over all correctly classified samples:
mean, median, 90th percentile, max, and the time (the methods run in one process, one
after the other). "fab" alone is what ``auto`` was before it gained the targeted runs::

    python benchmarks/bench_exact_relu.py
"""

import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits

from skrob.torch import certified_radius, minimal_distortion

warnings.filterwarnings("ignore")
torch.set_num_threads(2)
X, y = load_digits(return_X_y=True)
X = X / 16.0
nets = []
for seed, hidden in [(0, (24, 16)), (1, (24, 16)), (2, (32,)), (3, (16, 16))]:
    torch.manual_seed(seed)
    layers, width = [], 64
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    net = torch.nn.Sequential(*layers, torch.nn.Linear(width, 10)).double()
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    Xt, yt = torch.tensor(X[:1200]), torch.tensor(y[:1200])
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(Xt), yt).backward()
        opt.step()
    net.eval()
    Xte, yte = X[1200:1240], y[1200:1240]
    t0 = time.perf_counter()
    exact = minimal_distortion(net, Xte, yte, method="exact", time_limit=60.0, clip=(0.0, 1.0))
    print(
        f"net {seed} (64-{'-'.join(map(str, hidden))}-10): {np.isfinite(exact).sum()} correct, "
        f"exact in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    nets.append((net, Xte, yte, exact))

methods = {
    "auto": lambda n, a, b: minimal_distortion(n, a, b, clip=(0.0, 1.0)),
    "fab": lambda n, a, b: minimal_distortion(n, a, b, method="fab", clip=(0.0, 1.0)),
    "ifgsm": lambda n, a, b: minimal_distortion(n, a, b, method="ifgsm", clip=(0.0, 1.0)),
    "bim": lambda n, a, b: minimal_distortion(n, a, b, method="bim", clip=(0.0, 1.0)),
    "CROWN certified": lambda n, a, b: certified_radius(n, a, b, clip=(0.0, 1.0)),
    "IBP certified": lambda n, a, b: certified_radius(n, a, b, method="ibp", clip=(0.0, 1.0)),
}
for net, Xte, yte, _ in nets:  # warm-up: the first calls pay torch's one-time costs
    minimal_distortion(net, Xte[:4], yte[:4], clip=(0.0, 1.0))
print(
    f"{'method':16s} {'mean':>7s} {'median':>7s} {'p90':>7s} {'max':>7s} {'min':>7s} {'time s':>7s}"
)
for name, run in methods.items():
    ratios, seconds = [], 0.0
    for net, Xte, yte, exact in nets:
        t0 = time.perf_counter()
        d = run(net, Xte, yte)
        seconds += time.perf_counter() - t0
        ok = np.isfinite(exact)
        ratios.append(d[ok] / exact[ok])
    r = np.concatenate(ratios)
    print(
        f"{name:16s} {r.mean():7.4f} {np.median(r):7.4f} {np.percentile(r, 90):7.4f} "
        f"{r.max():7.4f} {r.min():7.4f} {seconds:7.2f}",
        flush=True,
    )
