"""The exact kernel on a torch device: the same results as the CPU kernel, bit for bit
(the device only chooses candidates; the float64 re-scoring is the same)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from skrob import SampleRobustnessTransformer, sample_robustness  # noqa: E402
from tests.conftest import make_tricky_data  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scale", [1.0, 1e-300, 1e300])
def test_device_kernel_equals_the_cpu_kernel(device, scale, global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    X, y = make_tricky_data(rng, n=2500, d=12, n_classes=4)
    X = X * scale
    ref = sample_robustness(X, y, n_jobs=1)
    got = sample_robustness(X, y, device=device, batch_size=200)
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("device", DEVICES)
def test_device_kernel_with_an_outlier_and_the_transformer(device):
    rng = np.random.default_rng(0)
    X, y = make_tricky_data(rng, n=1500, d=8)
    X[3] *= 1e6  # takes the float64 outlier path, the rest the device
    ref = SampleRobustnessTransformer(n_jobs=1).fit(X, y)
    est = SampleRobustnessTransformer(device=device, batch_size=128).fit(X, y)
    np.testing.assert_array_equal(est.robustness_, ref.robustness_)
    Q = X[:300] + 0.05
    np.testing.assert_array_equal(est.transform(Q), ref.transform(Q))
    np.testing.assert_array_equal(est.fit_transform(X, y), ref.fit_transform(X, y))


def test_device_errors_name_the_argument():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 3)), rng.integers(0, 2, 50)
    with pytest.raises(ValueError, match="device='tpu7' is not a torch device"):
        sample_robustness(X, y, device="tpu7")
    with pytest.raises(ValueError, match="device=3.5 is not a torch device"):
        sample_robustness(X, y, device=3.5)
    with pytest.raises(ValueError, match="exact Euclidean kernel for class labels"):
        sample_robustness(X, X[:, 0], task="regression", device="cpu")
    with pytest.raises(ValueError, match="exact Euclidean kernel for class labels"):
        sample_robustness(X, y, metric="manhattan", device="cpu")
    with pytest.raises(ValueError, match="takes algorithm='exact'"):
        sample_robustness(X, y, algorithm="approximate", device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            sample_robustness(X, y, device="cuda")


def test_auto_stays_exact_on_a_device(monkeypatch):
    """Above the inverted lists' threshold, "auto" with a device is the exact kernel."""
    import importlib

    sr = importlib.import_module("skrob.sample_robustness")
    monkeypatch.setattr(sr, "AUTO_APPROXIMATE_MIN_SAMPLES", 100)
    rng = np.random.default_rng(0)
    X, y = make_tricky_data(rng, n=800, d=6)
    ref = sample_robustness(X, y, algorithm="exact")
    np.testing.assert_array_equal(sample_robustness(X, y, device="cpu"), ref)
    est = SampleRobustnessTransformer(device="cpu").fit(X, y)
    np.testing.assert_array_equal(est.robustness_, ref)


needs_operation_settings = pytest.mark.skipif(
    not hasattr(torch.backends.cuda.matmul, "fp32_precision"),
    reason="torch < 2.9 has no per-operation precision settings",
)


def _leaves():
    from skrob._device import _precision_objects

    return [leaf.fp32_precision for leaf in _precision_objects()]


@needs_operation_settings
def test_full_float32_switches_reduced_products_off_and_restores_the_settings(
    restore_precision,
):
    from skrob._device import full_float32, reduced_float32_unit

    torch.set_float32_matmul_precision("medium")  # the legacy setting
    torch.backends.mkldnn.conv.fp32_precision = "bf16"  # a per-operation one
    before = _leaves()
    assert reduced_float32_unit("cpu") == 2.0**-7
    assert reduced_float32_unit("cuda") == 2.0**-10
    with full_float32():
        assert reduced_float32_unit("cpu") == 0.0
        assert reduced_float32_unit("cuda") == 0.0
    assert _leaves() == before
    with pytest.raises(RuntimeError), full_float32():  # restored on errors too
        raise RuntimeError
    assert _leaves() == before


@needs_operation_settings
def test_reduced_float32_unit_reads_each_setting(restore_precision):
    from skrob._device import reduced_float32_unit

    backends = torch.backends
    assert reduced_float32_unit("cpu") == 0.0  # torch's defaults
    assert reduced_float32_unit("cuda", convolutions=False) == 0.0
    assert reduced_float32_unit("cuda") == 2.0**-10  # cuDNN's convolutions in TF32
    assert reduced_float32_unit("meta") == 0.0
    backends.cudnn.conv.fp32_precision = "ieee"
    assert reduced_float32_unit("cuda") == 0.0
    backends.cuda.matmul.fp32_precision = "tf32"
    assert reduced_float32_unit("cuda", convolutions=False) == 2.0**-10
    assert reduced_float32_unit("cpu") == 0.0
    backends.mkldnn.matmul.fp32_precision = "bf16"
    assert reduced_float32_unit("cpu", convolutions=False) == 2.0**-7
    backends.mkldnn.matmul.fp32_precision = "none"  # inherits from mkldnn
    backends.mkldnn.fp32_precision = "bf16"
    assert reduced_float32_unit("cpu", convolutions=False) == 2.0**-7
    backends.mkldnn.fp32_precision = "none"
    assert reduced_float32_unit("cpu") == 0.0
    torch.set_float32_matmul_precision("high")  # the legacy setting writes the new ones
    assert reduced_float32_unit("cpu") == 2.0**-10


@pytest.mark.parametrize("device", DEVICES)
def test_laplacian_is_computed_in_full_float32_whatever_the_settings(device, restore_precision):
    """LO's second derivatives in bfloat16 or TF32 would lose their digits: they run in
    full float32, so the result does not depend on torch's precision settings."""
    from torch import nn

    from skrob.torch import laplacian

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(256, 64), nn.Tanh(), nn.Linear(64, 5)).to(device)
    X = torch.rand(24, 256)
    torch.set_float32_matmul_precision("highest")
    ref = laplacian(net, X, device=device)
    torch.set_float32_matmul_precision("medium" if device == "cpu" else "high")
    np.testing.assert_array_equal(laplacian(net, X, device=device), ref)
