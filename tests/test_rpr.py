import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.tree import DecisionTreeClassifier

from skrob import (
    GaussianNoise,
    PixelNoise,
    RobustSubsetSelector,
    RPRScorer,
    label_flip_rate,
    rpr_curve,
    rpr_steps,
)


class Linear(ClassifierMixin, BaseEstimator):
    """sign(w.x + b) with fixed weights, and a counter of predicted rows."""

    def __init__(self, w, b=0.0):
        self.w = w
        self.b = b

    def fit(self, X, y=None):
        self.classes_ = np.array([0, 1])
        self.rows_ = 0
        return self

    def predict(self, X):
        X = np.asarray(X)
        self.rows_ += X.shape[0]
        return (X @ np.asarray(self.w) + self.b > 0).astype(int)


def _geometric_pmf(p, max_steps):
    """P(steps = k), k = 0..max_steps, for paper 001's RPR = min(G, M): G ~ Geometric(p) on
    {1, 2, ...} is the step that first fools the model; P(0) = 0 (correct samples)."""
    k = np.arange(1, max_steps)
    pmf = (1 - p) ** (k - 1) * p
    return np.concatenate(([0.0], pmf, [(1 - p) ** (max_steps - 1)]))


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    model = LogisticRegression(max_iter=3000).fit(X[:1200], y[:1200])
    return model, X[1200:1500], y[1200:1500]


# --------------------------------------------------------------------------------------
# Closed form: a linear classifier under Gaussian noise
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.02, 0.1, 0.4])
def test_steps_follow_the_capped_geometric_law(global_random_seed, p):
    """A sample at margin m fails a step with p = Phi(-m / (sigma ||w||))."""
    rng = np.random.default_rng(global_random_seed)
    n, d, sigma, max_steps = 4000, 5, 0.5, 40
    w = rng.normal(size=d)
    margin = -stats.norm.ppf(p) * sigma * np.linalg.norm(w)
    X = rng.normal(size=(n, d))
    X += ((margin - X @ w) / (w @ w))[:, None] * w  # every sample at w.x = margin
    y = np.ones(n, dtype=int)
    model = Linear(w).fit(X)
    steps = rpr_steps(
        model,
        X,
        y,
        perturbation=GaussianNoise(sigma),
        max_steps=max_steps,
        random_state=global_random_seed,
    )
    pmf = _geometric_pmf(p, max_steps)
    mean = (np.arange(max_steps + 1) * pmf).sum()
    sd = np.sqrt((np.arange(max_steps + 1) ** 2 * pmf).sum() - mean**2)
    assert abs(steps.mean() - mean) < 4.5 * sd / np.sqrt(n)
    q = (1 - p) ** (max_steps - 1)  # robust: not fooled before the last step
    assert abs(np.mean(steps == max_steps) - q) < 4.5 * np.sqrt(q * (1 - q) / n) + 1e-12
    # The whole distribution: chi-square over bins with enough expected counts.
    counts = np.bincount(steps, minlength=max_steps + 1)
    expected = pmf * n
    keep = expected >= 5
    observed = np.append(counts[keep], counts[~keep].sum())
    expected = np.append(expected[keep], expected[~keep].sum())
    if expected[-1] == 0:
        observed, expected = observed[:-1], expected[:-1]
    assert stats.chisquare(observed, expected).pvalue > 1e-4


def test_mixed_margins_mean_steps(global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    n, d, sigma, max_steps = 6000, 4, 1.0, 25
    w = np.array([1.0, -2.0, 0.5, 1.0])
    X = rng.normal(size=(n, d))
    y = (X @ w > 0).astype(int)
    p = stats.norm.cdf(-np.abs(X @ w) / (sigma * np.linalg.norm(w)))
    # E[min(G, M)] = sum_{k=1..M} P(G >= k), G the step that first fools the model
    expected = (1 - (1 - p) ** max_steps) / np.maximum(p, 1e-300)
    model = Linear(w).fit(X)
    scorer = RPRScorer(
        GaussianNoise(sigma), max_steps=max_steps, statistic="mean_steps", random_state=1
    )
    var = sum(
        ((np.arange(max_steps + 1) - e) ** 2 * _geometric_pmf(pi, max_steps)).sum()
        for pi, e in zip(p[:200], expected[:200], strict=True)
    ) * (n / 200)
    assert abs(scorer(model, X, y) - expected.mean()) < 4.5 * np.sqrt(var) / n
    robust = RPRScorer(GaussianNoise(sigma), max_steps=max_steps, random_state=1)
    q = (1 - p) ** (max_steps - 1)  # robust: not fooled before the last step
    assert abs(robust(model, X, y) - q.mean()) < 4.5 * np.sqrt((q * (1 - q)).sum()) / n


def test_misclassified_get_zero_and_a_constant_model_max_steps():
    X = np.random.default_rng(0).normal(size=(100, 3))
    y = np.repeat([0, 1], 50)
    constant = DummyClassifier(strategy="constant", constant=1).fit(X, y)
    steps = rpr_steps(constant, X, y, perturbation=GaussianNoise(10.0), max_steps=30)
    assert_array_equal(steps, np.repeat([0, 30], 50))
    model = Linear(np.array([1.0, 0, 0])).fit(X)
    steps = rpr_steps(model, X, 1 - model.predict(X), perturbation=GaussianNoise(0.1))
    assert_array_equal(steps, 0)


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000, None])
def test_independent_of_batch_size(digits, batch_size):
    model, X, y = digits
    reference = rpr_steps(model, X, y, perturbation=PixelNoise(), max_steps=60, random_state=5)
    steps = rpr_steps(
        model, X, y, perturbation=PixelNoise(), max_steps=60, batch_size=batch_size, random_state=5
    )
    assert_array_equal(steps, reference)
    other = rpr_steps(model, X, y, perturbation=PixelNoise(), max_steps=60, random_state=6)
    assert not np.array_equal(other, reference)


def test_samples_leave_as_soon_as_they_fail():
    X = np.random.default_rng(0).normal(size=(300, 2)) + [3.0, 0.0]
    y = np.ones(300, dtype=int)
    model = Linear(np.array([1.0, 0.0])).fit(X)

    def flip(X, rng):  # every perturbation crosses the boundary
        return -X

    # the first perturbation fools every correct sample: RPR 1; misclassified: 0
    steps = rpr_steps(model, X, y, perturbation=flip, max_steps=250)
    assert_array_equal(steps, (X[:, 0] > 0).astype(int))
    correct = np.sum(X[:, 0] > 0)
    assert 250 < correct < 300
    assert model.rows_ == 300 + correct  # the originals, then one copy of each correct one

    model.fit(X)
    steps = rpr_steps(model, X, y, perturbation=GaussianNoise(2.0), max_steps=250, random_state=0)
    failed = steps < 250
    # Rounds of 1, 2, 4, ... steps: at most 2 s - 1 copies for a sample fooled at step s.
    assert model.rows_ <= 300 + (2 * steps[failed] - 1).sum() + 250 * (~failed).sum()
    assert failed.any() and (~failed).any()


def test_dataframe_input_reaches_the_model_as_a_dataframe(digits):
    model, X, y = digits
    columns = [f"p{i}" for i in range(64)]
    df_model = LogisticRegression(max_iter=3000).fit(pd.DataFrame(X, columns=columns), y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        steps = rpr_steps(
            df_model,
            pd.DataFrame(X, columns=columns),
            pd.Series(y),
            perturbation=PixelNoise(),
            max_steps=20,
            random_state=0,
        )
    assert steps.shape == (len(y),)


def test_bad_input(digits):
    model, X, y = digits
    kwargs = dict(perturbation=PixelNoise(), max_steps=5)
    with pytest.raises(NotFittedError):
        rpr_steps(LogisticRegression(), X, y, **kwargs)
    with pytest.raises(ValueError, match="NaN"):
        rpr_steps(model, np.where(X > 0.9, np.nan, X), y, **kwargs)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        rpr_steps(model, X, y[:-1], **kwargs)
    with pytest.raises(ValueError, match="one label per sample"):
        rpr_steps(model, X, np.c_[y, y], **kwargs)
    with pytest.raises(ValueError, match="max_steps"):
        rpr_steps(model, X, y, perturbation=PixelNoise(), max_steps=0)
    with pytest.raises(ValueError, match="keep the shape"):
        rpr_steps(model, X, y, perturbation=lambda X, rng: X[:, :3], max_steps=3)
    with pytest.raises(ValueError, match="0 sample"):
        rpr_steps(model, X[:0], y[:0], **kwargs)
    with pytest.raises(ValueError, match="features"):
        rpr_steps(model, X[:, :10], y, **kwargs)


# --------------------------------------------------------------------------------------
# rpr_curve, label_flip_rate, RPRScorer
# --------------------------------------------------------------------------------------


def test_rpr_curve_against_brute_force():
    steps = np.random.default_rng(0).integers(0, 31, 500)
    curve = rpr_curve(steps, 30)
    assert_allclose(curve, [np.mean(steps >= s) for s in range(1, 31)])
    assert np.all(np.diff(curve) <= 0)
    with pytest.raises(ValueError, match="integers in"):
        rpr_curve([0, 31], 30)
    with pytest.raises(ValueError, match="non-empty"):
        rpr_curve(np.array([], dtype=int), 30)
    with pytest.raises(ValueError, match="integers in"):
        rpr_curve([0.5, 1.0], 30)


def test_label_flip_rate_is_the_flip_probability():
    rng = np.random.default_rng(0)
    w = np.array([1.0, 1.0])
    X = rng.normal(size=(50, 2))
    model = Linear(w).fit(X)
    p = stats.norm.cdf(-np.abs(X @ w) / (0.7 * np.linalg.norm(w)))
    n_samples = 3000
    rate = label_flip_rate(
        model, X, perturbation=GaussianNoise(0.7), n_samples=n_samples, random_state=0
    )
    assert np.all(np.abs(rate - p) < 4.5 * np.sqrt(p * (1 - p) / n_samples) + 1e-9)
    again = label_flip_rate(
        model,
        X,
        perturbation=GaussianNoise(0.7),
        n_samples=n_samples,
        batch_size=77,
        random_state=0,
    )
    assert_array_equal(rate, again)
    constant = DummyClassifier().fit(X, np.zeros(50))
    assert_array_equal(label_flip_rate(constant, X, perturbation=GaussianNoise(9.0)), 0)


def test_scorer_in_cross_validation(digits):
    model, X, y = digits
    scorer = RPRScorer(PixelNoise(), max_steps=30, random_state=0)
    steps = rpr_steps(model, X, y, perturbation=PixelNoise(), max_steps=30, random_state=0)
    assert scorer(model, X, y) == np.mean(steps == 30)
    assert (
        RPRScorer(PixelNoise(), max_steps=30, statistic="mean_steps", random_state=0)(model, X, y)
        == steps.mean()
    )
    Xd, yd = load_digits(return_X_y=True)
    scores = cross_val_score(
        DecisionTreeClassifier(random_state=0), Xd[:600] / 16, yd[:600], scoring=scorer, cv=3
    )
    assert np.all((scores >= 0) & (scores <= 1)) and scores.max() > 0
    search = GridSearchCV(
        DecisionTreeClassifier(random_state=0), {"max_depth": [2, 8]}, scoring=scorer, cv=3
    ).fit(Xd[:600] / 16, yd[:600])
    assert search.best_params_["max_depth"] in (2, 8)


def test_scorer_fit_and_selector(digits):
    model, X, y = digits
    scorer = RPRScorer(
        PixelNoise(), max_steps=40, random_state=0, estimator=LogisticRegression(max_iter=3000)
    )
    selector = RobustSubsetSelector(strategy="rpr", robustness=scorer).fit(X, y)
    fitted = LogisticRegression(max_iter=3000).fit(X, y)
    steps = rpr_steps(fitted, X, y, perturbation=PixelNoise(), max_steps=40, random_state=0)
    assert_array_equal(selector.sample_indices_, np.flatnonzero(steps == 40))
    assert_allclose(selector.robustness_, steps / 40)
    # A frozen, already fitted model is perturbed as it is.
    frozen = scorer.set_params(estimator=FrozenEstimator(model))
    selector = RobustSubsetSelector(strategy="rpr", robustness=frozen, class_balanced=True)
    kept = selector.fit(
        X,
        y,
    ).sample_indices_
    steps = rpr_steps(model, X, y, perturbation=PixelNoise(), max_steps=40, random_state=0)
    robust = steps == 40
    assert np.all(robust[kept])
    per_class = np.bincount(y[kept], minlength=10)
    assert np.all(per_class == np.bincount(y[robust], minlength=10).min())
    default = RPRScorer(PixelNoise(), max_steps=5).fit(X, y)  # estimator=None
    assert type(default.estimator_).__name__ == "LogisticRegression"
    with pytest.raises(ValueError, match="not an RPRScorer"):
        RobustSubsetSelector(strategy="align", robustness=scorer).fit(X, y, target_robustness=[1])


@pytest.mark.parametrize("perturbation", [PixelNoise(), GaussianNoise(0.3, clip=(0, 1))], ids=repr)
def test_in_place_path_equals_the_plain_callable(digits, perturbation):
    """skrob's perturbations write into the batch buffer; a plain callable is copied in."""
    model, X, y = digits
    kwargs = dict(max_steps=50, batch_size=300, random_state=3)
    fast = rpr_steps(model, X, y, perturbation=perturbation, **kwargs)
    plain = rpr_steps(model, X, y, perturbation=lambda X, rng: perturbation(X, rng), **kwargs)
    assert_array_equal(fast, plain)
    assert 0 < np.mean(fast == 50) < 1


def test_scorer_compares_candidates_on_the_same_perturbations():
    """random_state=None: common random numbers, so a model scores the same every call."""
    X, y = load_digits(return_X_y=True)
    X = X / 16
    model = LogisticRegression(max_iter=500).fit(X[:500], y[:500])
    scorer = RPRScorer(PixelNoise(), max_steps=30)
    first = scorer(model, X[500:700], y[500:700])
    assert scorer(model, X[500:700], y[500:700]) == first
    assert (
        RPRScorer(PixelNoise(), max_steps=30, random_state=0)(model, X[500:700], y[500:700])
        == first
    )
    fresh = RPRScorer(PixelNoise(), max_steps=30, random_state=np.random.RandomState(0))
    scores = {fresh(model, X[500:700], y[500:700]) for _ in range(4)}
    assert len(scores) > 1  # a RandomState instance draws anew


def test_errors_name_the_problem():
    X, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=200).fit(X[:200] / 16, y[:200])

    class TwoColumns:
        def predict(self, X):
            return np.zeros((len(X), 2))

    with pytest.raises(ValueError, match=r"returned shape \(60, 2\)"):
        rpr_steps(TwoColumns(), X[:60], y[:60], perturbation=GaussianNoise(0.1))
    with pytest.raises(ValueError, match="The 'sigma' parameter of GaussianNoise"):
        rpr_steps(model, X[:60] / 16, y[:60], perturbation=GaussianNoise(-1.0))
    # a huge batch_size allocates only the rows that one round needs
    steps = rpr_steps(
        model,
        X[:60] / 16,
        y[:60],
        perturbation=GaussianNoise(0.1),
        batch_size=10**9,
        max_steps=5,
        random_state=0,
    )
    assert_array_equal(
        steps,
        rpr_steps(
            model, X[:60] / 16, y[:60], perturbation=GaussianNoise(0.1), max_steps=5, random_state=0
        ),
    )
    half = rpr_steps(
        model,
        (X[:60] / 16).astype(np.float16),
        y[:60],
        perturbation=GaussianNoise(0.1),
        max_steps=5,
        random_state=0,
    )
    assert half.shape == (60,)


def test_polars_input_stays_polars():
    """A model fitted on a polars DataFrame gets polars blocks (RPRScorer, label_flip_rate)."""
    pl = pytest.importorskip("polars")
    X, y = load_digits(return_X_y=True)
    X = X[:200] / 16
    columns = [f"px{i}" for i in range(64)]
    frame = pl.DataFrame(X, schema=columns, orient="row")

    class PolarsOnly(LogisticRegression):
        def predict(self, Z):
            assert isinstance(Z, pl.DataFrame) and Z.columns == columns
            return super().predict(Z.to_numpy())

    model = PolarsOnly(max_iter=300).fit(X, y[:200])
    plain = LogisticRegression(max_iter=300).fit(X, y[:200])
    scorer = RPRScorer(GaussianNoise(0.05), max_steps=5)
    assert scorer(model, frame, y[:200]) == scorer(plain, X, y[:200])  # the same draws
    rate = label_flip_rate(model, frame, perturbation=GaussianNoise(0.05), n_samples=4)
    assert rate.shape == (200,)
