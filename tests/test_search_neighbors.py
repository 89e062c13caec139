"""The kernels of skrob/_search/neighbors.py on their own, against float64 brute force."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist

from skrob._search.neighbors import nearest_in_groups, nearest_other_label
from tests._reference import assert_exact_order, brute_dist, brute_reach
from tests.conftest import make_tricky_data


@pytest.mark.parametrize("metric", ["euclidean", "cityblock"])
@pytest.mark.parametrize("batch_size", [None, 41])
def test_nearest_other_label_partner_attains_the_reach(global_random_seed, metric, batch_size):
    rng = np.random.default_rng(global_random_seed)
    X, y = make_tricky_data(rng)
    reach, partner = nearest_other_label(X, y, metric=metric, batch_size=batch_size)
    assert_allclose(reach, brute_reach(X, y, metric), rtol=1e-12, atol=0)
    assert np.all(y[partner] != y)  # a differently labelled sample ...
    D = cdist(X, X, metric=metric)
    assert_allclose(D[np.arange(len(y)), partner], reach, rtol=1e-12, atol=0)  # ... at r


@pytest.mark.parametrize("metric", ["euclidean", "chebyshev"])
def test_nearest_in_groups_matches_brute_force(global_random_seed, metric):
    rng = np.random.default_rng(global_random_seed)
    X, y = make_tricky_data(rng)
    Q = np.vstack([X[:40] + 1e-3 * rng.normal(size=(40, X.shape[1])), X[40:60]])
    dist, arg = nearest_in_groups(Q, X, y, 3, metric=metric, batch_size=16)
    D = cdist(Q, X, metric=metric)
    expected = np.stack([D[:, y == k].min(axis=1) for k in range(3)], axis=1)
    assert_allclose(dist, expected, rtol=1e-12, atol=0)
    assert_array_equal(y[arg], np.broadcast_to(np.arange(3), arg.shape))
    assert_allclose(np.take_along_axis(D, arg, axis=1), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("metric", ["euclidean", "cityblock"])
@pytest.mark.parametrize("outlier", [None, 1e30])
def test_nearest_in_groups_leave_one_out(global_random_seed, metric, outlier):
    """exclude=arange(n): every query's own row is skipped, on every path."""
    rng = np.random.default_rng(global_random_seed)
    X, y = make_tricky_data(rng, n=120)
    if outlier is not None:
        X[7] = outlier  # the float64 path for the outlier's pairs
    dist, arg = nearest_in_groups(X, X, y, 3, metric=metric, exclude=np.arange(len(y)))
    D = brute_dist(X, X, metric)
    np.fill_diagonal(D, np.inf)
    expected = np.stack([D[:, y == k].min(axis=1) for k in range(3)], axis=1)
    assert_allclose(dist, expected, rtol=1e-12, atol=0)
    assert np.all(arg != np.arange(len(y))[:, None])


@pytest.mark.parametrize("n_jobs", [1, 2, 3])
@pytest.mark.parametrize(
    "make",
    [
        lambda rng: make_tricky_data(rng, n=500)[0],  # offset 50, copies, near-copies
        lambda rng: np.round(rng.normal(size=(700, 3)), 1),  # ties everywhere
        lambda rng: rng.normal(size=(400, 60)) * 1e-150,
    ],
)
def test_nearest_in_groups_and_order_is_both_searches(
    global_random_seed, n_jobs, make, monkeypatch
):
    # one pass of blocks for the nearest sample of each group and the neighbour lists:
    # small blocks (many of them, dealt to n_jobs tasks), lists from each block's rows
    # and, beyond its square part, its columns; both against brute force
    from skrob._search import knn
    from skrob._search.neighbors import nearest_in_groups_and_order

    monkeypatch.setattr(knn, "_BLOCK", 64)
    rng = np.random.default_rng(global_random_seed)
    X = make(rng)
    n, k = len(X), 9
    codes = rng.integers(0, 4, n)
    (dist, arg), (idx, copies) = nearest_in_groups_and_order(
        X, codes, 4, k, batch_size=48, n_jobs=n_jobs
    )
    D = brute_dist(X, X)
    np.fill_diagonal(D, np.inf)
    expected = np.stack([D[:, codes == g].min(axis=1) for g in range(4)], axis=1)
    assert_allclose(dist, expected, rtol=1e-12, atol=0)
    assert_allclose(np.take_along_axis(D, arg, axis=1), expected, rtol=1e-12, atol=0)
    assert_array_equal(codes[arg], np.broadcast_to(np.arange(4), arg.shape))
    assert_exact_order(X, idx, copies, k)  # the k nearest others, copies marked


def test_nearest_in_groups_and_order_leaves_outliers_to_the_two_searches():
    from skrob._search.neighbors import nearest_in_groups_and_order

    X = np.random.default_rng(0).normal(size=(100, 5))
    X[3] = 1e30
    assert nearest_in_groups_and_order(X, np.arange(100) % 2, 2, 5) is None
