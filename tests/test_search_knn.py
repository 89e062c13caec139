"""skrob/_search/knn.py (nearest neighbours, Euclidean) against float64 brute force."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.neighbors import NearestNeighbors

from skrob._label_issues import nearest_neighbours
from skrob._search.knn import k_nearest, neighbour_order
from tests._reference import assert_exact_order, brute_dist
from tests.conftest import make_tricky_data


def _brute_knn(Q, X, k, self_index=None):
    D = brute_dist(Q, X)
    if self_index is not None:
        D[np.arange(len(Q)), self_index] = np.inf
    return np.sort(D, axis=1)[:, :k], D


@pytest.mark.parametrize("k", [1, 3, 40])
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_leave_one_out_neighbours_match_brute_force(global_random_seed, k, n_jobs):
    rng = np.random.default_rng(global_random_seed)
    X, _ = make_tricky_data(rng)  # offset 50, copies and near-copies at 1e-7 and 1e-6
    ((dist, idx),) = k_nearest(X, X, k, self_index=np.arange(len(X)), n_jobs=n_jobs)
    expected, D = _brute_knn(X, X, k, self_index=np.arange(len(X)))
    assert_allclose(dist, expected, rtol=1e-12, atol=0)
    # the indices attain the distances, exclude the sample itself and are distinct
    assert_allclose(np.take_along_axis(D, idx, axis=1), expected, rtol=1e-12, atol=0)
    assert not np.any(idx == np.arange(len(X))[:, None])
    assert all(np.unique(row).size == k for row in idx)
    assert dist[0, 0] == 0 and dist[4, 0] == 0  # exact copies: exactly 0
    # nearest first, ties by the lower index
    assert np.all(np.diff(dist, axis=1) >= 0)
    tie = np.diff(dist, axis=1) == 0
    assert np.all(np.diff(idx, axis=1)[tie] > 0)


@pytest.mark.parametrize("scale", [1e-200, 1e-3, 1e150, 1e300])
def test_extreme_magnitudes_keep_float64_accuracy(global_random_seed, scale):
    rng = np.random.default_rng(global_random_seed)
    X = (rng.normal(size=(120, 4)) + 3.0) * scale
    X[7] = X[8]
    ((dist, _),) = k_nearest(X, X, 5, self_index=np.arange(120))
    expected, _ = _brute_knn(X, X, 5, self_index=np.arange(120))
    assert_allclose(dist, expected, rtol=1e-12, atol=0)
    assert dist[7, 0] == 0


def test_large_offset_small_differences():
    # differences of 0.1 on values near 1e8: centring would round them at 1e-8; the
    # near pairs are recomputed from the data as given
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 30)) * 1e8 + 1e8
    Q = X[:50] + 0.1
    ((dist, idx),) = k_nearest(Q, X, 3)
    expected, _ = _brute_knn(Q, X, 3)
    assert_allclose(dist, expected, rtol=1e-12, atol=0)
    assert_array_equal(idx[:, 0], np.arange(50))


def test_column_sets_search_each_subset(global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    X = rng.normal(size=(400, 12))
    Q = rng.normal(size=(60, 12))
    sets = [None, np.arange(0, 400, 3), rng.choice(400, 50, replace=False)]
    results = k_nearest(Q, X, 6, column_sets=sets)
    for cols, (dist, idx) in zip(sets, results, strict=True):
        cols = np.arange(400) if cols is None else cols
        expected, _ = _brute_knn(Q, X[cols], 6)
        assert_allclose(dist, expected, rtol=1e-12, atol=0)
        assert np.isin(idx, cols).all()
        assert_allclose(brute_dist(Q, X)[np.arange(60)[:, None], idx], expected, rtol=1e-12)


def test_many_columns_take_the_sampled_bound_path(global_random_seed):
    # n >= 8k columns: the strided-sample bound is used; duplicates make ties at it
    rng = np.random.default_rng(global_random_seed)
    X = np.round(rng.normal(size=(3000, 3)), 1)  # many exact ties and copies
    ((dist, idx),) = k_nearest(X, X, 20, self_index=np.arange(3000))
    expected, D = _brute_knn(X, X, 20, self_index=np.arange(3000))
    assert_allclose(dist, expected, rtol=1e-12, atol=0)
    assert_allclose(np.take_along_axis(D, idx, axis=1), expected, rtol=1e-12, atol=0)


def test_lists_the_float32_bound_cannot_settle_are_searched_in_float64(
    global_random_seed, monkeypatch
):
    # 40 copies of one row: more equal distances than a list's slack, so the float32
    # lists of those rows are not proven and go to the float64 search; every list holds
    # the brute force's distances, nearest first, equal ones by the lower index
    from skrob._search import knn

    searched = []
    float64 = knn._k_nearest64

    def spy(A, B, k, *args):
        searched.append(A.shape[0])
        return float64(A, B, k, *args)

    monkeypatch.setattr(knn, "_k_nearest64", spy)
    rng = np.random.default_rng(global_random_seed)
    X = rng.normal(size=(300, 6))
    X[rng.choice(300, 40, replace=False)] = X[0]
    sets = [None, np.arange(0, 300, 2)]
    results = k_nearest(X, X, 5, self_index=np.arange(300), column_sets=sets)
    assert searched and 0 < searched[0] < 300  # the copies' rows only
    D = brute_dist(X, X)
    np.fill_diagonal(D, np.inf)
    for cols, (dist, idx) in zip(sets, results, strict=True):
        cols = np.arange(300) if cols is None else cols
        expected = np.sort(D[:, cols], axis=1)[:, :5]
        assert_allclose(dist, expected, rtol=1e-12, atol=0)
        assert_allclose(np.take_along_axis(D, idx, axis=1), expected, rtol=1e-12, atol=0)
        assert np.isin(idx, cols).all() and not np.any(idx == np.arange(300)[:, None])
        assert all(np.unique(row).size == 5 for row in idx)
        tie = np.diff(dist, axis=1) == 0
        assert tie.any() and np.all(np.diff(idx, axis=1)[tie] > 0)


@pytest.mark.parametrize("k", [1, 5, 40])
def test_neighbour_order_is_the_brute_force_order(global_random_seed, k):
    rng = np.random.default_rng(global_random_seed)
    X, _ = make_tricky_data(rng)  # offset 50, copies and near-copies at 1e-7 and 1e-6
    idx, copies = neighbour_order(X, k)
    assert_exact_order(X, idx, copies, k)
    assert copies[0, 0] and copies[1, 0] and copies[4, 0]


@pytest.mark.parametrize(
    "make",
    [
        # exact ties everywhere: lists the float32 bound cannot separate go to float64
        lambda rng: np.round(rng.normal(size=(2500, 3)), 1),
        # an outlier that widens every pair's error bound
        lambda rng: np.vstack([rng.normal(size=(400, 20)), [np.full(20, 1e6)]]),
        lambda rng: rng.normal(size=(300, 5)) * 1e-200,
        lambda rng: rng.normal(size=(300, 5)) * 1e8 + 1e9,
        lambda rng: rng.normal(size=(300, 200)),  # many features
        lambda rng: rng.normal(size=(30, 4)),  # k = n - 2: the lists hold nearly all
    ],
)
def test_neighbour_order_on_hard_data(global_random_seed, make):
    rng = np.random.default_rng(global_random_seed)
    X = make(rng)
    k = min(12, len(X) - 2)
    idx, copies = neighbour_order(X, k)
    assert_exact_order(X, idx, copies, k)


@pytest.mark.parametrize("n_jobs", [1, 2, 3])
def test_neighbour_order_over_many_blocks_and_tasks(global_random_seed, n_jobs, monkeypatch):
    # small blocks: 12 block rows dealt to n_jobs tasks, each with its own lists, merged;
    # the last block is narrower than the lists
    from skrob._search import knn

    monkeypatch.setattr(knn, "_BLOCK", 64)
    rng = np.random.default_rng(global_random_seed)
    X = rng.normal(size=(710, 10))
    X[10] = X[500]  # copies in different blocks and tasks
    X[700] = X[3]
    idx, copies = neighbour_order(X, 9, n_jobs=n_jobs)
    assert_exact_order(X, idx, copies, 9)
    assert copies[10, 0] and copies[500, 0] and copies[700, 0] and copies[3, 0]


@pytest.mark.parametrize(
    "metric, params",
    [("euclidean", None), ("l2", None), ("minkowski", None), ("minkowski", {"p": 2})],
)
@pytest.mark.parametrize("n_features", [8, 200])  # scikit-learn's search, skrob's kernel
def test_nearest_neighbours_euclidean_agrees_with_scikit_learn(metric, params, n_features):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, n_features))
    X[7] = X[3]
    idx, copies = nearest_neighbours(X, 7, metric=metric, metric_params=params)
    ref_dist, ref_idx = NearestNeighbors(n_neighbors=7).fit(X).kneighbors()
    assert_array_equal(idx, ref_idx)
    assert copies[3, 0] and copies[7, 0] and copies.sum() == 2


@pytest.mark.parametrize("metric", ["cityblock", "cosine"])
def test_nearest_neighbours_copies_are_equal_features(metric):
    # cosine puts proportional rows at distance 0: only equal rows are copies
    rng = np.random.default_rng(0)
    X = rng.random(size=(100, 4)) + 0.1
    X[5] = X[2]
    X[9] = 2 * X[2]
    idx, copies = nearest_neighbours(X, 3, metric=metric)
    assert_array_equal(np.flatnonzero(copies.any(axis=1)), [2, 5])


def test_neighbour_order_cuts_give_exact_sets(global_random_seed):
    # with cuts, the sets of the first c neighbours are exact at every cut c (what the
    # votes of label_issues read), and copies are still found
    rng = np.random.default_rng(global_random_seed)
    X, _ = make_tricky_data(rng, n=600)
    X = np.vstack([X, np.round(rng.normal(size=(600, 6)), 1)])  # ties at the cuts
    cuts = (3, 7, 12)
    idx, copies = neighbour_order(X, 12, cuts=cuts)
    D = brute_dist(X, X)
    np.fill_diagonal(D, np.inf)
    got = np.take_along_axis(D, idx, axis=1)
    expected = np.sort(D, axis=1)
    for c in cuts:  # the c nearest: the largest of them and their sum are the brute force's
        assert_allclose(got[:, :c].max(axis=1), expected[:, c - 1], rtol=1e-12, atol=0)
        assert_allclose(np.sort(got[:, :c], axis=1), expected[:, :c], rtol=1e-12, atol=0)
    assert_array_equal(copies, got == 0)
