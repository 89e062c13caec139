"""The GPU paths in one go: correctness against the CPU and timings, small enough for minutes.

On ``--device`` (default: "cuda" when torch sees one, else "cpu", which checks the
script and the code paths):

1. the exact sample-robustness kernel (``sample_robustness(device=...)``) on Fashion-MNIST
   (or synthetic clustered data): identical to the CPU kernel, and the time of each;
2. LO (``skrob.torch.laplacian``, exact) of a LeNet-size CNN (tanh, average pooling):
   relative difference to the CPU values and the time of each;
3. ``minimal_distortion(method="auto")`` in L∞ and L2 on a ReLU perceptron and the same
   CNN: mean distortion on each device, relative difference, time of each.

The nets are trained for one short epoch on the CPU (seeded) and copied to the device,
so both devices attack the same weights. Results on a GPU differ from the CPU's in
float32 rounding only: the kernel's float64 re-scoring makes it bit-identical, LO agrees
to ~1e-5, and attacks (iterative) to a small relative difference in the mean.

    python benchmarks/bench_gpu.py                      # the machine's GPU, else the CPU
    python benchmarks/bench_gpu.py --device cpu --n 5000 --n-attack 64   # CI's check
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from skrob import sample_robustness
from skrob.torch import laplacian, minimal_distortion

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from _common import lenet, perceptron  # noqa: E402


def timed(func, *args, sync=None, **kwargs):
    if sync is not None:
        sync()
    t = time.perf_counter()
    out = func(*args, **kwargs)
    if sync is not None:
        sync()
    return out, time.perf_counter() - t


def load(n, seed=0, data_home=None):
    try:
        from skrob.datasets import load_fashion_mnist

        X, y = load_fashion_mnist(return_X_y=True, data_home=data_home)
        name = "Fashion-MNIST"
    except FileNotFoundError:
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 10, max(n, 1000))
        centers = rng.normal(size=(10, 32))
        Z = centers[y] + rng.normal(size=(len(y), 32))
        X = (Z @ rng.normal(size=(32, 784)) / 32 + 0.5).clip(0, 1).astype(np.float32)
        name = "synthetic"
    perm = np.random.default_rng(seed).permutation(len(y))[:n]
    return X[perm], y[perm], name


def train(net, X, y, epochs=1, seed=0):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(epochs):
        for s in range(0, len(y), 128):
            opt.zero_grad()
            nn.functional.cross_entropy(net(Xt[s : s + 128]), yt[s : s + 128]).backward()
            opt.step()
    return net.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=60_000, help="samples of the kernel")
    parser.add_argument("--n-lo", type=int, default=256, help="samples of LO")
    parser.add_argument("--n-attack", type=int, default=256, help="samples attacked")
    parser.add_argument("--n-train", type=int, default=10_000, help="training images")
    parser.add_argument(
        "--data-home", default=None, help="a folder with Fashion-MNIST's four IDX files"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (torch)"
    print(f"device: {args.device} ({name}); torch {torch.__version__}")
    failures = []

    # 1. The exact kernel.
    X, y, data = load(args.n, data_home=args.data_home)
    R_cpu, t_cpu = timed(sample_robustness, X, y)
    sample_robustness(X[:2000], y[:2000], device=device)  # warm-up: context, kernels
    R_dev, t_dev = timed(sample_robustness, X, y, device=device, batch_size=8192, sync=sync)
    same = np.array_equal(R_cpu, R_dev)
    failures += [] if same else ["kernel: results differ"]
    print(f"\n1. exact kernel, {data}, n = {len(y):,}, d = 784")
    print(f"   CPU (numpy, every core): {t_cpu:8.2f} s")
    print(f"   {args.device:<22}: {t_dev:8.2f} s   ({t_cpu / t_dev:.1f}x); identical: {same}")

    # Nets, trained once on the CPU.
    Xtr, ytr, _ = load(args.n_train, seed=1, data_home=args.data_home)
    images = Xtr.reshape(-1, 1, 28, 28)
    nets = {
        "perceptron (ReLU)": train(perceptron(), images, ytr),
        "LeNet (tanh, avg-pool)": train(lenet(), images, ytr),
    }
    Xq, yq, _ = load(max(args.n_lo, args.n_attack), seed=2, data_home=args.data_home)
    Xq = Xq.reshape(-1, 1, 28, 28)

    # 2. LO.
    net = nets["LeNet (tanh, avg-pool)"]
    lo_cpu, t_lo_cpu = timed(laplacian, net, Xq[: args.n_lo])
    net_dev = net.to(device)
    laplacian(net_dev, Xq[:8], device=device)  # warm-up
    lo_dev, t_lo_dev = timed(laplacian, net_dev, Xq[: args.n_lo], device=device, sync=sync)
    net.to("cpu")
    rel = float(np.max(np.abs(lo_dev - lo_cpu)) / np.max(np.abs(lo_cpu)))
    failures += [] if rel < 1e-3 else [f"LO: relative difference {rel:.1e}"]
    print(f"\n2. LO (exact), LeNet, {args.n_lo} images")
    print(f"   CPU: {t_lo_cpu:7.2f} s; {args.device}: {t_lo_dev:7.2f} s "
          f"({t_lo_cpu / t_lo_dev:.1f}x); max |diff| / max |LO| = {rel:.1e}")  # fmt: skip

    # 3. Attacks.
    print(f"\n3. minimal_distortion(method='auto'), {args.n_attack} images")
    for label, net in nets.items():
        for norm in (np.inf, 2):
            Xa, ya = Xq[: args.n_attack], yq[: args.n_attack]
            d_cpu, t_a_cpu = timed(minimal_distortion, net, Xa, ya, norm=norm, clip=(0.0, 1.0))
            net_dev = net.to(device)
            d_dev, t_a_dev = timed(
                minimal_distortion,
                net_dev,
                Xa,
                ya,
                norm=norm,
                clip=(0.0, 1.0),
                device=device,
                sync=sync,
            )
            net.to("cpu")
            # not flipped (inf) is left out of the means, as misclassified (NaN) is
            d_cpu = np.where(np.isinf(d_cpu), np.nan, d_cpu)
            d_dev = np.where(np.isinf(d_dev), np.nan, d_dev)
            if np.array_equal(np.isnan(d_cpu), np.isnan(d_dev)) and np.isnan(d_cpu).all():
                print(f"   {label:<24}: no image both classified correctly and flipped")
                continue
            m_cpu, m_dev = np.nanmean(d_cpu), np.nanmean(d_dev)
            gap = abs(m_dev - m_cpu) / m_cpu
            failures += [] if gap < 0.05 else [f"attack {label} L{norm}: means differ {gap:.1%}"]
            print(
                f"   {label:<24} L{'inf' if norm == np.inf else 2:<3}: mean {m_cpu:.4f} (CPU) "
                f"{m_dev:.4f} ({args.device}), {gap:.1%} apart; time {t_a_cpu:6.2f} s / "
                f"{t_a_dev:6.2f} s ({t_a_cpu / t_a_dev:.1f}x)"
            )
    if failures:
        raise SystemExit("FAILED: " + "; ".join(failures))
    print("\nall checks passed")


if __name__ == "__main__":
    main()
