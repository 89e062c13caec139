import numpy as np
import pandas as pd
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils import shuffle

from skrob import SampleRobustnessTransformer, sample_robustness
from skrob.model_selection import (
    RobustnessSubsetSplit,
    balanced_nested_subsets,
    robustness_learning_curve,
    subset_scorer,
)
from tests._reference import brute_reach, brute_robustness


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return shuffle(X[:500], y[:500], random_state=0)


def _extreme(R, subset, k):
    order = np.argsort(R if subset == "least" else -R, kind="stable")
    return np.sort(order[:k])


# --------------------------------------------------------------------------------------
# The splitter against brute force
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("subset", ["least", "most"])
def test_split_reference_fold(digits, subset):
    X, y = digits
    splits = list(RobustnessSubsetSplit(cv=5, subset=subset, fraction=0.3).split(X, y))
    base = list(StratifiedKFold(5).split(X, y))  # an int cv stratifies class labels
    assert len(splits) == 5
    for (train, test), (base_train, base_test) in zip(splits, base, strict=True):
        assert_array_equal(train, base_train)
        R = brute_robustness(X[base_test], y[base_test], "classification")
        assert_array_equal(test, base_test[_extreme(R, subset, 30)])


def test_split_reference_train(digits):
    X, y = digits
    cv = RobustnessSubsetSplit(KFold(4), subset="least", fraction=0.5, reference="train")
    for (train, test), (_, base_test) in zip(cv.split(X, y), KFold(4).split(X), strict=True):
        r = brute_reach(X[base_test], y[base_test], reference=X[train], ref_y=y[train])
        assert_array_equal(test, base_test[_extreme(r / (r + 1), "least", 62)])


def test_split_all_is_the_base_cv(digits):
    X, y = digits
    cv = RobustnessSubsetSplit(KFold(3), subset="all")
    for (a, b), (c, d) in zip(cv.split(X, y), KFold(3).split(X), strict=True):
        assert_array_equal(a, c)
        assert_array_equal(b, d)
    assert cv.get_n_splits(X, y) == 3
    assert RobustnessSubsetSplit(7).get_n_splits() == 7


def test_split_regression_uses_kfold():
    X, y = make_regression(n_samples=60, n_features=3, random_state=0)
    splits = list(RobustnessSubsetSplit(cv=3, subset="most", fraction=0.5).split(X, y))
    for (train, test), (base_train, base_test) in zip(splits, KFold(3).split(X), strict=True):
        assert_array_equal(train, base_train)
        R = brute_robustness(X[base_test], y[base_test], "regression")
        assert_array_equal(test, base_test[_extreme(R, "most", 10)])


def test_split_bad_input(digits):
    X, y = digits
    with pytest.raises(ValueError, match="needs y"):
        next(RobustnessSubsetSplit().split(X))
    with pytest.raises(ValueError, match="subset"):
        next(RobustnessSubsetSplit(subset="middle").split(X, y))
    with pytest.raises(ValueError, match="reference"):
        next(RobustnessSubsetSplit(reference="test").split(X, y))
    with pytest.raises(ValueError, match="NaN"):
        next(RobustnessSubsetSplit().split(np.where(X > 15, np.nan, X), y))


# --------------------------------------------------------------------------------------
# The scorer, and its agreement with the splitter
# --------------------------------------------------------------------------------------


def test_scorer_scores_the_chosen_part(digits):
    X, y = digits
    model = KNeighborsClassifier(3).fit(X[:300], y[:300])
    Xt, yt = X[300:], y[300:]
    R = brute_robustness(Xt, yt, "classification")
    for subset in ("least", "most"):
        kept = _extreme(R, subset, 100)
        expected = np.mean(model.predict(Xt[kept]) == yt[kept])
        assert subset_scorer("accuracy", subset=subset)(model, Xt, yt) == expected
    assert subset_scorer(None, subset="all")(model, Xt, yt) == model.score(Xt, yt)


@pytest.mark.parametrize("subset", ["least", "most"])
def test_splitter_with_fold_reference_equals_scorer(digits, subset):
    X, y = digits
    grid = {"n_neighbors": [1, 3, 9], "weights": ["uniform", "distance"]}
    base = StratifiedKFold(4, shuffle=True, random_state=0)
    by_split = GridSearchCV(
        KNeighborsClassifier(),
        grid,
        cv=RobustnessSubsetSplit(base, subset=subset, fraction=0.5),
        scoring="accuracy",
    ).fit(X, y)
    by_scorer = GridSearchCV(
        KNeighborsClassifier(),
        grid,
        cv=base,
        scoring=subset_scorer("accuracy", subset=subset, fraction=0.5),
    ).fit(X, y)
    for i in range(4):
        key = f"split{i}_test_score"
        assert_allclose(by_split.cv_results_[key], by_scorer.cv_results_[key])
    assert by_split.best_params_ == by_scorer.best_params_

    a = cross_validate(
        LogisticRegression(max_iter=300),
        X,
        y,
        cv=RobustnessSubsetSplit(base, subset=subset),
        scoring="balanced_accuracy",
    )
    b = cross_validate(
        LogisticRegression(max_iter=300),
        X,
        y,
        cv=base,
        scoring=subset_scorer("balanced_accuracy", subset=subset),
    )
    assert_allclose(a["test_score"], b["test_score"])


def test_least_and_most_folds_give_different_scores(digits):
    X, y = digits
    scores = {
        subset: cross_validate(
            KNeighborsClassifier(1), X, y, cv=RobustnessSubsetSplit(4, subset=subset)
        )["test_score"].mean()
        for subset in ("least", "most")
    }
    # The most robust digits are far from every other class: 1-NN gets them right.
    assert scores["most"] > 0.99
    assert scores["least"] < scores["most"]


def test_routed_robustness(digits):
    X, y = digits
    R = sample_robustness(X, y)  # robustness against the whole set, routed per fold
    folds = list(KFold(4).split(X))
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = subset_scorer("accuracy", subset="least").set_score_request(robustness=True)
        result = cross_validate(
            KNeighborsClassifier(), X, y, cv=folds, scoring=scorer, params={"robustness": R}
        )
    for score, (train, test) in zip(result["test_score"], folds, strict=True):
        kept = test[_extreme(R[test], "least", len(test) // 2)]
        model = KNeighborsClassifier().fit(X[train], y[train])
        assert score == np.mean(model.predict(X[kept]) == y[kept])


def test_routed_sample_weight_reaches_the_inner_scorer(digits):
    X, y = digits
    w = np.random.default_rng(0).uniform(0.1, 3.0, len(y))
    model = LogisticRegression(max_iter=300).fit(X[:300], y[:300])
    Xt, yt, wt = X[300:], y[300:], w[300:]
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = subset_scorer("accuracy", subset="most").set_score_request(
            robustness=False, sample_weight=True
        )
        got = scorer(model, Xt, yt, sample_weight=wt)
    kept = _extreme(sample_robustness(Xt, yt), "most", 100)
    pred = model.predict(Xt[kept])
    assert_allclose(got, np.average(pred == yt[kept], weights=wt[kept]))


def test_scorer_pandas_and_custom_robustness(digits):
    X, y = digits
    df, s = pd.DataFrame(X[300:]), pd.Series(y[300:])
    model = KNeighborsClassifier().fit(pd.DataFrame(X[:300]), y[:300])
    scorer = subset_scorer(
        "accuracy",
        subset="least",
        fraction=40,
        robustness=SampleRobustnessTransformer(metric="cityblock"),
    )
    kept = _extreme(brute_robustness(X[300:], y[300:], "classification", "cityblock"), "least", 40)
    assert scorer(model, df, s) == np.mean(model.predict(df.iloc[kept]) == s.iloc[kept])


def test_scorer_bad_input(digits):
    X, y = digits
    model = Ridge().fit(X, y)
    with pytest.raises(ValueError, match="one value per sample"):
        subset_scorer("r2")(model, X, y, robustness=np.ones(3))
    with pytest.raises(ValueError, match="subset"):
        subset_scorer("r2", subset="middle")
    with pytest.raises(RuntimeError, match="metadata routing"):
        subset_scorer("r2").set_score_request(robustness=True)
    X_reg, y_reg = make_regression(n_samples=40, n_features=3, random_state=0)
    reg = Ridge().fit(X_reg, y_reg)
    kept = _extreme(brute_robustness(X_reg, y_reg, "regression"), "most", 20)
    assert_allclose(
        subset_scorer("r2", subset="most")(reg, X_reg, y_reg), reg.score(X_reg[kept], y_reg[kept])
    )


def test_scorer_repr():
    assert "subset='most'" in repr(subset_scorer("accuracy", subset="most"))
    assert "RobustnessSubsetSplit(cv=5" in repr(RobustnessSubsetSplit())


def test_balanced_nested_subsets():
    from skrob.model_selection import balanced_nested_subsets

    y = np.repeat([0, 1, 2], [50, 40, 60])
    sets = balanced_nested_subsets(y, [30, 60, 120], random_state=0)
    for small, large in zip(sets, sets[1:], strict=False):
        assert set(small) <= set(large)
    for s, size in zip(sets, [30, 60, 120], strict=True):
        assert_array_equal(np.bincount(y[s]), np.full(3, size // 3))
    again = balanced_nested_subsets(y, [30, 60, 120], random_state=0)
    assert all(np.array_equal(a, b) for a, b in zip(sets, again, strict=True))
    with pytest.raises(ValueError, match="multiple of the 3 classes"):
        balanced_nested_subsets(y, [31])
    with pytest.raises(ValueError, match="has 40"):
        balanced_nested_subsets(y, [150])
    with pytest.raises(ValueError, match="increasing"):
        balanced_nested_subsets(y, [60, 30])


def test_robustness_learning_curve(digits):
    from skrob.model_selection import balanced_nested_subsets, robustness_learning_curve

    X, y = digits
    X_train, y_train, X_test, y_test = X[:400], y[:400], X[400:], y[400:]
    counts = np.bincount(y_train).min()
    sizes = [100, 10 * counts]
    curve = robustness_learning_curve(
        LogisticRegression(max_iter=300),
        X_train,
        y_train,
        X_test,
        y_test,
        train_sizes=sizes,
        scoring={"accuracy": "accuracy", "least robust half": subset_scorer("accuracy")},
        random_state=0,
    )
    assert curve["train_size"].tolist() == sizes
    sets = balanced_nested_subsets(y_train, sizes, random_state=0)
    model = LogisticRegression(max_iter=300).fit(X_train[sets[0]], y_train[sets[0]])
    assert curve["accuracy"][0] == model.score(X_test, y_test)


def test_fold_errors_say_they_are_about_a_fold():
    from sklearn.datasets import load_iris
    from sklearn.model_selection import KFold

    X, y = load_iris(return_X_y=True)  # sorted by class: KFold(3) folds hold one class
    with pytest.raises(ValueError, match=r"validation fold \(50 samples\).*StratifiedKFold"):
        list(RobustnessSubsetSplit(KFold(3)).split(X, y))


@pytest.mark.parametrize(
    "sizes, match",
    [([2.5, 4], "whole numbers"), ([[2, 4]], "1-D"), ([4, 2], "increasing"), (["a"], "integers")],
)
def test_balanced_nested_subsets_sizes(sizes, match):
    y = np.repeat([0, 1], 10)
    with pytest.raises(ValueError, match=match):
        balanced_nested_subsets(y, sizes)
    with pytest.raises(ValueError, match="1d array"):
        balanced_nested_subsets(np.c_[y, y], [2])
    # np.linspace gives floats: whole ones are sizes
    assert [len(s) for s in balanced_nested_subsets(y, np.linspace(4, 20, 3))] == [4, 12, 20]


def test_robustness_learning_curve_checks_scoring():
    from sklearn.neighbors import KNeighborsClassifier

    X, y = np.random.default_rng(0).normal(size=(20, 2)), np.repeat([0, 1], 10)
    with pytest.raises(ValueError, match="'scoring' parameter of robustness_learning_curve"):
        robustness_learning_curve(
            KNeighborsClassifier(1), X, y, X, y, train_sizes=[4], scoring="accuracy"
        )
    with pytest.raises(TypeError, match=r"scoring\['acc'\]"):
        robustness_learning_curve(
            KNeighborsClassifier(1), X, y, X, y, train_sizes=[4], scoring={"acc": 3}
        )


@pytest.mark.parametrize("reference", ["fold", "train"])
def test_rpr_scorer_is_a_robustness_source_for_the_splitter(reference):
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from skrob import PixelNoise, RPRScorer

    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16, y[:300]
    source = RPRScorer(PixelNoise(), max_steps=10, estimator=LogisticRegression(max_iter=300))
    splits = list(RobustnessSubsetSplit(3, reference=reference, robustness=source).split(X, y))
    assert len(splits) == 3 and all(len(test) == 50 for _, test in splits)
    with pytest.raises(TypeError, match="no robustness source"):
        list(RobustnessSubsetSplit(3, robustness=LogisticRegression()).split(X, y))


def test_groups_are_routed_to_the_base_splitter():
    import sklearn
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    X, y = load_iris(return_X_y=True)
    groups = np.arange(150) % 5
    cv = RobustnessSubsetSplit(GroupKFold(5))
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(KNeighborsClassifier(), {"n_neighbors": [1, 5]}, cv=cv)
        search.fit(X, y, groups=groups)
    for train, test in cv.split(X, y, groups):
        assert not set(groups[train]) & set(groups[test])
    with pytest.raises(ValueError, match="partitions"):
        cross_val_predict(KNeighborsClassifier(), X, y, cv=cv, groups=groups)


def test_subset_scorer_is_a_scikit_learn_scorer_for_tuned_thresholds():
    """TunedThresholdClassifierCV scores thresholds from predictions: routed robustness."""
    import sklearn
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import TunedThresholdClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    R = sample_robustness(StandardScaler().fit_transform(X), y)
    model = make_pipeline(StandardScaler(), LogisticRegression())
    with pytest.raises(ValueError, match="route it instead"):
        TunedThresholdClassifierCV(model, scoring=subset_scorer("balanced_accuracy")).fit(X, y)
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = subset_scorer("balanced_accuracy", subset="least", fraction=0.5)
        scorer.set_score_request(robustness=True)
        tuned = TunedThresholdClassifierCV(model, scoring=scorer, cv=3).fit(X, y, robustness=R)
    # the score of its best threshold is that on the least robust half of each fold
    assert 0 < tuned.best_score_ <= 1
    fitted = tuned.estimator_
    proba = fitted.predict_proba(X)[:, 1]
    kept = np.argsort(R, kind="stable")[: len(R) // 2]
    pred = (proba >= tuned.best_threshold_).astype(int)
    assert balanced_accuracy_score(y[kept], pred[kept]) > 0.5


def test_robustness_learning_curve_scores_robustness_on_the_common_set(digits):
    from skrob import DecisionDistortionScorer, decision_based_distortion
    from skrob.model_selection import balanced_nested_subsets, robustness_learning_curve

    X, y = digits
    X_train, y_train, X_test, y_test = X[:400], y[:400], X[400:480], y[400:480]
    sizes = [60, 200]
    scorer = DecisionDistortionScorer(max_queries=200, random_state=0)
    kw = dict(train_sizes=sizes, random_state=0, scoring={"acc": "accuracy", "dist": scorer})
    common = robustness_learning_curve(
        LogisticRegression(max_iter=300), X_train, y_train, X_test, y_test, **kw
    )
    per_model = robustness_learning_curve(
        LogisticRegression(max_iter=300),
        X_train,
        y_train,
        X_test,
        y_test,
        robustness_set="per_model",
        **kw,
    )
    models = [
        LogisticRegression(max_iter=300).fit(X_train[s], y_train[s])
        for s in balanced_nested_subsets(y_train, sizes, random_state=0)
    ]
    mask = np.logical_and.reduce([m.predict(X_test) == y_test for m in models])
    assert common["n_common"].tolist() == [int(mask.sum())] * 2
    for k, m in enumerate(models):
        d = decision_based_distortion(
            m, X_test[mask], y_test[mask], max_queries=200, random_state=0
        )
        assert common["dist"][k] == pytest.approx(d[np.isfinite(d)].mean())
        assert common["acc"][k] == per_model["acc"][k] == m.score(X_test, y_test)
    assert "n_common" not in per_model
