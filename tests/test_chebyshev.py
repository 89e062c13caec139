"""The compiled Chebyshev kernel against scipy's cdist: the same values, bit for bit."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_array_equal
from scipy.spatial.distance import cdist

from skrob._search import chebyshev as module
from skrob._search.chebyshev import chebyshev


@pytest.mark.parametrize("n_a", [1, 15, 16, 17, 70])
@pytest.mark.parametrize("n_b", [1, 255, 256, 257, 600])
@pytest.mark.parametrize("d", [1, 7, 784])
def test_equals_cdist_across_tiles(n_a, n_b, d):
    rng = np.random.default_rng(n_a * 1000 + n_b + d)
    A, B = rng.normal(size=(n_a, d)), rng.normal(size=(n_b, d))
    assert_array_equal(chebyshev(A, B), cdist(A, B, "chebyshev"))


@pytest.mark.parametrize("scale", [5e-324, 1e-300, 1e-150, 1.0, 1e150, 1e300, 1.7e308])
def test_equals_cdist_over_the_finite_range(scale):
    """Subnormal differences, differences that overflow to inf, ties, mixed signs."""
    rng = np.random.default_rng(0)
    A = rng.uniform(-1, 1, size=(40, 33)) * scale
    B = np.vstack([A[:10], -A[10:30], rng.uniform(-1, 1, size=(300, 33)) * scale])
    B[5] = np.nextafter(B[5], np.inf)  # one ulp from a listed row
    out = chebyshev(A, B)
    assert_array_equal(out, cdist(A, B, "chebyshev"))
    assert (np.delete(out[:10, :10].diagonal(), 5) == 0).all()
    if scale == 1.7e308:
        assert np.isinf(out).any()  # |a - b| overflowed, as in cdist


def test_non_finite_inputs_as_scipy():
    rng = np.random.default_rng(1)
    A, B = rng.normal(size=(20, 9)), rng.normal(size=(30, 9))
    A[0, 3], A[1, :] = np.nan, np.nan
    A[2, 4], B[7, 4] = np.inf, np.inf  # inf - inf: a NaN difference
    B[8, 0] = -np.inf
    assert_array_equal(chebyshev(A, B), cdist(A, B, "chebyshev"))


def test_layouts_and_dtypes():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 50)).astype(np.float32)
    ref = cdist(X[::2, ::3], X[:, ::3], "chebyshev")  # cdist works in float64 too
    assert_array_equal(chebyshev(X[::2, ::3], X[:, ::3]), ref)
    assert_array_equal(chebyshev(np.asfortranarray(X[::2, ::3]), X[:, ::3]), ref)
    with pytest.raises(ValueError, match="as many columns"):
        chebyshev(X, X[:, :3])


def test_small_blocks_go_to_cdist(monkeypatch):
    """Below _MIN_ROWS rows the kernel is not used; at it, it is."""
    calls = []
    monkeypatch.setattr(
        module, "_kernel", lambda: lambda *a: calls.append(1) or np.zeros(a[2].shape)
    )
    X = np.ones((module._MIN_ROWS, 3))
    chebyshev(X[:-1], X)
    assert calls == []
    chebyshev(X, X)
    assert calls == [1]


floats = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(16, 24), st.integers(1, 5)), elements=floats),
    st.integers(1, 300),
)
def test_equals_cdist_property(A, n_b):
    B = np.resize(A[::-1] * 0.5, (n_b, A.shape[1]))
    assert_array_equal(chebyshev(A, B), cdist(A, B, "chebyshev"))
