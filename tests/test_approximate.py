"""The pynndescent backend (algorithm="nndescent"). It compiles with numba on first use
in a process (1-3 minutes here), so its tests are few and share one module-scoped
computation."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skrob import SampleRobustnessTransformer, sample_robustness

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits_both():
    X, y = load_digits(return_X_y=True)
    exact = sample_robustness(X, y, algorithm="exact")
    approx = sample_robustness(X, y, algorithm="nndescent", random_state=0)
    return X, y, exact, approx


def test_approximate_is_an_upper_bound_with_high_recall(digits_both):
    X, y, exact, approx = digits_both
    # Every reach is a real differently labelled sample's distance: never below exact.
    assert np.all(approx >= exact - 1e-12)
    recall = np.mean(np.isclose(approx, exact, rtol=1e-9, atol=0))
    assert recall >= 0.98


def test_approximate_is_deterministic_and_reachable_from_the_transformer(digits_both):
    X, y, _, approx = digits_both
    srt = SampleRobustnessTransformer(algorithm="nndescent", random_state=0).fit(X, y)
    np.testing.assert_array_equal(srt.robustness_, approx)


def test_approximate_accepts_a_random_state_instance(digits_both):
    X, y, _, approx = digits_both
    R = sample_robustness(X, y, algorithm="nndescent", random_state=np.random.RandomState(0))
    assert R.shape == approx.shape
    assert np.all(R >= digits_both[2] - 1e-12)


@pytest.mark.parametrize("metric", ["manhattan", "l1", "cosine", "canberra"])
def test_other_metrics_are_rescored_in_float64_and_never_below_exact(metric):
    """pynndescent ranks in float32; every reach it returns is re-scored in float64, so
    no robustness falls below the exact one (it did, by ~1e-8, for cosine and canberra),
    and scipy's names that pynndescent spells differently (cityblock) work."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:500] / 16.0, y[:500]
    exact = sample_robustness(X, y, metric=metric, algorithm="exact")
    approx = sample_robustness(X, y, metric=metric, algorithm="nndescent", random_state=0)
    assert np.all(approx >= exact * (1 - 1e-12))  # rounding of the same pair, at most
    assert np.mean(np.isclose(approx, exact, rtol=1e-12, atol=0)) >= 0.95
