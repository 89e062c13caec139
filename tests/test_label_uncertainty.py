import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from skrob.label_uncertainty import (
    IntrinsicRobustnessEstimator,
    knn_soft_labels,
    label_uncertainty,
)
from tests._reference import brute_force_regions

# --------------------------------------------------------------------------------------
# label_uncertainty and knn_soft_labels
# --------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    arrays(np.float64, (7, 4), elements=st.floats(0.0, 10.0)).filter(
        lambda a: (a.sum(axis=1) > 1e-3).all()
    ),
    st.lists(st.integers(0, 3), min_size=7, max_size=7),
)
def test_label_uncertainty_by_the_definition(counts, y):
    eta = counts / counts.sum(axis=1, keepdims=True)
    lu = label_uncertainty(eta, y)
    for i, label in enumerate(y):
        others = max(eta[i, j] for j in range(4) if j != label)
        assert lu[i] == pytest.approx(1 - eta[i, label] + others)
    assert np.all((lu >= 0) & (lu <= 2))
    assert_allclose(label_uncertainty(counts, y, normalize=True), lu)


def test_label_uncertainty_uses_the_dataset_label_not_the_argmax():
    eta = np.array([[0.7, 0.3], [0.7, 0.3], [0.5, 0.5], [1.0, 0.0]])
    assert_allclose(label_uncertainty(eta, [0, 1, 0, 1]), [0.6, 1.4, 1.0, 2.0])


def test_label_uncertainty_with_classes_and_predict_proba():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = LogisticRegression(max_iter=1000).fit(X, names)
    proba = model.predict_proba(X)
    lu = label_uncertainty(proba, names, classes=model.classes_)
    assert_allclose(lu, label_uncertainty(proba, y))
    # classes in another order than the columns
    shuffled = label_uncertainty(proba[:, [2, 0, 1]], names, classes=model.classes_[[2, 0, 1]])
    assert_allclose(shuffled, lu)


@pytest.mark.parametrize(
    "eta, y, kwargs, match",
    [
        ([[0.5, 0.6]], [0], {}, "sum to 1"),
        ([[1.5, -0.5]], [0], {}, "non-negative"),
        ([[0.0, 0.0]], [0], {"normalize": True}, "sums to 0"),
        ([[0.5, 0.5]], [2], {}, r"column indices in \[0, 2\)"),
        ([[0.5, 0.5]], ["a"], {"classes": ["b", "c"]}, "not in classes"),
        ([[0.5, 0.5]], [0], {"classes": [0, 1, 2]}, "one entry per column"),
        ([[1.0]], [0], {}, "at least two classes"),
        ([[0.5, 0.5], [0.5, 0.5]], [0], {}, "inconsistent numbers"),
        ([[np.nan, 0.5]], [0], {}, "NaN"),
    ],
)
def test_label_uncertainty_bad_input(eta, y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        label_uncertainty(eta, y, **kwargs)


def test_knn_soft_labels_against_brute_force():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = rng.choice(["a", "b", "c"], 80)
    eta = knn_soft_labels(X, y, n_neighbors=5)
    D = cdist(X, X)
    np.fill_diagonal(D, np.inf)
    nearest = np.argsort(D, axis=1, kind="stable")[:, :5]
    for i in range(80):
        for j, c in enumerate(["a", "b", "c"]):
            assert eta[i, j] == np.mean(y[nearest[i]] == c)
    with pytest.raises(ValueError, match="needs more than"):
        knn_soft_labels(X[:5], y[:5], n_neighbors=5)


# --------------------------------------------------------------------------------------
# IntrinsicRobustnessEstimator against a brute force
# --------------------------------------------------------------------------------------


def _assert_brute_force_regions(est, X, lu, params):
    """The fitted regions are those of the search over every centre and size."""
    Xa, lua = X[est.train_indices_], lu[est.train_indices_]
    regions, covered, reached = brute_force_regions(Xa, lua, **params)
    placed = [r for r in regions if r is not None]
    assert len(est.radii_) == len(placed) > 0
    for k, (i, radius) in enumerate(placed):
        assert_array_equal(est.centers_[k], Xa[i])
        assert est.radii_[k] == pytest.approx(radius, rel=1e-12)
    assert est.train_risk_ == covered.mean()
    assert est.train_adversarial_risk_ == reached.mean()


@pytest.mark.parametrize("norm", [2, np.inf])
@pytest.mark.parametrize("gamma", [0.0, 0.6])
def test_same_regions_as_the_brute_force(global_random_seed, norm, gamma):
    rng = np.random.default_rng(global_random_seed)
    X = np.vstack([rng.normal(size=(50, 3)), rng.normal(2.5, 0.7, size=(40, 3))])
    lu = np.clip(rng.normal(0.4, 0.3, 90) + 0.4 * (X[:, 0] > 1.2), 0, 2)
    params = dict(epsilon=0.4, alpha=0.2, gamma=gamma, norm=norm, n_regions=3, delta=0.05)
    est = IntrinsicRobustnessEstimator(**params, random_state=global_random_seed).fit(X, lu)
    _assert_brute_force_regions(est, X, lu, params)
    # The other half, directly from the regions.
    Xb = X[est.test_indices_]
    metric = "euclidean" if norm == 2 else "chebyshev"
    D = cdist(Xb, est.centers_, metric)
    assert est.risk_ == (D <= est.radii_).any(axis=1).mean()
    assert est.adversarial_risk_ == (D <= est.radii_ + 0.4).any(axis=1).mean()
    assert est.intrinsic_robustness_ == 1 - est.adversarial_risk_
    if gamma > 0:
        assert np.all(est.region_label_uncertainty_ >= gamma)


def test_label_uncertainty_constraint_moves_regions_to_uncertain_samples():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    lu = np.where(X[:, 0] > 1.0, 1.5, 0.05)  # uncertain samples sit in one tail
    free = IntrinsicRobustnessEstimator(0.3, alpha=0.05, gamma=0.0, random_state=0).fit(X, lu)
    constrained = IntrinsicRobustnessEstimator(0.3, alpha=0.05, gamma=1.0, random_state=0)
    constrained.fit(X, lu)
    assert constrained.train_label_uncertainty_ >= 1.0
    assert free.train_label_uncertainty_ < constrained.train_label_uncertainty_
    # Confining the error region to a tail forces a larger expansion: less robustness.
    assert constrained.train_adversarial_risk_ >= free.train_adversarial_risk_


def test_infeasible_round_warns_and_places_nothing():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2))
    lu = np.full(100, 0.1)
    est = IntrinsicRobustnessEstimator(0.2, alpha=0.1, gamma=0.5, n_regions=2, random_state=0)
    with pytest.warns(UserWarning, match="no further region placed"):
        with pytest.warns(UserWarning, match="intrinsic_robustness_ is NaN"):
            est.fit(X, lu)
    assert [r["status"] for r in est.rounds_] == ["infeasible"]
    assert est.centers_.shape == (0, 2)
    assert est.risk_ == 0 and not est.complete_
    assert np.isnan(est.intrinsic_robustness_) and np.isnan(est.label_uncertainty_)


def test_placement_stops_at_the_first_infeasible_round():
    """Later rounds could only try a subset of the same candidates: no repeats, no retries."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    lu = np.where(np.arange(200) % 9 == 0, 2.0, 0.0)  # few, scattered uncertain samples
    est = IntrinsicRobustnessEstimator(0.1, alpha=0.1, gamma=1.2, n_regions=4, random_state=0)
    with pytest.warns(UserWarning) as record:
        est.fit(X, lu)
    assert "Round 2: no centre" in str(record[0].message)
    assert [r["status"] for r in est.rounds_] == ["placed", "placed", "infeasible"]
    assert est.complete_ == (est.train_risk_ * len(est.train_indices_) >= 10)
    centers = [r["center"] for r in est.rounds_ if r["status"] == "placed"]
    assert len(set(centers)) == 2
    assert np.all(est.region_label_uncertainty_ >= 1.2)


def test_epsilon_zero_and_monotone_in_epsilon():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    lu = rng.uniform(0, 1, 300)
    risks = []
    for eps in (0.0, 0.2, 0.5, 1.0):
        est = IntrinsicRobustnessEstimator(eps, alpha=0.1, gamma=0.0, random_state=0).fit(X, lu)
        risks.append(est.train_adversarial_risk_)
        if eps == 0.0:
            assert est.train_adversarial_risk_ == est.train_risk_
    assert risks == sorted(risks)


def test_bad_input():
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match=r"lies in \[0, 2\]"):
        IntrinsicRobustnessEstimator(0.1).fit(X, np.full(50, 2.5))
    with pytest.raises(ValueError, match="NaN"):
        IntrinsicRobustnessEstimator(0.1).fit(np.where(X > 1, np.nan, X), np.zeros(50))
    with pytest.raises(ValueError, match="norm must be 2 or np.inf"):
        IntrinsicRobustnessEstimator(0.1, norm=1).fit(X, np.zeros(50))
    with pytest.raises(ValueError, match="epsilon"):
        IntrinsicRobustnessEstimator(-0.1).fit(X, np.zeros(50))
    with pytest.raises(ValueError, match="too few"):
        IntrinsicRobustnessEstimator(0.1).fit(X[:2], np.zeros(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        IntrinsicRobustnessEstimator(0.1, norm="inf", gamma=0, random_state=0).fit(X, np.zeros(50))


@pytest.mark.parametrize("scale", [1e-200, 1e-8, 1e-4, 3.0, 1e8, 1e200])
def test_intrinsic_robustness_is_unit_free(scale):
    """X and epsilon in other units (any magnitude): the same regions, the same estimate."""
    rng = np.random.default_rng(0)
    X, lu = rng.normal(size=(300, 4)), rng.uniform(0, 1, 300)
    params = dict(alpha=0.1, gamma=0.3, random_state=0)
    ref = IntrinsicRobustnessEstimator(0.5, **params).fit(X, lu)
    est = IntrinsicRobustnessEstimator(0.5 * scale, **params).fit(X * scale, lu)
    assert ref.complete_ and est.intrinsic_robustness_ == ref.intrinsic_robustness_
    assert_allclose(est.radii_ / scale, ref.radii_, rtol=1e-12)
    assert_allclose(est.centers_ / scale, ref.centers_, rtol=1e-15)


def test_label_errors_name_the_problem():
    eta = [[0.5, 0.5, 0.0]] * 2
    with pytest.raises(ValueError, match="classes must be distinct"):
        label_uncertainty(eta, [1, 0], classes=[1, 0, 1])
    with pytest.raises(ValueError, match="NaN"):
        label_uncertainty(eta, [np.nan, 0.0], classes=[1.0, 0.0, 2.0])
    X = np.random.default_rng(0).normal(size=(6, 2))
    with pytest.raises(ValueError, match=r"1-D\), got shape \(6, 2\)"):
        knn_soft_labels(X, np.zeros((6, 2)), n_neighbors=2)
    with pytest.raises(ValueError, match="mixes string"):
        knn_soft_labels(X, np.array([1, "a"] * 3, dtype=object), n_neighbors=2)


def test_knn_soft_labels_then_label_uncertainty_with_string_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = np.array(["cat", "dog", "emu"])[rng.integers(0, 3, 60)]
    lu = label_uncertainty(knn_soft_labels(X, y, n_neighbors=5), y)
    codes = np.unique(y, return_inverse=True)[1]
    assert_allclose(lu, label_uncertainty(knn_soft_labels(X, codes, n_neighbors=5), codes))
    with pytest.raises(ValueError, match="2 distinct labels"):
        label_uncertainty(np.full((4, 3), 1 / 3), np.array(["a", "b", "a", "b"]))


@pytest.mark.parametrize("norm", [2, np.inf])
@pytest.mark.parametrize("epsilon", [0.05, 0.8, 3.0])
def test_neighbour_lists_give_the_brute_force_regions_at_any_epsilon(norm, epsilon):
    """The placement reads counts off each centre's target + 1 nearest neighbours; a
    radius + epsilon beyond them takes the full row. Small to huge epsilon, duplicates."""
    rng = np.random.default_rng(7)
    X = np.vstack([rng.normal(size=(120, 3)), rng.normal(2.0, 0.6, size=(100, 3))])
    X[200:215] = X[199]  # 16 copies of one point: more than its list holds
    lu = np.clip(rng.normal(0.4, 0.3, 220) + 0.4 * (X[:, 0] > 1.2), 0, 2)
    params = dict(epsilon=epsilon, alpha=0.05, gamma=0.3, norm=norm, n_regions=3, delta=0.05)
    est = IntrinsicRobustnessEstimator(**params, train_size=0.9, random_state=1).fit(X, lu)
    _assert_brute_force_regions(est, X, lu, params)


def test_neighbour_lists_are_the_sorted_rows_prefix():
    from skrob._concentration import neighbour_lists

    rng = np.random.default_rng(3)
    X = rng.normal(size=(150, 5)) * 1e150
    X[10] = X[11]  # a tie
    for norm, metric in ((2, "euclidean"), (np.inf, "chebyshev")):
        lists = neighbour_lists(X, 20, norm, block=64)
        D = cdist(X, X, metric)
        order = np.argsort(D, axis=1, kind="stable")[:, :20]
        assert_array_equal(lists.index, order)
        assert_allclose(lists.dist, np.take_along_axis(D, order, axis=1), rtol=1e-14)
