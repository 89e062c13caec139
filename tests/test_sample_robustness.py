import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits, load_iris, make_classification
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrob import SampleRobustnessTransformer, sample_robustness
from tests._reference import (
    brute_loo_regression,
    brute_loo_transform,
    brute_q,
    brute_reach,
    brute_robustness,
)
from tests.conftest import make_tricky_data

RTOL = 1e-6  # the contract: float32 throughput, float64 brute force to 1e-6 relative


# --------------------------------------------------------------------------------------
# Against the float64 brute force
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["euclidean", "cityblock", "chebyshev", "cosine"])
@pytest.mark.parametrize("batch_size", [None, 37])
def test_classification_matches_brute_force(global_random_seed, metric, batch_size):
    rng = np.random.default_rng(global_random_seed)
    X, y = make_tricky_data(rng)
    R = sample_robustness(X, y, metric=metric, algorithm="exact", batch_size=batch_size)
    expected = brute_robustness(X, y, "classification", metric)
    assert_allclose(R, expected, rtol=RTOL, atol=0)
    assert_allclose(R[:2], 0.0, atol=1e-15)  # differently labelled duplicates (cosine: 1e-16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_euclidean_near_duplicates_are_exact(global_random_seed, dtype):
    """The float32 GEMM trick alone is off by 0.3-1.0 relative at these distances."""
    rng = np.random.default_rng(global_random_seed)
    X = rng.random((400, 64)) * 255
    y = rng.integers(0, 4, 400)
    X[200:] = X[:200] + rng.normal(scale=1e-3, size=(200, 64))
    X = X.astype(dtype)
    reach = brute_reach(X.astype(np.float64), y)
    R = sample_robustness(X, y)
    assert_allclose(R, reach / (reach + 1), rtol=RTOL)
    assert_allclose(R / (1 - R), reach, rtol=RTOL)  # the reach itself, not just R


@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("metric", ["euclidean", "cityblock"])
@pytest.mark.parametrize("batch_size", [None, 29])
def test_regression_matches_brute_force(global_random_seed, n_outputs, metric, batch_size):
    rng = np.random.default_rng(global_random_seed)
    X, _ = make_tricky_data(rng, n=250)
    y = rng.normal(size=(250, n_outputs)) if n_outputs > 1 else rng.normal(size=250)
    y[5] = y[4]  # duplicate rows, equal targets: 0 / 0 must not become NaN
    R = sample_robustness(X, y, metric=metric, batch_size=batch_size)
    expected = brute_robustness(X, y, "regression", metric)
    assert not np.isnan(R).any()
    assert_allclose(R, expected, rtol=RTOL, atol=0)
    assert R[0] == 0.0 and R[1] == 0.0  # duplicates with different targets: Q infinite


def test_regression_integer_valued_targets_with_task():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = rng.integers(0, 5, 80)
    R = sample_robustness(X, y, task="regression")
    assert_allclose(R, brute_robustness(X, y, "regression"), rtol=RTOL)


@settings(max_examples=60, deadline=None)
@given(
    X=arrays(
        np.float64,
        st.tuples(st.integers(2, 25), st.integers(1, 4)),
        elements=st.integers(-3, 3).map(float),
    ),
    data=st.data(),
)
@example(X=np.zeros((2, 1)), data=None)
def test_property_classification_brute_force(X, data):
    n = X.shape[0]
    if data is None:
        y = np.array([0, 1])
    else:
        y = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
        if np.unique(y).size < 2:
            y[0] = (y[1] + 1) % 3
    R = sample_robustness(X, y, batch_size=7)
    assert_allclose(R, brute_robustness(X, y, "classification"), rtol=RTOL, atol=0)
    assert np.all((R >= 0) & (R < 1))


@settings(max_examples=60, deadline=None)
@given(
    X=arrays(
        np.float64,
        st.tuples(st.integers(2, 25), st.integers(1, 3)),
        elements=st.integers(-3, 3).map(float),
    ),
    data=st.data(),
)
def test_property_regression_brute_force(X, data):
    n = X.shape[0]
    y = np.array(data.draw(st.lists(st.floats(-5, 5, width=32), min_size=n, max_size=n)))
    if np.unique(y).size < 2 or not np.any(y):
        y[0], y[1] = 1.0, -1.0
    R = sample_robustness(X, y, task="regression", batch_size=6)
    assert_allclose(R, brute_robustness(X, y, "regression"), rtol=RTOL, atol=0)


# --------------------------------------------------------------------------------------
# The paper's invariants
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e-3, 2.0, 1e4])
def test_regression_invariant_to_rescaling_y(scale):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = rng.normal(size=120) + 1.0
    assert_allclose(sample_robustness(X, scale * y), sample_robustness(X, y), rtol=1e-12)


def test_regression_not_invariant_to_shifting_y():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4))
    y = rng.normal(size=50)
    assert not np.allclose(sample_robustness(X, y + 10.0), sample_robustness(X, y))


def test_binary_robustness_is_reach_over_reach_plus_one():
    X, y = load_iris(return_X_y=True)
    y = (y == 2).astype(int)
    r = brute_reach(X, y)
    assert_allclose(sample_robustness(X, y), r / (r + 1), rtol=RTOL)
    # ... which is the general formula with binary labels as real targets, ||y||_inf = 1.
    assert_allclose(sample_robustness(X, y, task="regression"), r / (r + 1), rtol=RTOL)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_union_is_minimum_over_parts(task):
    """Q over x u t = max(Q_x, Q_t), i.e. R_{x u t} = min(R_x, R_t) (paper 000, 3.5)."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(160, 5))
    if task == "classification":
        y = rng.integers(0, 3, 160)
    else:
        y = rng.normal(size=160)
        y[[0, 100]] = 7.0  # same ||y||_inf in x and in t
    x, t = slice(0, 100), slice(100, None)
    union = SampleRobustnessTransformer(task=task).fit(X, y).robustness_
    on_x = SampleRobustnessTransformer(task=task).fit(X[x], y[x])
    on_t = SampleRobustnessTransformer(task=task).fit(X[t], y[t])
    assert_allclose(union[x], np.minimum(on_x.robustness_, on_t.robustness(X[x], y[x])), rtol=RTOL)
    assert_allclose(union[t], np.minimum(on_t.robustness_, on_x.robustness(X[t], y[t])), rtol=RTOL)


# --------------------------------------------------------------------------------------
# The transformer
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


def test_fit_transform_reproduces_robustness(digits):
    X, y = digits
    srt = SampleRobustnessTransformer().fit(X, y)
    assert_allclose(srt.robustness_, brute_robustness(X, y, "classification"), rtol=RTOL)
    assert_allclose(srt.reach_, brute_reach(X, y), rtol=RTOL)
    assert_array_equal(srt.classes_, np.arange(10))
    assert_allclose(srt.transform(X)[:, 0], srt.robustness_, rtol=RTOL)


@pytest.mark.parametrize("per_class", [False, True])
def test_fit_transform_is_leave_one_out(digits, per_class):
    """Training rows get transform's value against the reference set without themselves."""
    X, y = digits
    X = X.copy()
    X[1] = X[0]  # a duplicate: the other copy is still in the reference set
    out = SampleRobustnessTransformer(per_class=per_class).fit_transform(X, y)
    assert_allclose(out, brute_loo_transform(X, y, per_class), rtol=RTOL)


def test_fit_transform_train_and_test_distributions_agree():
    """Exchangeable train and test rows: the feature has one distribution (no leakage).

    The README's Pipeline: per-class robustness as a feature. Before leave-one-out, 90 %
    of the training values were exactly 0 and the largest column equalled the label for
    every training row.
    """
    from scipy.stats import ks_2samp

    X, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(y))  # exchangeable halves
    X, y = X[perm], y[perm]
    srt = SampleRobustnessTransformer(per_class=True)
    train = srt.fit_transform(X[:1200], y[:1200])
    test = srt.transform(X[1200:])
    assert (train == 0).mean() < 0.01
    for k in range(10):
        assert ks_2samp(train[:, k], test[:, k]).pvalue > 1e-3
    label_rate_train = (train.argmax(axis=1) == y[:1200]).mean()
    label_rate_test = (test.argmax(axis=1) == y[1200:]).mean()
    assert abs(label_rate_train - label_rate_test) < 0.03


def test_transform_pseudo_label_is_best_label(digits):
    """Unlabelled R is the largest R over the candidate labels (DESIGN 2)."""
    X, y = digits
    srt = SampleRobustnessTransformer(per_class=True).fit(X[:400], y[:400])
    per_class = srt.transform(X[400:])
    for k in range(10):
        r = brute_reach(X[400:], np.full(200, k), reference=X[:400], ref_y=y[:400])
        assert_allclose(per_class[:, k], r / (r + 1), rtol=RTOL)
    plain = SampleRobustnessTransformer().fit(X[:400], y[:400]).transform(X[400:])
    assert_allclose(plain[:, 0], per_class.max(axis=1), rtol=RTOL)
    assert list(srt.get_feature_names_out()) == [f"robustness_{k}" for k in range(10)]


def test_robustness_of_labelled_test_samples(digits):
    X, y = digits
    srt = SampleRobustnessTransformer().fit(X[:400], y[:400])
    r = brute_reach(X[400:], y[400:], reference=X[:400], ref_y=y[:400])
    assert_allclose(srt.robustness(X[400:], y[400:]), r / (r + 1), rtol=RTOL)
    # A class never seen in fit is different from every reference sample.
    r_all = brute_reach(X[400:], np.full(200, 99), reference=X[:400], ref_y=y[:400])
    assert_allclose(srt.robustness(X[400:], np.full(200, 99)), r_all / (r_all + 1), rtol=RTOL)


def test_regression_transform_uses_nearest_target():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=200)
    srt = SampleRobustnessTransformer().fit(X[:150], y[:150])
    assert srt.task_ == "regression"
    assert_allclose(srt.transform(X[:150])[:, 0], srt.robustness_, rtol=RTOL)
    nearest = np.argmin(((X[150:, None] - X[None, :150]) ** 2).sum(-1), axis=1)
    q = brute_q(X[150:], y[:150][nearest], reference=X[:150], ref_Y=y[:150])  # Q / ||y||
    assert_allclose(srt.transform(X[150:])[:, 0], 1 / (1 + q), rtol=RTOL)
    q_t = brute_q(X[150:], y[150:], reference=X[:150], ref_Y=y[:150])
    assert_allclose(srt.robustness(X[150:], y[150:]), 1 / (1 + q_t), rtol=RTOL)


def test_regression_fit_transform_with_conflicting_duplicates():
    X = np.array([[0.0], [0.0], [1.0], [3.0]])
    y = np.array([1.0, 2.0, 2.0, 4.0])
    srt = SampleRobustnessTransformer(task="regression")
    out = srt.fit_transform(X, y)
    # Row 2's nearest others (rows 0 and 1) tie: its pseudo-target is either's.
    assert_allclose(out[[0, 1, 3]], brute_loo_regression(X, y)[[0, 1, 3]], rtol=RTOL)
    assert srt.robustness_[0] == 0.0 and srt.robustness_[1] == 0.0


def test_pandas_in_and_out(digits):
    X, y = digits
    df = pd.DataFrame(X, columns=[f"px{i}" for i in range(64)], index=np.arange(600) + 1000)
    srt = SampleRobustnessTransformer().set_output(transform="pandas")
    out = srt.fit_transform(df, pd.Series(y, index=df.index))
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["robustness"]
    assert_array_equal(out.index, df.index)
    assert_array_equal(srt.feature_names_in_, df.columns)
    assert_allclose(out["robustness"], brute_loo_transform(X, y)[:, 0], rtol=RTOL)
    with pytest.warns(UserWarning, match="feature names"):
        srt.transform(X[:5])


def test_in_pipeline(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), SampleRobustnessTransformer())
    R = pipe.fit_transform(X, y)
    Xs = StandardScaler().fit_transform(X)
    assert_allclose(R, brute_loo_transform(Xs, y), rtol=RTOL)
    assert_allclose(pipe[-1].robustness_, brute_robustness(Xs, y, "classification"), rtol=RTOL)


def test_n_jobs_and_progress_bar_give_the_same_result(digits, capsys):
    X, y = digits
    ref = sample_robustness(X, y, batch_size=64)
    assert_allclose(sample_robustness(X, y, batch_size=64, n_jobs=2), ref, rtol=1e-12)
    assert_allclose(sample_robustness(X, y, batch_size=64, verbose=1), ref, rtol=1e-12)
    assert "block" in capsys.readouterr().err
    Xr, yr = X[:200], X[:200, 20] + X[:200, 30]
    assert_allclose(
        sample_robustness(Xr, yr, task="regression", batch_size=32, n_jobs=2),
        sample_robustness(Xr, yr, task="regression", batch_size=32),
        rtol=1e-12,
    )


def test_joblib_backend_is_honoured(digits):
    from joblib import parallel_config

    X, y = digits
    with parallel_config(backend="loky", n_jobs=2):
        R = sample_robustness(X[:300], y[:300], batch_size=50, n_jobs=2)
    assert_allclose(R, brute_robustness(X[:300], y[:300], "classification"), rtol=RTOL)


# --------------------------------------------------------------------------------------
# Bad input: a clear error, never a wrong number
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_X_is_an_error(bad):
    X = np.random.default_rng(0).normal(size=(10, 2))
    X[3, 1] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        sample_robustness(X, [0, 1] * 5)
    with pytest.raises(ValueError, match="NaN|infinity"):
        SampleRobustnessTransformer().fit(X, [0, 1] * 5)


def test_non_finite_y_is_an_error():
    X = np.random.default_rng(0).normal(size=(10, 2))
    y = np.arange(10.0)
    y[2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sample_robustness(X, y)


def test_one_class_is_an_error():
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="one class"):
        sample_robustness(X, np.zeros(10, dtype=int))
    with pytest.raises(ValueError, match="at least two distinct target"):
        sample_robustness(X, np.ones(10), task="regression")


def test_zero_regression_targets_are_an_error():
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match=r"\|\|y\|\|_inf = 0"):
        sample_robustness(X, np.zeros(10), task="regression")


def test_empty_and_mismatched_input_are_errors():
    with pytest.raises(ValueError, match="0 sample"):
        sample_robustness(np.empty((0, 3)), [])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        sample_robustness(np.zeros((5, 2)), [0, 1, 0])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        SampleRobustnessTransformer().fit(np.zeros((5, 2)), [0, 1, 0])


def test_unfitted_and_feature_mismatch_are_errors(digits):
    X, y = digits
    srt = SampleRobustnessTransformer()
    with pytest.raises(NotFittedError):
        srt.transform(X)
    with pytest.raises(NotFittedError):
        srt.robustness(X, y)
    srt.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        srt.transform(X[:, :10])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        srt.robustness(X[:10], y[:9])


def test_invalid_parameters_and_combinations():
    X = np.random.default_rng(0).normal(size=(10, 2))
    y = np.arange(10.0) + 0.5  # continuous: integral floats would count as classes
    with pytest.raises(ValueError, match="algorithm"):
        sample_robustness(X, y, algorithm="fast")
    with pytest.raises(ValueError, match="classification only"):
        sample_robustness(X, y, algorithm="approximate")
    with pytest.raises(ValueError, match="per_class"):
        SampleRobustnessTransformer(per_class=True).fit(X, y)
    with pytest.raises(ValueError, match="infer the task"):
        sample_robustness(X, [[0, 1]] * 10)  # multilabel indicator


def test_differently_labelled_duplicates_give_zero_without_warnings():
    X = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0], [5.0, 5.0]])
    y = np.array([0, 1, 1, 1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        R = sample_robustness(X, y)
        R_reg = sample_robustness(X, y.astype(float) + 1.0, task="regression")
    assert_array_equal(R[:2], 0.0)
    assert_array_equal(R_reg[:2], 0.0)
    assert np.all(R[2:] > 0) and np.all(R_reg[2:4] > 0)


def test_integer_valued_regression_target_warns():
    """load_diabetes: 214 'classes' among 442 samples is a regression target."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    with pytest.warns(UserWarning, match="214 classes among 442 samples") as record:
        sample_robustness(X, y)
    assert record[0].filename == __file__  # attributed to the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        R = sample_robustness(X, y, task="regression")
        sample_robustness(X, y, task="classification")
        sample_robustness(X, y % 3)  # three classes: no warning
    assert_allclose(R, brute_robustness(X, y, "regression"), rtol=RTOL)


# --------------------------------------------------------------------------------------
# The whole finite range (issue: silently wrong numbers at extreme magnitudes)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e-200, 1e-30, 1e20, 1e150, 1e300])
def test_extreme_magnitudes_match_brute_force(scale):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(120, 5)), rng.integers(0, 3, 120)
    srt = SampleRobustnessTransformer().fit(X[:80] * scale, y[:80])
    reach = brute_reach(X[:80] * scale, y[:80])
    assert_allclose(srt.reach_, reach, rtol=RTOL)
    assert_allclose(srt.reach_ / scale, brute_reach(X[:80], y[:80]), rtol=1e-9)
    R_t = brute_reach(X[80:] * scale, y[80:], reference=X[:80] * scale, ref_y=y[:80])
    assert_allclose(srt.robustness(X[80:] * scale, y[80:]), R_t / (R_t + 1), rtol=RTOL)


def test_one_outlier_leaves_the_other_rows_alone():
    """An outlier at 1e30 among N(0, 1) rows made every reach inf (R = 1.0)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 5)), rng.integers(0, 3, 300)
    X[7] = 1e30
    srt = SampleRobustnessTransformer().fit(X, y)
    assert_allclose(srt.reach_, brute_reach(X, y), rtol=RTOL)
    assert srt.robustness_[np.arange(300) != 7].max() < 0.9
    queries = rng.normal(size=(50, 5))
    D = np.sqrt(((queries[:, None] - X[None]) ** 2).sum(-1))
    per_class = np.stack([D[:, y == k].min(1) for k in range(3)], 1)
    second = np.sort(per_class, axis=1)[:, 1]
    assert_allclose(srt.transform(queries)[:, 0], second / (second + 1), rtol=RTOL)


@pytest.mark.parametrize(
    "x_scale, y_scale", [(1.0, 1e200), (1.0, 1e-200), (1e160, 1.0), (1e-160, 1e300)]
)
def test_regression_extreme_magnitudes(x_scale, y_scale):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 3)), rng.normal(size=100)
    R = sample_robustness(X * x_scale, y * y_scale)
    assert_allclose(R, brute_robustness(X * x_scale, y * y_scale, "regression"), rtol=RTOL)
    assert_allclose(R, sample_robustness(X * x_scale, y), rtol=1e-9)  # y's scale is moot
    srt = SampleRobustnessTransformer().fit(X[:70] * x_scale, y[:70] * y_scale)
    q = brute_q(
        X[70:] * x_scale, y[70:] * y_scale, reference=X[:70] * x_scale, ref_Y=y[:70] * y_scale
    )
    assert_allclose(srt.robustness(X[70:] * x_scale, y[70:] * y_scale), 1 / (1 + q), rtol=RTOL)


@pytest.mark.parametrize(
    "metric, degree",
    [("cityblock", 1), ("chebyshev", 1), ("minkowski", 1), ("sqeuclidean", 2), ("cosine", 0)],
)
@pytest.mark.parametrize("power", [-200, 200, 300])
def test_cdist_metrics_over_the_finite_range(metric, degree, power):
    """cdist metrics square or take norms inside: the data are scaled first."""
    rng = np.random.default_rng(0)
    X, y, yr = rng.normal(size=(60, 3)), rng.integers(0, 2, 60), rng.normal(size=60)
    s = 10.0**power
    with np.errstate(over="ignore"):
        factor = np.float64(s) ** degree
    reach = SampleRobustnessTransformer(metric=metric).fit(X, y).reach_
    scaled = SampleRobustnessTransformer(metric=metric).fit(X * s, y).reach_
    finite = np.isfinite(reach * factor) & (reach * factor > 1e-300)
    assert_allclose(scaled[finite], reach[finite] * factor, rtol=1e-9)
    assert np.all(np.isinf(scaled[~finite]) | (scaled[~finite] < 1e-290))
    R = sample_robustness(X, yr, metric=metric)
    q = (1 / R - 1) / factor
    expected = 1 / (1 + q)
    assert_allclose(sample_robustness(X * s, yr, metric=metric), expected, rtol=1e-9)


def test_knn_soft_labels_over_the_finite_range():
    from skrob import knn_soft_labels

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), rng.integers(0, 3, 60)
    eta = knn_soft_labels(X, y, n_neighbors=4)
    for s in (1e-200, 1e200):
        assert_allclose(knn_soft_labels(X * s, y, n_neighbors=4), eta)
    assert_allclose(knn_soft_labels(X + 1e9, y, n_neighbors=4), eta)  # no cancellation


def test_missing_labels_are_named():
    X = np.random.default_rng(0).normal(size=(6, 2))
    with pytest.raises(ValueError, match="labels of y are missing"):
        sample_robustness(X, np.array([0, None, 1, 0, 1, 1], dtype=object))
    with pytest.raises(ValueError, match="labels of y are missing"):
        sample_robustness(X, np.array([0, None, 1, 0, 1, 1], dtype=object), task="classification")


@pytest.mark.parametrize("metric", ["seuclidean", "mahalanobis"])
@pytest.mark.parametrize("batch_size", [16, None])
def test_data_dependent_metrics_do_not_depend_on_the_blocks(metric, batch_size):
    """scipy computes V / VI from each cdist call's rows: per block, they would differ.
    skrob fixes them once, from the reference set (variance / covariance, ddof=1)."""
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 3)) * [1, 10, 100], rng.integers(0, 2, 100)
    params = (
        {"V": X.var(axis=0, ddof=1)}
        if metric == "seuclidean"
        else {"VI": np.linalg.inv(np.cov(X.T))}
    )
    D = cdist(X, X, metric=metric, **params)
    D[y[:, None] == y[None, :]] = np.inf
    r = D.min(axis=1)
    R = sample_robustness(X, y, metric=metric, batch_size=batch_size)
    assert_allclose(R, r / (r + 1), rtol=1e-9)
    srt = SampleRobustnessTransformer(metric=metric, batch_size=batch_size).fit(X, y)
    assert_allclose(srt.robustness_, R, rtol=1e-12)


def test_scikit_learn_metric_names_and_params():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), rng.integers(0, 2, 60)
    assert_allclose(
        sample_robustness(X, y, metric="manhattan"), sample_robustness(X, y, metric="cityblock")
    )
    assert_allclose(sample_robustness(X, y, metric="l2"), sample_robustness(X, y))
    cubic = sample_robustness(X, y, metric="minkowski", metric_params={"p": 3})
    from scipy.spatial.distance import cdist

    D = cdist(X, X, "minkowski", p=3)
    D[y[:, None] == y[None, :]] = np.inf
    r = D.min(axis=1)
    assert_allclose(cubic, r / (r + 1), rtol=1e-9)
    with pytest.raises(ValueError, match="Unknown metric 'nope'"):
        sample_robustness(X, y, metric="nope")


def test_metric_params_errors_name_them():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.arange(40) % 3
    with pytest.raises(ValueError, match=r"does not take metric_params=\{'q': 3\}"):
        sample_robustness(X, y, metric="minkowski", metric_params={"q": 3})
    with pytest.raises(ValueError, match="constant features"):
        sample_robustness(np.c_[np.ones(40), X[:, 0]], y, metric="seuclidean")


@pytest.mark.parametrize(
    "params, message",
    [
        ({"VI": np.eye(2)}, r"metric_params\['VI'\] must have shape \(3, 3\)"),
        ({"V": np.ones(4)}, r"metric_params\['V'\] must have shape \(3,\)"),
    ],
)
def test_metric_params_of_the_wrong_shape_are_named(params, message):
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.arange(20) % 2
    metric = "mahalanobis" if "VI" in params else "seuclidean"
    with pytest.raises(ValueError, match=message):
        sample_robustness(X, y, metric=metric, metric_params=params)


def test_missing_labels_are_counted_and_the_fix_is_to_drop_them():
    X = np.random.default_rng(0).normal(size=(6, 2))
    for y in (
        np.array(["a", "b", np.nan, "a", None, "b"], dtype=object),
        np.array([0.0, 1.0, np.nan, 0.0, np.nan, 1.0]),
    ):
        with pytest.raises(ValueError, match="2 labels of y are missing.*drop those rows"):
            sample_robustness(X, y)


def test_features_in_different_units_warn_and_images_do_not():
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.preprocessing import StandardScaler

    from skrob import IntrinsicRobustnessEstimator, diagnose, knn_soft_labels, label_issues

    X, y = load_breast_cancer(return_X_y=True)
    for call in (
        lambda: sample_robustness(X, y),
        lambda: SampleRobustnessTransformer().fit(X, y),
        lambda: diagnose(X, y),
        lambda: label_issues(X, y),
        lambda: knn_soft_labels(X, y),
        lambda: IntrinsicRobustnessEstimator(0.1).fit(X, np.zeros(len(y))),
    ):
        with pytest.warns(UserWarning, match="Standardise X first"):
            call()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sample_robustness(StandardScaler().fit_transform(X), y)
        sample_robustness(X, y, metric="seuclidean")  # scale-free: no warning
        digits, labels = load_digits(return_X_y=True)
        sample_robustness(digits, labels)  # one unit for every pixel


@pytest.mark.parametrize(
    "algorithm, params, named",
    [
        ("exact", {"n_neighbors": 10}, "n_neighbors"),
        ("exact", {"nprobe": 8}, "nprobe"),
        ("approximate", {"n_neighbors": 10}, "n_neighbors"),  # Euclidean: inverted lists
        ("nndescent", {"nprobe": 8, "batch_size": 64}, "batch_size"),
    ],
)
def test_a_parameter_the_chosen_backend_ignores_is_refused(algorithm, params, named):
    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    with pytest.raises(ValueError, match=f"does not use.*{named}"):
        sample_robustness(X, y, algorithm=algorithm, **params)
    with pytest.raises(ValueError, match=f"does not use.*{named}"):
        SampleRobustnessTransformer(algorithm=algorithm, **params).fit(X, y)
    # with algorithm="auto" the data choose the backend: nothing to refuse
    sample_robustness(X, y, **params)
