"""scikit-learn's estimator checks, for every skrob estimator (one registry)."""

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from skrob import (
    GaussianNoise,
    IntrinsicRobustnessEstimator,
    RobustSubsetEstimator,
    RobustSubsetSelector,
    RPRScorer,
    SampleRobustnessTransformer,
)

# Every estimator with the parameter sets it is checked with.
ESTIMATORS = [
    SampleRobustnessTransformer(),
    SampleRobustnessTransformer(per_class=True),
    SampleRobustnessTransformer(metric="cityblock", batch_size=16),
    RobustSubsetSelector(),
    RobustSubsetSelector(strategy="least", fraction=0.9, class_balanced=True),
    RobustSubsetEstimator(LogisticRegression(), RobustSubsetSelector(fraction=0.9)),
    RobustSubsetEstimator(KNeighborsClassifier(), RobustSubsetSelector(strategy="least")),
    RobustSubsetEstimator(Ridge(), RobustSubsetSelector(strategy="most")),
    RPRScorer(GaussianNoise(0.1), max_steps=5, random_state=0, estimator=LogisticRegression()),
    IntrinsicRobustnessEstimator(0.5, random_state=0),
    IntrinsicRobustnessEstimator(0.1, norm=np.inf, gamma=0.0, n_regions=2, random_state=0),
]

# Checks expected to fail, each with its reason.
EXPECTED_FAILED_CHECKS = {
    "IntrinsicRobustnessEstimator": {
        "check_dtype_object": "y is a label uncertainty in [0, 2]; this check's targets reach 3",
    },
}


_LEAVE_ONE_OUT = (
    "fit_transform is leave-one-out by design (no training row is scored against "
    "itself, as scikit-learn's TargetEncoder cross-fits), so it differs from "
    "fit().transform(); with per_class the difference exceeds the check's atol"
)


def _expected_failed_checks(estimator):
    if isinstance(estimator, SampleRobustnessTransformer) and estimator.per_class:
        return {
            "check_transformer_general": _LEAVE_ONE_OUT,
            "check_transformer_general(readonly_memmap=True)": _LEAVE_ONE_OUT,
            "check_transformer_data_not_an_array": _LEAVE_ONE_OUT,
        }
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
