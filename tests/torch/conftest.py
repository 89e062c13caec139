import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # much faster for the small nets of these tests
