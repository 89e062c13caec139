import itertools

import numpy as np
import pandas as pd
import pytest
import sklearn
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.datasets import load_digits, load_iris, make_regression
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, StratifiedKFold, check_cv
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrob import (
    RobustSubsetEstimator,
    RobustSubsetSelector,
    SampleRobustnessTransformer,
    sample_robustness,
)
from skrob._subsets import aligned_counts, shared_bins
from tests._reference import brute_robustness


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def _quota_ok(k, target_counts):
    """Every k_b is K t_b / T rounded down or up: |k_b T - K t_b| < T."""
    k, t = np.asarray(k), np.asarray(target_counts)
    return bool(np.all(np.abs(k * t.sum() - k.sum() * t) < t.sum()))


def _brute_largest(counts, target_counts):
    """Largest K over every k <= counts that satisfies the quota rule (enumeration)."""
    ranges = [range(c + 1) for c in counts]
    return max(sum(k) for k in itertools.product(*ranges) if _quota_ok(k, target_counts))


# --------------------------------------------------------------------------------------
# "align": the largest proportional subset
# --------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda b: st.tuples(
            st.lists(st.integers(0, 5), min_size=b, max_size=b),
            st.lists(st.integers(0, 6), min_size=b, max_size=b).filter(lambda t: sum(t) > 0),
        )
    )
)
@example(([5, 5, 5], [1, 2, 1]))
@example(([0, 10, 3], [1, 100, 5]))  # a bin the training set lacks still allows K < T/t_b
@example(([3, 3], [0, 5]))
def test_aligned_counts_is_the_largest_proportional_subset(data):
    counts, target = data
    k = aligned_counts(counts, target)
    assert np.all(k >= 0) and np.all(k <= counts)
    assert _quota_ok(k, target)
    assert k.sum() == _brute_largest(counts, target)


def test_aligned_counts_chunked_scan_matches_one_chunk():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 3000, 12)
    target = rng.integers(1, 500, 12)
    assert_array_equal(aligned_counts(counts, target, chunk=7), aligned_counts(counts, target))


def test_align_selector_is_largest_and_proportional(global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    X = rng.normal(size=(60, 3))
    y = rng.integers(0, 2, 60)
    target = rng.beta(5, 2, size=25) * 0.6
    selector = RobustSubsetSelector(strategy="align", n_bins=3, random_state=0)
    selector.fit(X, y, target_robustness=target)
    R = brute_robustness(X, y, "classification")
    assert_allclose(selector.robustness_, R, rtol=1e-6)
    train_bin, target_bin = shared_bins(R, target, 3)
    counts = np.bincount(train_bin, minlength=3)
    target_counts = np.bincount(target_bin, minlength=3)
    kept = np.bincount(train_bin[selector.sample_indices_], minlength=3)
    assert _quota_ok(kept, target_counts)
    assert kept.sum() == _brute_largest(counts, target_counts)
    assert np.unique(selector.sample_indices_).size == selector.sample_indices_.size


def test_align_with_target_data_uses_the_targets_own_robustness(iris):
    X, y = iris
    Xt, yt = X[::3], y[::3]
    a = RobustSubsetSelector(strategy="align", random_state=0).fit(X, y, target_X=Xt, target_y=yt)
    b = RobustSubsetSelector(strategy="align", random_state=0).fit(
        X, y, target_robustness=sample_robustness(Xt, yt)
    )
    assert_allclose(a.target_robustness_, brute_robustness(Xt, yt, "classification"), rtol=1e-6)
    assert_array_equal(a.sample_indices_, b.sample_indices_)


def test_align_is_reproducible_and_seed_dependent(iris):
    X, y = iris
    target = sample_robustness(X[::2], y[::2])

    def run(seed):
        selector = RobustSubsetSelector(strategy="align", random_state=seed)
        return selector.fit(X, y, target_robustness=target).sample_indices_

    assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


# --------------------------------------------------------------------------------------
# most / least / threshold / class_balanced
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["most", "least"])
@pytest.mark.parametrize("fraction", [0.5, 0.8, 1.0, 7])
def test_most_and_least_keep_the_extremes(iris, strategy, fraction):
    X, y = iris
    selector = RobustSubsetSelector(strategy=strategy, fraction=fraction).fit(X, y)
    R = brute_robustness(X, y, "classification")
    kept = selector.sample_indices_
    n_keep = fraction if isinstance(fraction, int) else round(fraction * len(X))
    assert kept.size == n_keep
    assert_array_equal(kept, np.sort(kept))
    rest = np.setdiff1d(np.arange(len(X)), kept)
    if rest.size:
        if strategy == "most":
            assert R[kept].min() >= R[rest].max() - 1e-12
        else:
            assert R[kept].max() <= R[rest].min() + 1e-12


def test_regression_targets(global_random_seed):
    X, y = make_regression(n_samples=80, n_features=4, noise=1.0, random_state=global_random_seed)
    selector = RobustSubsetSelector(strategy="least", fraction=0.25).fit(X, y)
    R = brute_robustness(X, y, "regression")
    assert_allclose(selector.robustness_, R, rtol=1e-6)
    assert_array_equal(selector.sample_indices_, np.sort(np.argsort(R, kind="stable")[:20]))


def test_threshold(iris):
    X, y = iris
    R = sample_robustness(X, y)
    cut = np.quantile(R, 0.3)
    selector = RobustSubsetSelector(strategy="threshold", threshold=cut).fit(X, y)
    assert_array_equal(selector.sample_indices_, np.flatnonzero(R >= cut))


@pytest.mark.parametrize("strategy", ["most", "least"])
def test_class_balanced_extremes_per_class(strategy):
    X, y = load_digits(return_X_y=True)
    X, y = X[:400], y[:400]
    selector = RobustSubsetSelector(strategy=strategy, fraction=0.5, class_balanced=True)
    kept = selector.fit(X, y).sample_indices_
    assert_array_equal(np.bincount(y[kept]), np.full(10, 20))
    R = selector.robustness_
    for c in range(10):
        members = np.flatnonzero(y == c)
        inside = np.intersect1d(members, kept)
        outside = np.setdiff1d(members, kept)
        if strategy == "most":
            assert R[inside].min() >= R[outside].max()
        else:
            assert R[inside].max() <= R[outside].min()


def test_class_balanced_caps_at_the_smallest_class():
    X, y = load_digits(return_X_y=True)
    keep = np.r_[np.flatnonzero(y != 3), np.flatnonzero(y == 3)[:12]]
    X, y = X[keep], y[keep]
    kept = RobustSubsetSelector(fraction=0.9, class_balanced=True).fit(X, y).sample_indices_
    assert_array_equal(np.bincount(y[kept]), np.full(10, 12))


def test_class_balanced_threshold_draws_the_smallest_qualifying_count(iris):
    X, y = iris
    R = sample_robustness(X, y)
    cut = np.quantile(R, 0.4)
    selector = RobustSubsetSelector(
        strategy="threshold", threshold=cut, class_balanced=True, random_state=0
    ).fit(X, y)
    kept = selector.sample_indices_
    qualifying = np.bincount(y[R >= cut], minlength=3)
    assert_array_equal(np.bincount(y[kept], minlength=3), np.full(3, qualifying.min()))
    assert np.all(R[kept] >= cut)


def test_class_balanced_int_sets_the_number_per_class(iris):
    X, y = iris
    kept = RobustSubsetSelector(class_balanced=7).fit(X, y).sample_indices_
    assert_array_equal(np.bincount(y[kept]), [7, 7, 7])
    with pytest.raises(ValueError, match="needs 60 samples of every class; class 0 has only 50"):
        RobustSubsetSelector(class_balanced=60).fit(X, y)


def test_fit_resample_keeps_pandas_and_row_order(iris):
    X, y = iris
    df = pd.DataFrame(X, columns=list("abcd"), index=np.arange(150) * 2)
    s = pd.Series(y, index=df.index, name="label")
    selector = RobustSubsetSelector(strategy="least", fraction=0.2)
    X_sub, y_sub = selector.fit_resample(df, s)
    assert isinstance(X_sub, pd.DataFrame) and isinstance(y_sub, pd.Series)
    assert_array_equal(X_sub.index, df.index[selector.sample_indices_])
    assert_array_equal(selector.feature_names_in_, list("abcd"))
    X_np, y_np = clone(selector).fit_resample(X, y)
    assert_array_equal(X_np, X_sub.to_numpy())
    assert_array_equal(y_np, y_sub.to_numpy())


def test_custom_robustness_transformer_is_cloned(iris):
    X, y = iris
    robustness = SampleRobustnessTransformer(metric="cityblock")
    selector = RobustSubsetSelector(robustness=robustness).fit(X, y)
    assert not hasattr(robustness, "robustness_")
    assert_allclose(
        selector.robustness_, brute_robustness(X, y, "classification", "cityblock"), rtol=1e-6
    )


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, fit_params, match",
    [
        ({"strategy": "rpr"}, {}, "strategy='rpr' needs robustness=RPRScorer"),
        ({"strategy": "threshold"}, {}, "needs a threshold"),
        ({"strategy": "threshold", "threshold": 2.0}, {}, "selected no samples"),
        ({"strategy": "align"}, {}, "enable_metadata_routing=True"),
        ({}, {"target_robustness": [0.5]}, "for strategy='align' only"),
        ({"strategy": "align", "class_balanced": True}, {}, "not defined for strategy='align'"),
        ({"strategy": "align"}, {"target_robustness": [0.1, np.nan]}, "non-empty and finite"),
        ({"strategy": "align"}, {"target_X": np.ones((2, 4))}, "go together"),
        ({"fraction": 151}, {}, "Cannot keep 151 samples of 150"),
        ({"fraction": 1.5}, {}, "fraction"),
        ({"strategy": "middle"}, {}, "strategy"),
    ],
)
def test_bad_parameters(iris, params, fit_params, match):
    X, y = iris
    with pytest.raises(ValueError, match=match):
        RobustSubsetSelector(**params).fit(X, y, **fit_params)


def test_bad_data(iris):
    X, y = iris
    with pytest.raises(ValueError, match="NaN"):
        RobustSubsetSelector().fit(np.where(X > 7, np.nan, X), y)
    with pytest.raises(ValueError, match="one class only"):
        RobustSubsetSelector().fit(X, np.zeros(150))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        RobustSubsetSelector().fit(X, y[:-1])
    with pytest.raises(ValueError, match="class labels"):
        RobustSubsetSelector(class_balanced=True).fit(X, X[:, 0] * 1.01)


# --------------------------------------------------------------------------------------
# In pipelines
# --------------------------------------------------------------------------------------


def test_selector_in_imblearn_pipeline(iris):
    imblearn_pipeline = pytest.importorskip("imblearn.pipeline")
    X, y = iris
    pipe = imblearn_pipeline.make_pipeline(
        StandardScaler(), RobustSubsetSelector(fraction=0.5), KNeighborsClassifier()
    )
    pipe.fit(X, y)
    scaled = StandardScaler().fit_transform(X)
    selector = RobustSubsetSelector(fraction=0.5).fit(scaled, y)
    ref = KNeighborsClassifier().fit(scaled[selector.sample_indices_], y[selector.sample_indices_])
    assert_array_equal(pipe.predict(X), ref.predict(scaled))
    assert pipe.predict(X).shape == (150,)  # samplers are skipped at predict time


def test_estimator_fits_on_the_subset_and_predicts_every_row(iris):
    X, y = iris
    selector = RobustSubsetSelector(strategy="least", fraction=0.3)
    model = RobustSubsetEstimator(LogisticRegression(max_iter=500), selector)
    with pytest.warns(UserWarning, match=r"no sample of the classes \[0\]"):
        model.fit(X, y)  # setosa is far from the other classes: none is least robust
    idx = clone(selector).fit(X, y).sample_indices_
    ref = LogisticRegression(max_iter=500).fit(X[idx], y[idx])
    assert_array_equal(model.sample_indices_, idx)
    assert_allclose(model.predict_proba(X), ref.predict_proba(X))
    assert_allclose(model.decision_function(X), ref.decision_function(X))
    assert model.predict(X).shape == (150,)
    assert model.score(X, y) == ref.score(X, y)
    assert_array_equal(model.classes_, [1, 2])
    assert model.n_features_in_ == 4


def test_estimator_tags_follow_the_inner_estimator():
    classifier = RobustSubsetEstimator(KNeighborsClassifier(), RobustSubsetSelector())
    regressor = RobustSubsetEstimator(Ridge(), RobustSubsetSelector())
    assert is_classifier(classifier) and not is_regressor(classifier)
    assert is_regressor(regressor) and not is_classifier(regressor)
    y = np.repeat([0, 1], 10)
    assert isinstance(check_cv(5, y, classifier=is_classifier(classifier)), StratifiedKFold)
    assert not hasattr(RobustSubsetEstimator(Ridge()), "predict_proba")


def test_estimator_subsets_sample_weight_without_routing(iris):
    X, y = iris
    w = np.random.default_rng(0).uniform(0.1, 2.0, 150)
    model = RobustSubsetEstimator(LogisticRegression(max_iter=500)).fit(X, y, sample_weight=w)
    idx = model.sample_indices_
    ref = LogisticRegression(max_iter=500).fit(X[idx], y[idx], sample_weight=w[idx])
    assert_allclose(model.predict_proba(X), ref.predict_proba(X))


def test_estimator_routes_metadata(iris):
    X, y = iris
    w = np.random.default_rng(0).uniform(0.1, 2.0, 150)
    target = sample_robustness(X[::2], y[::2])
    with sklearn.config_context(enable_metadata_routing=True):
        inner = LogisticRegression(max_iter=500).set_fit_request(sample_weight=True)
        selector = RobustSubsetSelector(strategy="align", random_state=0).set_fit_request(
            target_robustness=True
        )
        model = RobustSubsetEstimator(inner, selector)
        model.fit(X, y, sample_weight=w, target_robustness=target)
        idx = selector.fit(X, y, target_robustness=target).sample_indices_
        ref = LogisticRegression(max_iter=500).fit(X[idx], y[idx], sample_weight=w[idx])
        assert_array_equal(model.sample_indices_, idx)
        assert_allclose(model.predict_proba(X), ref.predict_proba(X))
        with pytest.raises(sklearn.exceptions.UnsetMetadataPassedError):
            RobustSubsetEstimator(LogisticRegression()).fit(X, y, sample_weight=w)


def test_estimator_in_pipeline_and_grid_search(iris):
    X, y = iris
    model = make_pipeline(
        StandardScaler(),
        RobustSubsetEstimator(KNeighborsClassifier(), RobustSubsetSelector()),
    )
    grid = {
        "robustsubsetestimator__selector__fraction": [0.5, 1.0],
        "robustsubsetestimator__estimator__n_neighbors": [1, 7],
    }
    search = GridSearchCV(model, grid, cv=3).fit(X, y)
    # fraction=1.0 keeps everything: the same scores as the plain model.
    plain = GridSearchCV(
        make_pipeline(StandardScaler(), KNeighborsClassifier()),
        {"kneighborsclassifier__n_neighbors": [1, 7]},
        cv=3,
    ).fit(X, y)
    full = search.cv_results_["param_robustsubsetestimator__selector__fraction"] == 1.0
    assert_allclose(
        search.cv_results_["mean_test_score"][full], plain.cv_results_["mean_test_score"]
    )


def test_estimator_unfitted_and_feature_mismatch(iris):
    X, y = iris
    model = RobustSubsetEstimator(LogisticRegression())
    with pytest.raises(NotFittedError):
        model.predict(X)
    model.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :3])


def test_messages_name_labels_as_python_values():
    """class 0, not class np.int64(0); string labels in objects arrays work too."""
    X, y = load_iris(return_X_y=True)
    y = y.copy()
    y[:45] = 3  # class 0 keeps 5 samples
    with pytest.raises(ValueError, match=r"class 0 has only 5"):
        RobustSubsetSelector(class_balanced=20).fit(X, y)
    labels = np.array(["setosa", "versicolor", "virginica", "x"], dtype=object)[y]
    with pytest.raises(ValueError, match=r"class 'setosa' has only 5"):
        RobustSubsetSelector(class_balanced=20).fit(X, labels)
    _, y_res = RobustSubsetSelector(class_balanced=True).fit_resample(X, labels)
    assert set(y_res) == set(labels)


def test_unset_score_request_is_an_up_front_error():
    """As for the estimator alone: not NaN in every split of the search."""
    import sklearn
    from sklearn.exceptions import UnsetMetadataPassedError
    from sklearn.model_selection import GridSearchCV
    from sklearn.utils.fixes import parse_version

    X, y = load_iris(return_X_y=True)
    w = np.ones(len(y))
    with sklearn.config_context(enable_metadata_routing=True):
        inner = LogisticRegression(max_iter=300).set_fit_request(sample_weight=True)
        search = GridSearchCV(RobustSubsetEstimator(inner), {"selector": [None]}, cv=3)
        if parse_version(sklearn.__version__) >= parse_version("1.7"):
            with pytest.raises(UnsetMetadataPassedError, match="RobustSubsetEstimator.score"):
                search.fit(X, y, sample_weight=w)
        else:  # scikit-learn 1.6 does not route fit's metadata to the scorer: no NaN either
            search.fit(X, y, sample_weight=w)
            assert np.isfinite(search.cv_results_["mean_test_score"]).all()
        search.estimator.set_score_request(sample_weight=True)  # goes to the inner score
        search.fit(X, y, sample_weight=w)
        assert np.isfinite(search.cv_results_["mean_test_score"]).all()
