import importlib
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
from tests._reference import (
    brute_dist,
    brute_force_costs,
    brute_force_regions,
    read_rows_vectorised,
)

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


@pytest.mark.parametrize("norm", [2, "inf"])
@pytest.mark.parametrize("scale", [1.0, 1e-30, 1e30])
def test_float32_x_gives_the_float64_result_without_a_float64_copy(norm, scale, monkeypatch):
    """float32 X is read as it is (no float64 copy of the whole of X): every fitted
    attribute equals the fit on X converted to float64, bit for bit, also where the scaling
    would take float32 below its normal range (entries of 1e30 beside 1e-30)."""
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(400, 5)) * scale).astype(np.float32)
    X[:, 4] = (rng.normal(size=400) * 1e-30).astype(np.float32)
    lu = rng.uniform(0, 1, 400)
    params = dict(epsilon=0.3 * scale, alpha=0.1, gamma=0.2, norm=norm, random_state=0)
    ref = IntrinsicRobustnessEstimator(**params).fit(X.astype(np.float64), lu)
    module = importlib.import_module("skrob.label_uncertainty")  # not the function
    validate = module.validate_data

    def no_float64_copy(est, X_in, *args, **kwargs):
        out = validate(est, X_in, *args, **kwargs)
        assert out[0].dtype == X_in.dtype
        return out

    monkeypatch.setattr(module, "validate_data", no_float64_copy)
    est = IntrinsicRobustnessEstimator(**params).fit(X, lu)
    for name in ("centers_", "radii_", "region_label_uncertainty_"):
        np.testing.assert_array_equal(getattr(est, name), getattr(ref, name))
        assert getattr(est, name).dtype == np.float64
    for name in ("intrinsic_robustness_", "risk_", "adversarial_risk_", "train_risk_"):
        assert getattr(est, name) == getattr(ref, name)


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


@pytest.mark.parametrize("norm", [2, np.inf])
@pytest.mark.parametrize("epsilon", [0.0, 1.0, np.sqrt(2.0), 2.5])
@pytest.mark.parametrize("gamma", [0.0, 0.5])
def test_placement_on_a_lattice_is_the_brute_force(norm, epsilon, gamma):
    """Integer points tie everywhere: distances equal to the radius, to radius + epsilon,
    to each other. The counts read off bounded list values must defer to exact rows."""
    from skrob._concentration import place_regions

    grid = np.stack(np.meshgrid(np.arange(7), np.arange(6), np.arange(4)), -1).reshape(-1, 3)
    X = np.vstack([grid, grid[:12]]).astype(np.float64)  # and 12 duplicates
    lu = np.random.default_rng(0).uniform(0, 1, len(X))
    params = dict(epsilon=epsilon, alpha=0.1, gamma=gamma, norm=norm, n_regions=3, delta=0.05)
    placed = place_regions(X, lu, **params)
    regions, covered, reached = brute_force_regions(X, lu, **params)
    assert [(c, r) for c, r in zip(placed.centers, placed.radii, strict=True)] == [
        r for r in regions if r is not None
    ]
    assert_array_equal(placed.covered, covered)
    assert_array_equal(placed.reached, reached)


@pytest.mark.parametrize("seed", range(40))
def test_counts_read_off_bounded_values_are_exact_or_lower_bounds(seed):
    """Several centres' lists at once, values within tau of the exact distances (in
    their own order, cut at k): every size flagged exact has the exact row's cost, every
    other one a lower bound (also from a profile beyond the list), and no size that
    meets gamma on the exact row is missed. Lattice ties (or near ties, reordered by
    the bounds), so many thresholds fall within tau of a value."""
    from skrob._concentration import _NONE, RADIUS_MARGIN, _read_rows

    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(6), np.arange(6), np.arange(6)), -1).reshape(-1, 3)
    X = grid + rng.choice([0.0, 1e-13, 1e-4]) * rng.normal(size=grid.shape)  # (near) ties
    n = len(X)
    covered = rng.random(n) < 0.2
    reached = covered | (rng.random(n) < 0.2)
    lu = rng.uniform(0, 1, n)
    sizes = np.arange(3, 40)
    # 1 + 1e-9: radius + epsilon lands on a lattice distance (the radius is 1e-9 short)
    eps, gamma = rng.choice([0.0, 1.0, 1.0 + 1e-9, np.sqrt(2.0)]), rng.choice([0.0, 0.5])
    args = (~covered, ~reached, lu, sizes, eps, gamma)
    centres = rng.choice(n, 5, replace=False)
    rows = np.linalg.norm(X[centres, None] - X[None], axis=2)
    k_least = sizes[-1] + 1 + covered.sum()  # as placement guarantees
    for k in (k_least, k_least + 16, n):
        tau = rng.choice([0.0, 1e-13, 1e-11, 1e-3], size=len(centres))
        values = rows + rng.uniform(-1, 1, rows.shape) * tau[:, None] * 0.99
        order = np.argsort(values, axis=1)
        beyond = np.take_along_axis(rows, order[:, k:], axis=1).min(axis=1, initial=np.inf)
        ranks = np.unique(np.linspace(k - 1, n - 1, 8).astype(int))
        profile = (ranks, np.sort(rows, axis=1)[:, ranks], reached.sum())
        listed = (np.take_along_axis(values, order, axis=1)[:, :k], order[:, :k], tau, beyond)
        got = _read_rows(*listed, *args, profile=profile)
        least, first, bound = _read_rows(*listed, *args, profile=profile, pairs=False)
        # the previous, vectorised reading (several rows at once)
        vec = read_rows_vectorised(*listed, *args, profile=profile)
        for b, row in enumerate(rows):
            ref = brute_force_costs(row, covered, reached, lu, sizes, eps, gamma)
            ref = {j: ref[s][0] for j, s in enumerate(sizes) if s in ref}
            mine = got[0] == b
            assert set(ref) <= set(got[1][mine])
            for j, exact, cost, radius in zip(*(v[mine] for v in got[1:]), strict=True):
                if exact:
                    assert ref.get(j) == cost
                    # from the listed value: exact where tau is 0
                    ref_radius = np.sort(row[~covered])[sizes[j]] * (1 - RADIUS_MARGIN)
                    assert abs(radius - ref_radius) <= 2 * tau[b]
                elif j in ref:
                    assert cost <= ref[j]
            # each row's reduction: the least exact cost at its first size, the least
            # bound of the others
            exact_pairs = mine & got[2]
            costs = got[3][exact_pairs]
            if costs.size:
                assert least[b] == costs.min()
                assert first[b] == got[1][exact_pairs][np.argmax(costs == costs.min())]
            else:
                assert least[b] == _NONE
            others = got[3][mine & ~got[2]]
            assert bound[b] == (others.min() if others.size else _NONE)
            # the previous, vectorised reading: the same cost where both are exact, a
            # lower bound where one is not
            theirs = vec[0] == b
            theirs = {j: (e, c) for j, e, c in zip(*(v[theirs] for v in vec[1:4]), strict=True)}
            for j, exact, cost in zip(*(v[mine] for v in got[1:4]), strict=True):
                if j not in theirs:
                    continue
                their_exact, their_cost = theirs[j]
                if exact and their_exact:
                    assert cost == their_cost
                elif exact:
                    assert their_cost <= cost
                elif their_exact:
                    assert cost <= their_cost
            # on the exact row, every size: the brute force's costs
            exact_order = np.argsort(row, kind="stable")
            read = _read_rows(row[exact_order][None], exact_order[None], 0.0, np.inf, *args)
            assert read[2].all()
            assert dict(zip(read[1], read[3], strict=True)) == ref


@pytest.mark.parametrize("scale", [1e-150, 1.0, 1e150, 1e200])
def test_neighbour_lists_bound_the_sorted_rows(scale):
    """Each list holds k nearest samples, ascending, every value within the row's tau of
    the exact distance (and the codes' rounding), every sample left out at ``beyond`` or
    farther, and the profile bounds the farther order statistics. 1e200: outside the
    GEMM's range."""
    from skrob._concentration import _RowBlocks, neighbour_lists

    rng = np.random.default_rng(3)
    X = rng.normal(size=(150, 5)) * scale
    X[10] = X[11]  # a tie
    X[20] = X[21] * (1 + 1e-15)  # a near tie
    for norm in (2, np.inf):
        lists = neighbour_lists(X, 20, norm, block=64)
        D = brute_dist(X, X, "euclidean" if norm == 2 else "chebyshev")
        listed = np.take_along_axis(D, lists.index.astype(np.intp), axis=1)
        values = lists.values()
        # 7 bytes a listed pair for L2, 8 for L∞ (5 or 6 of code, 2 of index): n <= 2^16
        listed_bytes = lists.high.nbytes + lists.low.nbytes + lists.index.nbytes
        assert listed_bytes == (7 if norm == 2 else 8) * lists.index.size
        assert np.all(np.diff(values, axis=1) >= 0)
        assert_array_equal(values[:, -1], lists.far)
        # (the reference rounds once more than difference-then-norm)
        assert np.all(np.abs(values - listed) <= lists.tau[:, None] + 4e-16 * listed)
        # the codes' rounding (2^-40 or 2^-48 of the row's largest distance), and for
        # L2 the GEMM's bound
        assert np.all(lists.tau <= (1e-12 if norm == 2 else 1e-14) * lists.far)
        assert np.all(lists.tau >= (2.0**-40 if norm == 2 else 2.0**-48) * lists.far)
        left_out = np.ones_like(D, dtype=bool)
        np.put_along_axis(left_out, lists.index.astype(np.intp), False, axis=1)
        assert np.all(np.where(left_out, D, np.inf).min(axis=1) >= lists.beyond * (1 - 4e-16))
        assert np.all(lists.beyond >= (1 - 1e-12) * listed.max(axis=1))
        order_stats = np.sort(D, axis=1)[:, lists.ranks]
        assert np.all(order_stats <= lists.profile * (1 + 4e-16))
        assert_allclose(lists.profile, order_stats, rtol=1e-12)
        # Full rows of a batch of centres (the ones a list cannot settle), likewise.
        batch = np.array([3, 10, 11, 20, 149])
        dist, tau = _RowBlocks(X, norm).rows(batch)
        used = np.isfinite(tau)  # else the GEMM's bounds are too loose: exact rows
        assert used.all() or (norm == 2 and scale != 1.0)
        error = np.abs(dist - D[batch])[used]
        assert np.all(error <= tau[used, None] + 4e-16 * D[batch][used])
        assert np.all(tau[used] <= 1e-10 * D[batch][used].max(axis=1))


@pytest.mark.parametrize("low_type", [np.uint8, np.uint16])
@pytest.mark.parametrize("scale", [2.0**-1074, 1e-310, 1e-300, 1.0, 1e300, 1.7e308])
def test_list_codes_stay_within_their_bound_and_keep_the_order(scale, low_type):
    """The lists' 39-bit codes decode to values within the bound they add to tau, in the
    same (non-decreasing) order, and the largest one exactly; over the whole finite
    range (subnormal and huge distances, rows of zeros, duplicates, near ties)."""
    from skrob._concentration import _decode, _encode

    rng = np.random.default_rng(0)
    dist = np.sort(rng.uniform(0, 1, size=(40, 300)), axis=1) * scale
    dist[0] = 0.0  # a row of duplicates
    dist[1, :150] = 0.0
    dist[2, 100:110] = dist[2, 100]  # ties
    dist[3, 1::2] = np.nextafter(dist[3, 0::2], np.inf)  # near ties, ascending
    dist[3] = np.sort(dist[3])
    dist[4] = np.sort(rng.uniform(0, 1, 300) ** 40) * scale  # many small beside far
    tau = np.zeros(40)
    high, low, far, bound = _encode(dist, tau, low_type)
    assert high.dtype == np.uint32 and low.dtype == low_type
    values = _decode(high, low, far, 0, 40)
    assert np.all(np.diff(values, axis=1) >= 0)
    assert_array_equal(values[:, -1], dist[:, -1])
    assert_array_equal(values[0], 0.0)
    assert np.all(np.abs(values - dist) <= bound[:, None])
    bits = 31 + 8 * np.dtype(low_type).itemsize
    assert np.all(bound <= 2.0**-bits * far + 2.0**-1072)
    if scale >= 1e-300:  # (normal values) the bound is not loose: of 300 values, one
        error = np.abs(values - dist)[5:].max(axis=1) / far[5:]  # errs by half of it
        assert np.all(error > 2.0 ** -(bits + 2))
    # a slice of rows decodes as in the whole
    assert_array_equal(_decode(high, low, far, 5, 9), values[5:9])


@pytest.mark.parametrize("seed", range(20))
def test_row_heads_keep_every_value_up_to_reach_and_bound_the_rest(seed):
    """The full rows of pending centres are read only up to a reach (a little beyond the
    list's last distance + epsilon): every value at or below a row's reach is kept, in
    ascending order with its own sample (ties in index order in exact rows), and every
    sample left out lies at ``beyond`` or farther, exactly. Rows of values within tau of
    the exact distances, with exact ties and near ties (lattice points)."""
    from skrob._concentration import _row_heads

    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(5), np.arange(5), np.arange(4)), -1).reshape(-1, 3)
    X = grid + rng.choice([0.0, 1e-13]) * rng.normal(size=grid.shape)
    exact = cdist(X[:6], X)
    tau = rng.choice([0.0, 1e-13, 1e-6], size=6)
    values = exact + rng.uniform(-1, 1, exact.shape) * tau[:, None] * 0.99
    reach = rng.uniform(0.0, 1.2, 6) * exact.max(axis=1)
    d, o, tau_out, beyond = _row_heads(values, tau, reach)
    assert tau_out is tau
    assert_array_equal(d, np.take_along_axis(values, o, axis=1))
    assert np.all(np.diff(d, axis=1) >= 0)
    for b in range(6):
        assert len(set(o[b])) == o.shape[1]  # each sample once
        assert set(np.flatnonzero(values[b] <= reach[b])) <= set(o[b])
        left_out = np.setdiff1d(np.arange(len(X)), o[b])
        assert np.all(exact[b, left_out] >= beyond[b])
        if left_out.size == 0:
            assert beyond[b] == np.inf
        if tau[b] == 0:
            assert_array_equal(np.lexsort((o[b], d[b])), np.arange(o.shape[1]))  # ties by index


@pytest.mark.parametrize("n", [1, 2**16, 2**16 + 1, 2**31, 2**31 + 1])
def test_list_indices_take_the_smallest_type_that_holds_them(n):
    from skrob._concentration import _index_dtype

    dtype = _index_dtype(n)
    assert np.iinfo(dtype).max >= n - 1
    assert np.iinfo(dtype).bits == (16 if n <= 2**16 else 32 if n <= 2**31 else 64)


def test_one_set_of_neighbour_lists_at_a_time(monkeypatch):
    """A fit on other data (or the other norm) releases the cached lists, every
    reference to them, before building its own: at paper size two sets are 3.4 GiB."""
    import weakref

    from skrob import _concentration

    built, previous = [], []
    real = _concentration.neighbour_lists

    def spy(X, k, norm, **kwargs):
        built.append((norm, [ref() is None for ref in previous]))
        lists = real(X, k, norm, **kwargs)
        previous.append(weakref.ref(lists))
        return lists

    monkeypatch.setattr(_concentration, "neighbour_lists", spy)
    monkeypatch.setattr(_concentration, "_CACHE", {})
    X = np.random.default_rng(0).normal(size=(60, 3))
    lu = np.random.default_rng(1).uniform(0, 2, 60)
    for norm in (2, np.inf, np.inf):  # the last fit reuses the L∞ lists
        IntrinsicRobustnessEstimator(0.5, alpha=0.2, norm=norm, random_state=0).fit(X, lu)
    assert built == [(2, []), (np.inf, [True])]
    assert previous[1]() is not None  # the L∞ lists stay cached
