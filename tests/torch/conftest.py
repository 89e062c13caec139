import pytest

try:
    import torch
except ImportError:  # the test modules skip themselves
    torch = None

if torch is not None:
    torch.set_num_threads(1)  # much faster for the small nets of these tests


@pytest.fixture
def restore_precision():
    """Tests that change torch's float32 precision settings leave them as they found them
    (the global matmul precision, then torch >= 2.9's per-operation settings)."""
    if torch is None:
        pytest.skip("torch is not installed")
    from skrob._device import _precision_objects

    precision = torch.get_float32_matmul_precision()
    leaves = [(leaf, leaf.fp32_precision) for leaf in _precision_objects()]
    cudnn_tf32 = None if leaves else torch.backends.cudnn.allow_tf32
    yield
    torch.set_float32_matmul_precision(precision)
    for leaf, value in leaves:
        leaf.fp32_precision = value
    if not leaves:  # pragma: no cover - torch < 2.9
        torch.backends.cudnn.allow_tf32 = cudnn_tf32
