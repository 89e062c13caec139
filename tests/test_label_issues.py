"""label_issues: confident learning as cleanlab computes it, on leave-one-out kNN
probabilities checked against a brute force."""

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from skrob import diagnose, label_issues
from skrob._label_issues import prune_by_noise_rate


def _blobs(seed, n_per=40, k=3, d=2, spread=0.15):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-5, 5, (k, d))
    y = np.repeat(np.arange(k), n_per)
    X = centres[y] + rng.normal(0, spread, (k * n_per, d))
    return X, y


def _brute_probs(X, y, ks):
    """Leave-one-out kNN probabilities from a float64 distance matrix (stable order),
    the class prior as one pseudo-count, averaged over ks."""
    classes, codes = np.unique(y, return_inverse=True)
    D = cdist(X, X)
    np.fill_diagonal(D, np.inf)
    order = np.argsort(D, axis=1, kind="stable")
    prior = np.bincount(codes) / len(y)
    out = []
    for k in ks:
        counts = np.zeros((len(y), classes.size))
        for i in range(len(y)):
            for j in order[i, :k]:
                counts[i, codes[j]] += 1
        out.append((counts + prior) / (k + 1))
    return np.mean(out, axis=0)


def test_planted_label_errors_are_found_and_nothing_else():
    X, y = _blobs(0)
    noisy = y.copy()
    wrong = np.array([3, 50, 97, 110])
    noisy[wrong] = (y[wrong] + 1) % 3
    found = label_issues(X, noisy)
    np.testing.assert_array_equal(np.flatnonzero(found["label_issue"]), wrong)
    np.testing.assert_array_equal(found["likely_label"].to_numpy()[wrong], y[wrong])
    # the ranking puts the planted errors first
    assert set(np.argsort(found["label_quality"].to_numpy())[:4]) == set(wrong)


def test_label_quality_is_the_leave_one_out_knn_probability():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 3))
    y = rng.integers(0, 3, 120)
    found = label_issues(X, y)
    assert found.attrs["n_neighbors"] == [5, 10, 20, 30, 50]
    probs = _brute_probs(X, y, [5, 10, 20, 30, 50])
    np.testing.assert_allclose(found["label_quality"], probs[np.arange(120), y], rtol=1e-12)
    one = label_issues(X, y, n_neighbors=7)
    np.testing.assert_allclose(
        one["label_quality"], _brute_probs(X, y, [7])[np.arange(120), y], rtol=1e-12
    )


def test_confident_learning_matches_cleanlab_on_the_same_probabilities():
    pytest.importorskip("cleanlab")
    from cleanlab.filter import find_label_issues

    total = disagree = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        k = int(rng.integers(2, 7))
        n = int(rng.integers(30, 300))
        y = np.arange(n) % k
        logits = rng.normal(size=(n, k)) * rng.uniform(0.5, 3)
        logits[np.arange(n), y] += rng.uniform(0, 3)
        P = np.exp(logits)
        P /= P.sum(axis=1, keepdims=True)
        total += n
        disagree += int((find_label_issues(y, P) != prune_by_noise_rate(P, y, k)).sum())
    assert disagree <= 1e-4 * total


def test_copies_of_a_mislabelled_sample_do_not_vouch_for_it():
    """Three copies of a wrongly labelled sample inside another class: each copy is the
    same observation, not a vote for the wrong label."""
    X, y = _blobs(2, n_per=30)
    centre = X[y == 1].mean(axis=0)
    X = np.vstack([X, np.repeat(centre[None], 3, axis=0)])
    y = np.concatenate([y, [0, 0, 0]])
    found = label_issues(X, y)
    assert found["label_issue"].to_numpy()[-3:].all()


def test_diagnose_columns_and_frames():
    X, y = _blobs(3)
    noisy = y.copy()
    noisy[[5, 60]] = [1, 2]
    df = pd.DataFrame(X, columns=["a", "b"], index=[f"r{i}" for i in range(len(y))])
    found = label_issues(df, noisy)
    assert list(found.index) == list(df.index)
    table = diagnose(df, noisy)
    np.testing.assert_array_equal(table["label_issue"], found["label_issue"])
    np.testing.assert_allclose(table["label_quality"], found["label_quality"])


def test_label_issues_errors():
    X, y = _blobs(4)
    with pytest.raises(ValueError, match="n_neighbors"):
        label_issues(X, y, n_neighbors=len(y))
    with pytest.raises(ValueError, match="n_neighbors"):
        label_issues(X, y, n_neighbors="many")
    with pytest.raises(ValueError, match="labels of y are missing"):
        label_issues(X, np.where(np.arange(len(y)) == 3, np.nan, y))
