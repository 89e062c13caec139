"""preprocessor=: components outside the model measure robustness in the features the
model sees, equal to the same component on data transformed by hand."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrob import RobustnessSubsetSplit, RobustSubsetSelector, sample_robustness, subset_scorer

X, Y = load_breast_cancer(return_X_y=True)
X, Y = X[:300], Y[:300]


def test_selector_equals_the_selector_on_scaled_data():
    scaled = StandardScaler().fit_transform(X)
    with pytest.warns(UserWarning, match="Standardise"):  # raw units, and it says so
        RobustSubsetSelector(fraction=0.5).fit(X, Y)
    got = RobustSubsetSelector(fraction=0.5, preprocessor=StandardScaler()).fit(X, Y)
    want = RobustSubsetSelector(fraction=0.5).fit(scaled, Y)
    np.testing.assert_array_equal(got.sample_indices_, want.sample_indices_)
    np.testing.assert_allclose(got.robustness_, want.robustness_, rtol=1e-12)
    X_sub, y_sub = RobustSubsetSelector(fraction=0.5, preprocessor=StandardScaler()).fit_resample(
        X, Y
    )
    np.testing.assert_array_equal(X_sub, X[want.sample_indices_])  # the original rows


def _messy_table(n=200, seed=0):
    """An ID column of strings, a feature in thousands with a gap, a category."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "id": [f"C{i:04d}" for i in range(n)],
            "income": rng.normal(size=n) * 1000 + 5000,
            "score": rng.normal(size=n),
            "city": rng.choice(["north", "south", "east"], n),
        }
    )
    df.loc[[3, 17], "score"] = np.nan
    y = ((df["score"].fillna(0) + (df["city"] == "north")) > 0.3).astype(int).to_numpy()
    return df, y


def _encoder():
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    return ColumnTransformer(
        [("numbers", numbers, ["income", "score"]), ("city", OneHotEncoder(), ["city"])]
    )


def test_selector_takes_a_messy_table_its_preprocessor_encodes():
    """With a preprocessor, X is the preprocessor's to accept (text, IDs, gaps): the same
    rows as the selector on the encoded table, the original rows back, and the subset
    estimator fits and predicts on the table itself."""
    from skrob import RobustSubsetEstimator

    df, y = _messy_table()
    selector = RobustSubsetSelector(fraction=0.5, preprocessor=_encoder())
    X_sub, y_sub = selector.fit_resample(df, y)
    want = RobustSubsetSelector(fraction=0.5).fit(_encoder().fit_transform(df), y)
    np.testing.assert_array_equal(selector.sample_indices_, want.sample_indices_)
    assert X_sub.equals(df.iloc[want.sample_indices_])  # the rows as given, IDs and all
    model = RobustSubsetEstimator(make_pipeline(_encoder(), LogisticRegression()), selector)
    assert model.fit(df, y).score(df, y) > 0.8
    with pytest.raises(ValueError, match=r"'id' \(.*\), 'city' \("):  # no encoder: named
        RobustSubsetSelector(fraction=0.5).fit(df, y)
    # the splitter too: the same validation parts as on the encoded table
    cv = StratifiedKFold(3)
    raw = RobustnessSubsetSplit(cv, reference="train", preprocessor=_encoder())
    for (train, test), (train_e, test_e) in zip(
        raw.split(df, y), _encoded_folds(df, y, cv), strict=True
    ):
        np.testing.assert_array_equal(train, train_e)
        np.testing.assert_array_equal(test, test_e)


def _encoded_folds(df, y, cv):
    """RobustnessSubsetSplit's parts by hand: encoded on each training fold, the least
    robust half of each validation fold against it."""
    from skrob import SampleRobustnessTransformer
    from skrob.model_selection import subset_indices

    for train, test in cv.split(df, y):
        encoder = _encoder().fit(df.iloc[train], y[train])
        fitted = SampleRobustnessTransformer().fit(encoder.transform(df.iloc[train]), y[train])
        R = fitted.robustness(encoder.transform(df.iloc[test]), y[test])
        yield train, test[subset_indices(R, "least", 0.5)]


@pytest.mark.parametrize("reference", ["fold", "train"])
def test_split_scales_on_each_training_fold(reference):
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    split = RobustnessSubsetSplit(cv, reference=reference, preprocessor=StandardScaler())
    for (train, test), (train_ref, test_ref) in zip(split.split(X, Y), cv.split(X, Y), strict=True):
        np.testing.assert_array_equal(train, train_ref)
        # by hand: scale with the training fold, then the same split on scaled data
        scaler = StandardScaler().fit(X[train_ref])
        Z = np.vstack([scaler.transform(X[train_ref]), scaler.transform(X[test_ref])])
        y = np.concatenate([Y[train_ref], Y[test_ref]])
        n = len(train_ref)
        by_hand = RobustnessSubsetSplit(
            [(np.arange(n), n + np.arange(len(test_ref)))], reference=reference
        )
        ((_, kept),) = by_hand.split(Z, y)
        np.testing.assert_array_equal(test, test_ref[kept - n])


def test_scorer_measures_in_the_models_own_features():
    from skrob import sample_robustness

    model = make_pipeline(StandardScaler(), KNeighborsClassifier()).fit(X[:200], Y[:200])
    X_test, y_test = X[200:], Y[200:]
    plain = subset_scorer("accuracy")
    # "estimator": the Pipeline's own fitted scaling, learned on the training part
    got = subset_scorer("accuracy", preprocessor="estimator")(model, X_test, y_test)
    R = sample_robustness(model[0].transform(X_test), y_test)
    assert got == plain(model, X_test, y_test, robustness=R)
    # a transformer: fitted on the scored samples
    got = subset_scorer("accuracy", preprocessor=StandardScaler())(model, X_test, y_test)
    R = sample_robustness(StandardScaler().fit_transform(X_test), y_test)
    assert got == plain(model, X_test, y_test, robustness=R)
    scores = cross_val_score(
        make_pipeline(StandardScaler(), KNeighborsClassifier()),
        X,
        Y,
        scoring=subset_scorer("accuracy", preprocessor="estimator"),
        cv=3,
    )
    assert np.all((scores >= 0) & (scores <= 1))
    with pytest.raises(ValueError, match="not a Pipeline"):
        subset_scorer("accuracy", preprocessor="estimator")(model[-1], X_test, y_test)


def _units_warnings(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if "vary over less than" in str(w.message)]


@pytest.mark.parametrize(
    "call",
    [
        lambda X, y: sample_robustness(X, y),
        lambda X, y: list(RobustnessSubsetSplit(3).split(X, y)),
        # a search and a cross-validation run the scorer through joblib
        lambda X, y: GridSearchCV(
            LogisticRegression(max_iter=5000), {"C": [1.0]}, cv=RobustnessSubsetSplit(3)
        ).fit(X, y),
        lambda X, y: cross_val_score(
            LogisticRegression(max_iter=5000), X, y, cv=3, scoring=subset_scorer("accuracy")
        ),
    ],
    ids=["function", "splitter", "search", "cross_val_score"],
)
def test_units_warning_points_at_the_users_line(call):
    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:300], y[:300]
    caught = _units_warnings(lambda: call(X, y))
    assert caught, "no units warning"
    assert {w.filename for w in caught} == {__file__}


@settings(max_examples=60, deadline=None)
@given(
    exponent=st.integers(-300, 300),
    n=st.integers(1, 40),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_column_std_is_numpys_at_any_magnitude(exponent, n, seed, dtype):
    # the units warning's spreads: numpy's std of the columns scaled to unit maximum,
    # in row chunks (chunk=7 here: several of them), no float64 copy of X
    from skrob._validation import column_std

    rng = np.random.default_rng(seed)
    scale = 10.0**exponent if dtype == np.float64 else 10.0 ** (exponent % 60 - 30)
    X = (rng.normal(size=(n, 5)) * [1, 1e-3, 0, 1e3, 1] + [0, 5, 2, 0, 1e6]) * scale
    X = X.astype(dtype)
    top = np.abs(X.astype(np.float64)).max(axis=0)
    top[top == 0] = 1.0
    with np.errstate(over="ignore"):
        expected = (X.astype(np.float64) / top).std(axis=0) * top
    np.testing.assert_allclose(column_std(X, chunk=7), expected, rtol=1e-12, atol=0)
