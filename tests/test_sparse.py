"""CSR input: the same numbers as the dense path (float64 guarantee), or a clear error."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

from skrob import (
    RobustSubsetSelector,
    SampleRobustnessTransformer,
    knn_soft_labels,
    sample_robustness,
)
from tests._reference import brute_loo_transform, brute_robustness


def _tfidf_like(seed, n=150, d=60):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.08, random_state=seed, format="lil")
    X[:, 0] = rng.uniform(0.1, 1.0, (n, 1))  # no all-zero row (cosine is undefined there)
    X[3] = X[2]  # a duplicate ...
    X[5] = X[4] * (1 + 1e-9)  # ... and a near-duplicate
    y = rng.integers(0, 3, n)
    y[3] = (y[2] + 1) % 3
    return X.tocsr(), y


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "cityblock", "manhattan"])
@pytest.mark.parametrize("scale", [1e-150, 1.0, 1e150])
def test_sparse_equals_dense(global_random_seed, metric, scale):
    X, y = _tfidf_like(global_random_seed)
    X = X * scale
    dense = X.toarray()
    R = sample_robustness(X, y, metric=metric)
    expected = sample_robustness(dense, y, metric=metric)
    atol = 1e-15 if metric == "cosine" else 0  # cosine: exact on the unit sphere
    assert_allclose(R, expected, rtol=1e-6, atol=atol)
    if metric == "euclidean":
        assert_allclose(R, brute_robustness(dense, y, "classification"), rtol=1e-6)
    assert R[2] == 0.0 and R[3] == 0.0  # differently labelled duplicates


def test_sparse_transformer_and_selector(global_random_seed):
    X, y = _tfidf_like(global_random_seed)
    dense = X.toarray()
    srt = SampleRobustnessTransformer(per_class=True).fit(X[:100], y[:100])
    ref = SampleRobustnessTransformer(per_class=True).fit(dense[:100], y[:100])
    assert_allclose(srt.robustness_, ref.robustness_, rtol=1e-9)
    assert_allclose(srt.transform(X[100:]), ref.transform(dense[100:]), rtol=1e-9)
    assert_allclose(srt.robustness(X[100:], y[100:]), ref.robustness(dense[100:], y[100:]))
    out = SampleRobustnessTransformer(per_class=True).fit_transform(X, y)
    assert_allclose(out, brute_loo_transform(dense, y, per_class=True), rtol=1e-6)
    X_sub, y_sub = RobustSubsetSelector(fraction=0.5).fit_resample(X, y)
    D_sub, _ = RobustSubsetSelector(fraction=0.5).fit_resample(dense, y)
    assert sp.issparse(X_sub)
    assert_allclose(X_sub.toarray(), D_sub)
    assert_allclose(knn_soft_labels(X, y, n_neighbors=4), knn_soft_labels(dense, y, n_neighbors=4))


def test_sparse_paths_that_cannot_say_so():
    X, y = _tfidf_like(0)
    with pytest.raises(ValueError, match="Sparse X supports metric='euclidean', 'cosine'"):
        sample_robustness(X, y, metric="chebyshev")
    with pytest.raises(ValueError, match="Sparse X is supported for classification"):
        sample_robustness(X, np.linspace(0, 1, X.shape[0]), task="regression")
    with pytest.raises(ValueError, match="approximate' does not take sparse"):
        sample_robustness(X, y, algorithm="approximate")
    zero = X.tolil()
    zero[7] = 0
    with pytest.raises(ValueError, match="cosine' is undefined for the all-zero rows"):
        sample_robustness(zero.tocsr(), y, metric="cosine")
