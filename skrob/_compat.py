"""scikit-learn's private API that skrob uses, in one place.

Everything here is public in spirit (scikit-learn's own estimators and its contributor
guide use it) but private in name, so a scikit-learn release may move it: one module to
fix. Tested on the lowest supported scikit-learn (1.6) and the newest in CI.
"""

from sklearn.base import _fit_context
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.metrics._scorer import _BaseScorer
from sklearn.utils import _safe_indexing
from sklearn.utils._metadata_requests import RequestMethod
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
    validate_params,
)
from sklearn.utils.metadata_routing import _routing_enabled
from sklearn.utils.validation import _check_feature_names_in, _check_method_params, _num_samples

__all__ = [
    "HasMethods",
    "Interval",
    "InvalidParameterError",
    "LinearClassifierMixin",
    "RequestMethod",
    "StrOptions",
    "_BaseScorer",
    "_check_feature_names_in",
    "_check_method_params",
    "_fit_context",
    "_num_samples",
    "_routing_enabled",
    "_safe_indexing",
    "validate_parameter_constraints",
    "validate_params",
]
