"""RobustSubsetSelector as an imbalanced-learn sampler: routed metadata and its checks."""

import numpy as np
import pytest
import sklearn
from sklearn.datasets import load_iris
from sklearn.neighbors import KNeighborsClassifier

from skrob import RobustSubsetSelector, sample_robustness

imblearn = pytest.importorskip("imblearn")
from imblearn.pipeline import make_pipeline  # noqa: E402
from imblearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

# imbalanced-learn's sampler checks that do not apply, each with its reason.
NOT_APPLICABLE = {
    "check_target_type": "the selector takes regression targets too (sample robustness of "
    "real targets), so a continuous y is no error",
    "check_samplers_fit": "sampling_strategy_ belongs to class-rebalancing samplers; the "
    "selector keeps a robust part, it does not rebalance classes",
    "check_samplers_multiclass_ova": "class labels are one column: sample robustness is "
    "not defined for one-vs-all indicator targets",
}


@parametrize_with_checks(
    [RobustSubsetSelector(), RobustSubsetSelector(strategy="least", class_balanced=True)],
    expected_failed_checks=lambda est: {
        k: v
        for k, v in NOT_APPLICABLE.items()
        if not (est.class_balanced and k == "check_target_type")  # class labels only
    },
)
def test_imbalanced_learn_sampler_checks(estimator, check):
    check(estimator)


def test_align_in_an_imbalanced_learn_pipeline_with_routing():
    """The call of the issue: routing the target robustness through the pipeline's fit."""
    X, y = load_iris(return_X_y=True)
    R_t = sample_robustness(X[::3], y[::3])
    with sklearn.config_context(enable_metadata_routing=True):
        selector = RobustSubsetSelector(strategy="align", random_state=0)
        selector.set_fit_resample_request(target_robustness=True)
        pipe = make_pipeline(selector, KNeighborsClassifier()).fit(X, y, target_robustness=R_t)
    kept = pipe[0].sample_indices_
    direct = RobustSubsetSelector(strategy="align", random_state=0)
    direct.fit(X, y, target_robustness=R_t)
    np.testing.assert_array_equal(kept, direct.sample_indices_)
    names = RobustSubsetSelector().fit(X, y).get_feature_names_out()
    assert list(names) == [f"x{i}" for i in range(4)]
