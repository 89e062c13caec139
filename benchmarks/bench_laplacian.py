"""LO per sample: the paper's full Hessian then trace, against skrob's exact and Hutchinson.

Per model, in one run, on the same random inputs:

1. the paper's approach: ``torch.autograd.functional.hessian`` (its defaults) of the
   predicted-class probability, one sample at a time, then the trace;
2. ``skrob.torch.laplacian(method="exact")`` on a batch (forward-over-forward for smooth
   nets; the Jacobian route for piecewise-linear ones);
3. ``method="hutchinson"`` with 64 probes, and its relative error against 2.

Models: a LeNet-size CNN on 1x28x28 (tanh + average pooling, smooth; and the same with
ReLU + max pooling) and a small ResNet-style CNN on 3x32x32 (tanh). Target: exact >= 10x
faster per sample than the full Hessian on the LeNet-size model on CPU.

    python benchmarks/bench_laplacian.py [--device cpu|cuda] [--batch 32]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from skrob.torch import laplacian

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from _common import lenet

parser = argparse.ArgumentParser()
parser.add_argument("--device", default="cpu")
parser.add_argument("--batch", type=int, default=32, help="samples for skrob")
parser.add_argument("--hessian-samples", type=int, default=3, help="samples for the baseline")
args = parser.parse_args()
device = torch.device(args.device)
torch.manual_seed(0)


class Block(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return torch.tanh(x + self.conv2(torch.tanh(self.conv1(x))))


def small_resnet():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.Tanh(),
        Block(16),
        nn.AvgPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.Tanh(),
        Block(32),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 8 * 8, 10),
    )


def full_hessian_trace(net, x):
    c = net(x[None]).argmax(1).item()
    H = torch.autograd.functional.hessian(lambda z: torch.softmax(net(z[None]), -1)[0, c], x)
    return H.reshape(x.numel(), x.numel()).trace().item()


def bench(name, net, shape):
    net = net.to(device).eval()
    X = torch.rand((args.batch,) + shape, device=device)
    laplacian(net, X[:2])  # warm-up
    k = args.hessian_samples
    t = time.perf_counter()
    reference = [full_hessian_trace(net, X[i]) for i in range(k)]
    t_full = (time.perf_counter() - t) / k
    t = time.perf_counter()
    exact = laplacian(net, X)
    t_exact = (time.perf_counter() - t) / len(X)
    t = time.perf_counter()
    hutch = laplacian(net, X, method="hutchinson", n_probes=64, random_state=0)
    t_hutch = (time.perf_counter() - t) / len(X)
    agree = np.max(np.abs(exact[:k] - reference) / np.maximum(np.abs(reference), 1e-12))
    rel = np.median(np.abs(hutch - exact) / np.maximum(np.abs(exact), 1e-12))
    print(
        f"{name} ({'x'.join(map(str, shape))}, {device}):\n"
        f"  full Hessian + trace: {t_full * 1e3:9.1f} ms/sample ({k} samples)\n"
        f"  skrob exact:          {t_exact * 1e3:9.1f} ms/sample ({len(X)} samples) "
        f"-> {t_full / t_exact:.1f}x faster; max relative difference {agree:.1e}\n"
        f"  skrob hutchinson(64): {t_hutch * 1e3:9.1f} ms/sample -> {t_full / t_hutch:.1f}x "
        f"faster; median relative error {rel:.2f}"
    )


print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
bench("LeNet-size CNN, tanh + average pooling", lenet(nn.Tanh, nn.AvgPool2d), (1, 28, 28))
bench("LeNet-size CNN, ReLU + max pooling", lenet(nn.ReLU, nn.MaxPool2d), (1, 28, 28))
bench("small ResNet-style CNN, tanh", small_resnet(), (3, 32, 32))
