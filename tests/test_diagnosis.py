"""diagnose() against a float64 brute force over every pair."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from skrob import diagnose, knn_soft_labels, label_uncertainty, sample_robustness


def brute_force(X, y, metric="euclidean"):
    """Every quantity of diagnose() from the full distance matrix, by definition."""
    D = cdist(X, X, metric=metric)
    np.fill_diagonal(D, np.inf)
    classes = np.unique(y)
    n = len(y)
    reach = np.array([D[i, y != y[i]].min() for i in range(n)])
    # R under each candidate label k: distance to the nearest sample not labelled k.
    under = np.array([[D[i, y != k].min() for k in classes] for i in range(n)])
    own = np.searchsorted(classes, y)
    best = under.max(axis=1)
    suggested = np.where(under[np.arange(n), own] == best, own, under.argmax(axis=1))
    return reach, under, suggested


def make_data(seed, n=120, d=5, n_classes=3, duplicates=10):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.integers(0, n_classes, n)
    # Conflicting and agreeing duplicates.
    src = rng.choice(n, duplicates, replace=False)
    dst = rng.choice(np.setdiff1d(np.arange(n), src), duplicates, replace=False)
    X[dst] = X[src]
    return X, y


@pytest.mark.parametrize("metric", ["euclidean", "cityblock", "chebyshev"])
@pytest.mark.parametrize("scale", [1.0, 1e-150, 1e150])
def test_matches_brute_force(metric, scale):
    X, y = make_data(0)
    X = X * scale
    out = diagnose(X, y, metric=metric, n_neighbors=5)
    reach, under, suggested = brute_force(X, y, metric)
    np.testing.assert_allclose(out["reach"], reach, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(out["conflicting_duplicate"], reach == 0)
    assert (out["conflicting_duplicate"].sum()) > 0  # the data do hold some
    np.testing.assert_allclose(out["robustness"], reach / (reach + 1), rtol=1e-12)
    # The partner is a differently labelled sample at exactly the reach.
    partner = out["nearest_other"].to_numpy()
    assert np.all(y[partner] != y)
    np.testing.assert_array_equal(out["nearest_other_label"], y[partner])
    np.testing.assert_allclose(
        cdist(X, X, metric=metric)[np.arange(len(y)), partner], reach, rtol=1e-12
    )
    np.testing.assert_array_equal(out["suggested_label"], np.unique(y)[suggested])
    best = under.max(axis=1)
    np.testing.assert_allclose(out["suggested_robustness"], best / (best + 1), rtol=1e-12)
    np.testing.assert_array_equal(out["relabel"], out["suggested_label"] != y)
    assert np.all(out["suggested_robustness"] >= out["robustness"])


def test_same_robustness_as_sample_robustness_and_lu():
    X, y = make_data(1, n=300, d=8)
    out = diagnose(X, y, n_neighbors=7)
    np.testing.assert_allclose(out["robustness"], sample_robustness(X, y), rtol=1e-12)
    # equal to knn_soft_labels wherever the 7th and 8th neighbours are not a near-tie
    # (one search of 50 neighbours serves both columns; rounding may order a tie apart)
    from scipy.spatial.distance import cdist

    D = cdist(X, X)
    np.fill_diagonal(D, np.inf)
    kth = np.sort(D, axis=1)[:, 6:8]
    clear = kth[:, 1] - kth[:, 0] > 1e-9 * kth[:, 1]
    np.testing.assert_allclose(
        out["label_uncertainty"][clear], label_uncertainty(knn_soft_labels(X, y, 7), y)[clear]
    )
    assert clear.mean() > 0.9


def test_many_features_search_once_for_both(global_random_seed, monkeypatch):
    # from 512 features on, the nearest sample of each class and the neighbour lists
    # come from one pass (nearest_in_groups_and_order): the same frame as the two
    # searches give
    from skrob import _label_issues as cl
    from skrob import diagnosis

    rng = np.random.default_rng(global_random_seed)
    centres = rng.normal(size=(3, 520))
    y = rng.integers(0, 3, 700)
    X = centres[y] + 2.0 * rng.normal(size=(700, 520))
    X[10] = X[400]  # a copy, perhaps with another label
    fused = diagnose(X, y)
    assert diagnosis.fusable(X, "euclidean")
    calls = []
    monkeypatch.setattr(diagnosis, "fusable", lambda *a: calls.append(a) or False)
    separate = diagnose(X, y)
    assert calls
    pd.testing.assert_frame_equal(fused, separate)
    assert X.shape[1] >= cl._OWN_KERNEL_MIN_FEATURES


def test_least_robust_flags():
    X, y = make_data(2, n=200)
    out = diagnose(X, y, least_robust=0.25)
    flagged = out["least_robust"].to_numpy()
    assert flagged.sum() == 50
    R = out["robustness"].to_numpy()
    assert R[flagged].max() <= R[~flagged].min()
    assert not diagnose(X, y, least_robust=0.0)["least_robust"].any()
    assert diagnose(X, y, least_robust=1.0)["least_robust"].all()


def test_mislabelled_sample_gets_its_neighbours_label():
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(0, 0.1, (30, 2)), rng.normal(5, 0.1, (30, 2))])
    y = np.array(["cat"] * 30 + ["dog"] * 30, dtype=object)
    y[4] = "dog"  # a cat labelled dog, deep inside the cats
    out = diagnose(X, y)
    assert out.loc[4, "relabel"] and out.loc[4, "suggested_label"] == "cat"
    assert out["relabel"].sum() == 1
    assert out.loc[4, "label_uncertainty"] == 2.0  # all ten neighbours disagree


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(-3, 3), min_size=8, max_size=30),
    st.integers(0, 2**32 - 1),
)
def test_property_ties_and_duplicates(values, seed):
    """Integer grids: many exact ties and duplicates, the hardest case for tie rules."""
    rng = np.random.default_rng(seed)
    n = len(values)
    X = np.column_stack([values, rng.integers(-2, 3, n)]).astype(float)
    y = rng.integers(0, 3, n)
    if np.unique(y).size < 2:
        y[0], y[1] = 0, 1
    out = diagnose(X, y, n_neighbors=3)
    reach, under, suggested = brute_force(X, y)
    np.testing.assert_array_equal(out["reach"], reach)
    np.testing.assert_array_equal(out["suggested_label"], np.unique(y)[suggested])


def test_pandas_index_sparse_and_labels():
    X, y = make_data(4, n=80)
    frame = pd.DataFrame(X, index=[f"row{i}" for i in range(80)])
    out = diagnose(frame, pd.Series(y))
    assert list(out.index) == list(frame.index)
    dense = diagnose(X, y)
    assert dense.index.name == "sample"
    same = [c for c in out.columns if c != "nearest_other"]
    np.testing.assert_array_equal(out[same].to_numpy(), dense[same].to_numpy())
    np.testing.assert_array_equal(out["nearest_other"], frame.index[dense["nearest_other"]])
    X_sparse = sp.csr_matrix(np.where(np.abs(X) < 0.5, 0.0, X))
    np.testing.assert_allclose(
        diagnose(X_sparse, y)["reach"], diagnose(X_sparse.toarray(), y)["reach"], rtol=1e-12
    )


@pytest.mark.parametrize(
    "X, y, message",
    [
        ([[0.0], [1.0], [np.nan]], [0, 1, 0], "NaN"),
        ([[0.0], [1.0], [2.0]], [0, 0, 0], "two distinct labels"),
        ([[0.0], [1.0], [2.0]], [0, 1], "inconsistent numbers of samples"),
        ([[0.0], [1.0], [2.0]], [[0, 1], [1, 0], [0, 0]], "one label per sample"),
        ([[0.0], [1.0], [2.0]], [0.0, np.nan, 1.0], "NaN"),
        (np.arange(200.0)[:, None], np.linspace(0, 1, 200) ** 2, "continuous"),
        ([[0.0], [1.0], [2.0]], [0, 1, 0], "n_neighbors"),
    ],
)
def test_errors(X, y, message):
    with pytest.raises(ValueError, match=message):
        diagnose(X, y)


def test_parameter_errors():
    X, y = make_data(5, n=30)
    with pytest.raises(ValueError, match="least_robust"):
        diagnose(X, y, least_robust=1.5)
    with pytest.raises(ValueError, match="metric"):
        diagnose(X, y, metric="nope")


def test_cleanlab_datalab_issue_type(capsys):
    pytest.importorskip("cleanlab")
    pytest.importorskip("datasets")
    from cleanlab import Datalab

    from skrob.diagnosis import register_datalab_issue_type

    register_datalab_issue_type()
    X, y = make_data(6, n=150)
    lab = Datalab(data={"label": y}, label_name="label", verbosity=0)
    lab.find_issues(issue_types={"sample_robustness": {"features": X}})
    issues = lab.get_issues("sample_robustness")
    expected = diagnose(X, y)
    np.testing.assert_array_equal(
        issues["is_sample_robustness_issue"],
        expected["label_issue"] | expected["conflicting_duplicate"],
    )
    np.testing.assert_allclose(issues["sample_robustness_score"], expected["label_quality"])
    summary = lab.get_issue_summary()
    row = summary[summary.issue_type == "sample_robustness"].iloc[0]
    assert row.num_issues == int(issues["is_sample_robustness_issue"].sum())
    info = lab.get_info("sample_robustness")
    np.testing.assert_array_equal(info["suggested_label"], expected["suggested_label"])
    # Without features the manager's error names the fix; Datalab prints it (it catches
    # every issue manager's exception) and reports no such issue type.
    capsys.readouterr()
    empty = Datalab(data={"label": y}, label_name="label", verbosity=0)
    empty.find_issues(issue_types={"sample_robustness": {}})
    assert '{"sample_robustness": {"features": X}}' in capsys.readouterr().out
    # the dataset's own labels, not Datalab's integer codes
    names = np.array(["cat", "dog", "emu", "fox", "gnu", "yak"])[y]
    named = Datalab(data={"label": names}, label_name="label", verbosity=0)
    named.find_issues(issue_types={"sample_robustness": {"features": X}})
    table = named.get_info("sample_robustness")["diagnosis"]
    assert set(table["label"]) <= set(names) and set(table["suggested_label"]) <= set(names)
    np.testing.assert_array_equal(table["label"], names)


def test_nearest_other_speaks_the_index_of_a_frame():
    X, y = make_data(7, n=60)
    index = pd.Index([f"row-{i}" for i in range(100, 160)], name="id")
    table = diagnose(pd.DataFrame(X, index=index), y)
    positions = diagnose(X, y)["nearest_other"].to_numpy()
    np.testing.assert_array_equal(table["nearest_other"], index[positions])
    shifted = diagnose(pd.DataFrame(X, index=pd.RangeIndex(5, 65)), y)
    np.testing.assert_array_equal(shifted["nearest_other"], positions + 5)
