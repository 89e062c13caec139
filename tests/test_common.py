"""scikit-learn's estimator checks, for every skrob estimator (one registry)."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skrob import SampleRobustnessTransformer

# Every estimator with the parameter sets it is checked with.
ESTIMATORS = [
    SampleRobustnessTransformer(),
    SampleRobustnessTransformer(per_class=True),
    SampleRobustnessTransformer(metric="cityblock", batch_size=16),
]

# Checks expected to fail, each with its reason.
EXPECTED_FAILED_CHECKS = {}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
