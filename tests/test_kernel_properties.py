"""Properties of the exact kernels over the whole finite range (hypothesis).

Random finite data with magnitudes from 1e-150 to 1e150, single outliers far from the
rest, exact and near duplicates, both tasks: the exact results equal a float64 brute
force (``tests._reference``, which scales every difference, so it is itself exact over
the range); regression R does not change when y is rescaled; the reach scales with X.
"""

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from skrob import SampleRobustnessTransformer, sample_robustness
from skrob._search.neighbors import nearest_in_groups, nearest_other_label
from tests._reference import brute_dist, brute_reach, brute_robustness

RTOL = 1e-6  # the contract (DESIGN §9); the kernels are exact to ~1e-15 in practice


@st.composite
def datasets(draw, regression=False):
    """(X, y): a small random set, its scale, an outlier, duplicates, near-duplicates."""
    n = draw(st.integers(4, 40))
    d = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = 10.0 ** draw(st.integers(-150, 150))
    X = rng.normal(size=(n, d)) * scale
    if draw(st.booleans()):  # one outlier, up to 1e150 times further out (or in)
        X[draw(st.integers(0, n - 1))] = rng.normal(size=d) * 10.0 ** draw(st.integers(-150, 150))
    if draw(st.booleans()):  # an exact duplicate
        i, j = rng.choice(n, 2, replace=False)
        X[j] = X[i]
    if draw(st.booleans()):  # a near-duplicate, relative distance 1e-12 .. 1e-6
        i, j = rng.choice(n, 2, replace=False)
        X[j] = X[i] * (1 + 10.0 ** draw(st.integers(-12, -6)))
    if regression:
        y = rng.normal(size=n) * 10.0 ** draw(st.integers(-150, 150))
        if np.unique(y).size < 2:
            y[0] = y[1] + abs(y[1]) + 1.0
    else:
        y = rng.integers(0, 3, n)
        y[:2] = [0, 1]  # at least two classes
    return X, y


@settings(max_examples=150, deadline=None)
@given(data=datasets())
@example(
    data=(
        np.r_[np.random.default_rng(0).normal(size=(30, 3)), [[1e30, 0, 0]]],
        np.r_[np.arange(30) % 2, 0],
    )
)
@example(data=(np.random.default_rng(1).normal(size=(20, 2)) * 1e-200, np.arange(20) % 3))
def test_classification_equals_brute_force(data):
    X, y = data
    reach, partner = nearest_other_label(X, y)
    expected = brute_reach(X, y)
    assert_allclose(reach, expected, rtol=RTOL, atol=0)
    assert np.all(y[partner] != y)
    assert_allclose(brute_dist(X, X)[np.arange(len(y)), partner], expected, rtol=RTOL, atol=0)
    R = sample_robustness(X, y, task="classification")
    assert_allclose(R, brute_robustness(X, y, "classification"), rtol=RTOL, atol=0)


@settings(max_examples=100, deadline=None)
@given(data=datasets(), queries=st.integers(0, 2**32 - 1))
def test_nearest_in_groups_equals_brute_force(data, queries):
    X, y = data
    rng = np.random.default_rng(queries)
    Q = np.vstack([X[rng.choice(len(X), 5)] * (1 + 1e-9), rng.normal(size=(3, X.shape[1]))])
    Q *= np.abs(X).max() or 1.0
    dist, arg = nearest_in_groups(Q, X, y, 3)
    D = brute_dist(Q, X)
    expected = np.stack([D[:, y == k].min(axis=1, initial=np.inf) for k in range(3)], axis=1)
    assert_allclose(dist, expected, rtol=RTOL, atol=0)
    present = np.isfinite(expected)
    assert np.all((arg >= 0) == present)
    assert_allclose(np.take_along_axis(D, arg, axis=1)[present], expected[present], rtol=RTOL)


@settings(max_examples=100, deadline=None)
@given(data=datasets(), batch=st.integers(1, 40))
def test_leave_one_out_in_groups_equals_brute_force(data, batch):
    """nearest_in_groups(X, X, exclude=arange(n)) visits each pair once (both samples'
    minima from one block); the same distances as brute force and as the search of a
    copy of X (every pair in both directions)."""
    X, y = data
    n = len(y)
    dist, arg = nearest_in_groups(X, X, y, 3, exclude=np.arange(n), batch_size=batch)
    D = brute_dist(X, X)
    np.fill_diagonal(D, np.inf)
    expected = np.stack([D[:, y == k].min(axis=1, initial=np.inf) for k in range(3)], axis=1)
    assert_allclose(dist, expected, rtol=RTOL, atol=0)
    present = np.isfinite(expected)
    assert np.all((arg >= 0) == present)
    assert np.all(arg != np.arange(n)[:, None])
    assert_allclose(np.take_along_axis(D, arg, axis=1)[present], expected[present], rtol=RTOL)
    copy_dist, _ = nearest_in_groups(X, X.copy(), y, 3, exclude=np.arange(n))
    assert_array_equal(dist, copy_dist)


@settings(max_examples=100, deadline=None)
@given(data=datasets(regression=True))
@example(data=(np.random.default_rng(0).normal(size=(25, 2)) * 1e160, np.arange(25.0)))
def test_regression_equals_brute_force(data):
    X, y = data
    R = sample_robustness(X, y, task="regression")
    assert_allclose(R, brute_robustness(X, y, "regression"), rtol=RTOL, atol=0)


@settings(max_examples=60, deadline=None)
@given(data=datasets(regression=True), power=st.integers(-150, 150))
def test_regression_robustness_is_invariant_to_rescaling_y(data, power):
    X, y = data
    R = sample_robustness(X, y, task="regression")
    for c in (10.0**power, -(2.0 ** (power % 64))):
        assert_allclose(sample_robustness(X, y * c, task="regression"), R, rtol=1e-9, atol=0)


@settings(max_examples=60, deadline=None)
@given(data=datasets(), power=st.integers(-400, 400))
def test_reach_scales_with_X(data, power):
    """Scaling by a power of two is exact, so the reach must scale to rounding."""
    X, y = data
    c = 2.0**power
    with np.errstate(over="ignore", under="ignore"):
        Xc = X * c
    if not np.isfinite(Xc).all():
        return  # X * c is not finite: no input
    base = SampleRobustnessTransformer(task="classification").fit(X, y).reach_
    scaled = SampleRobustnessTransformer(task="classification").fit(Xc, y).reach_
    with np.errstate(over="ignore"):
        target = base * c
    if (X != 0).any() and np.abs(X[X != 0] * c).min() < 1e-290:
        return  # X * c lost values to underflow: another input
    finite = np.isfinite(target) & (target > 1e-290)  # where float64 holds both
    assert_allclose(scaled[finite], target[finite], rtol=1e-12, atol=0)


@settings(max_examples=100, deadline=None)
@given(data=datasets(), chunk=st.integers(1, 50))
@example(data=(np.array([[1.7e308, -1.7e308], [-1.7e308, 1e-300], [0.0, 5e-324]]), None), chunk=1)
def test_centred_rows_equal_the_centred_whole(data, chunk):
    """centred_unit's halves (the estimator centres each on its own, with the scaling of
    all of X, chunk by chunk) are the rows of the whole centred X, every entry below 1."""
    from skrob._search.exact import centred_unit

    X = data[0]
    Z, scaling = centred_unit(X, chunk=chunk)
    assert np.isfinite(Z).all() and (np.abs(Z) < 1).all()
    rows = np.flatnonzero(np.arange(X.shape[0]) % 3 != 1)
    assert_array_equal(centred_unit(X, rows, scaling)[0], Z[rows])
    assert_array_equal(centred_unit(X, rows, chunk=chunk)[1][0], scaling[0])
    before = X.copy()
    assert_array_equal(centred_unit(X, slice(1, None), scaling)[0], Z[1:])
    assert_array_equal(X, before)  # rows given as a slice of X: X is not written to
    g, mean, h = scaling
    assert_array_equal(Z, (X * g - mean) * h)
    mask = np.arange(X.shape[0]) % 2 == 0  # a boolean mask, in chunks of any size
    assert_array_equal(centred_unit(X, mask, scaling, chunk=chunk)[0], Z[mask])
    # float32 X: converted chunk by chunk, the float64 result of its float64 copy
    X32 = X.astype(np.float32)
    if np.isfinite(X32).all():
        Z32, scaling32 = centred_unit(X32, chunk=chunk)
        Z64, scaling64 = centred_unit(X32.astype(np.float64), chunk=chunk)
        assert Z32.dtype == np.float64
        assert_array_equal(Z32, Z64)
        assert_array_equal(scaling32[1], scaling64[1])
