"""Training on chosen parts of the data: the most, least or aligned robust samples.

Paper 000 trains on the least or most robust part of the training set, or on a part whose
robustness distribution matches the test set's; paper 001 trains on the samples a model
predicts correctly under every random perturbation. :class:`RobustSubsetSelector` makes
the choice (the imbalanced-learn sampler protocol, ``fit_resample``), and
:class:`RobustSubsetEstimator` puts it in front of any estimator for a plain
:class:`sklearn.pipeline.Pipeline`.
"""

import sys
from dataclasses import dataclass, replace
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.utils import check_random_state, get_tags, indexable
from sklearn.utils.metadata_routing import (
    MetadataRequest,
    MetadataRouter,
    MethodMapping,
    get_routing_for_object,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from skrob._compat import (
    HasMethods,
    Interval,
    RequestMethod,
    StrOptions,
    _check_feature_names_in,
    _check_method_params,
    _fit_context,
    _routing_enabled,
    _safe_indexing,
)
from skrob._sources import is_rpr, robustness_source, source_task
from skrob._subsets import STRATEGIES, class_balanced_indices, subset_indices
from skrob._validation import numeric_table, plain, warn_user

__all__ = ["RobustSubsetEstimator", "RobustSubsetSelector", "subset_indices"]


@dataclass
class _StrategyParams:
    """What a strategy function reads (skrob._subsets.STRATEGIES)."""

    strategy: str
    fraction: float
    cut: float | None
    n_bins: int
    class_balanced: bool | int
    target_robustness: np.ndarray | None


class RobustSubsetSelector(BaseEstimator):
    """Keep the most, least, aligned or RPR-robust part of a training set.

    A sampler with the imbalanced-learn protocol (``fit_resample``), usable in
    :class:`imblearn.pipeline.Pipeline` without depending on imbalanced-learn; in a plain
    scikit-learn pipeline wrap the model in :class:`RobustSubsetEstimator` instead.

    Parameters
    ----------
    strategy : {"most", "least", "threshold", "align", "rpr"}, default="most"
        - "most" / "least": keep ``fraction`` of the samples, most or least robust;
        - "threshold": keep the samples with robustness >= ``threshold``;
        - "align": keep the largest subset whose robustness histogram over ``n_bins``
          shared bins is proportional to a target's (each bin count is the target's
          share times the subset size, rounded down or up); the target is passed to
          ``fit_resample`` as ``target_robustness=`` or as ``target_X=, target_y=``
          (whose robustness is then computed on the target alone, as paper 000 does);
          samples within a bin are drawn at random;
        - "rpr": keep the samples that an estimator predicts correctly under every one
          of ``max_steps`` random perturbations (paper 001); ``robustness`` must be an
          ``RPRScorer(perturbation, estimator=model)``: a clone of ``model`` is fitted on
          the training data, then perturbed (wrap a fitted model in
          :class:`sklearn.frozen.FrozenEstimator` to skip the fit). "most", "least" and
          "threshold" take an ``RPRScorer`` too (robustness = steps / max_steps).
    fraction : float in (0, 1] or int, default=0.8
        Share (float) or number (int) of samples kept by "most" and "least".
    threshold : float, default=None
        Lowest robustness kept by "threshold".
    class_balanced : bool or int, default=False
        Keep the same number of samples of every class. With "most"/"least" that is
        ``n_keep // n_classes`` per class (at most the smallest class), the most or least
        robust of each class; with "threshold"/"rpr" it is the smallest class's number
        of qualifying samples, drawn at random. An int sets the number per class (an
        error where a class has fewer). Not defined for "align".
    robustness : SampleRobustnessTransformer or RPRScorer, default=None
        How robustness is computed; None means ``SampleRobustnessTransformer()``. It is
        cloned and fitted on the training data.
    n_bins : int, default=20
        Number of equal-width bins, over the range of both distributions, for "align".
    random_state : int, RandomState instance or None, default=None
        Draws within bins ("align") and within classes ("class_balanced").
    preprocessor : transformer, default=None
        Robustness is measured in its output: a clone is fitted on the training data
        (``target_X`` of "align" is transformed by it too), e.g. ``StandardScaler()`` for
        features in different units, or the scaling step of the model that follows. The
        kept rows are the original ones. X then goes to it as it is: a messy table (text
        and ID columns, missing values) works when the preprocessor encodes and imputes
        it, as a ColumnTransformer does.

    Attributes
    ----------
    sample_indices_ : ndarray of shape (n_selected,)
        Ascending indices of the kept samples.
    robustness_ : ndarray of shape (n_samples,)
        Robustness of every training sample.
    robustness_estimator_ : estimator
        The fitted clone of ``robustness``.
    preprocessor_ : transformer
        The fitted clone of ``preprocessor`` (when given).
    target_robustness_ : ndarray of shape (n_target,)
        The target's robustness ("align" only).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape ``(n_features_in_,)``
        Defined when ``X`` has feature names that are all strings.

    References
    ----------
    Introducing Sample Robustness. Anonymous authors, ICLR 2021 conference submission
    (paper 000), https://openreview.net/forum?id=8-sxWOto_iI

    A. Ilie, M. Popescu, A. Stefanescu. Robustness as Inherent Property of Datapoints.
    AISafety workshop at IJCAI-PRICAI 2020, CEUR Workshop Proceedings (paper 001).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skrob import RobustSubsetSelector
    >>> X, y = load_iris(return_X_y=True)
    >>> X_sub, y_sub = RobustSubsetSelector(strategy="most", fraction=0.5).fit_resample(X, y)
    >>> X_sub.shape
    (75, 4)
    """

    _parameter_constraints = {
        "strategy": [StrOptions({"most", "least", "threshold", "align", "rpr"})],
        "fraction": [
            Interval(Real, 0, 1, closed="right"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "threshold": [Real, None],
        "class_balanced": ["boolean", Interval(Integral, 1, None, closed="left")],
        "robustness": [HasMethods(["fit"]), None],
        "n_bins": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "preprocessor": [HasMethods(["fit", "transform"]), None],
    }

    def __init__(
        self,
        *,
        strategy="most",
        fraction=0.8,
        threshold=None,
        class_balanced=False,
        robustness=None,
        n_bins=20,
        random_state=None,
        preprocessor=None,
    ):
        self.strategy = strategy
        self.fraction = fraction
        self.threshold = threshold
        self.class_balanced = class_balanced
        self.robustness = robustness
        self.n_bins = n_bins
        self.random_state = random_state
        self.preprocessor = preprocessor

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, *, target_robustness=None, target_X=None, target_y=None):
        """Compute the robustness of ``(X, y)`` and choose the samples to keep.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        target_robustness : array-like of shape (n_target,), default=None
            Robustness distribution to align with (strategy="align").
        target_X, target_y : array-like, default=None
            Target set whose robustness is computed on itself (strategy="align").

        Returns
        -------
        self : object
        """
        strategy = self.strategy
        if self.preprocessor is None:
            Xv, yv = numeric_table(self, X, y)
        else:  # X is the preprocessor's to accept; its output is checked as robustness's X
            Xv, yv = validate_data(
                self,
                X,
                y,
                accept_sparse=True,
                dtype=None,
                ensure_all_finite=False,
                multi_output=True,
                y_numeric=False,
            )
        self._check_strategy(target_robustness, target_X, target_y)
        source = robustness_source(self.robustness)
        if self.robustness is None:
            source.set_params(random_state=self.random_state)
        # The original X: an RPRScorer's model may want a DataFrame or images.
        X_fit = X if hasattr(X, "iloc") else Xv
        if self.preprocessor is not None:  # robustness in the features the model sees
            self.preprocessor_ = clone(self.preprocessor).fit(X_fit, yv)
            X_fit = self.preprocessor_.transform(X_fit)
            if target_X is not None:
                target_X = self.preprocessor_.transform(target_X)
        self.robustness_estimator_ = source.fit(X_fit, yv)
        self.robustness_ = self.robustness_estimator_.robustness_

        rng = check_random_state(self.random_state)
        params = _StrategyParams(
            strategy=strategy,
            fraction=self.fraction,
            cut=1.0 if strategy == "rpr" else self.threshold,
            n_bins=self.n_bins,
            class_balanced=self.class_balanced,
            target_robustness=None,
        )
        if strategy == "align":
            if target_robustness is None:
                target = clone(self.robustness_estimator_).fit(target_X, target_y)
                target_robustness = target.robustness_
            target_robustness = np.asarray(target_robustness, dtype=np.float64).ravel()
            if target_robustness.size == 0 or not np.all(np.isfinite(target_robustness)):
                raise ValueError("target_robustness must be non-empty and finite.")
            self.target_robustness_ = params.target_robustness = target_robustness
        if self.class_balanced is not False:
            if source_task(self.robustness_estimator_, yv) != "classification":
                raise ValueError("class_balanced=True needs class labels.")
            indices = class_balanced_indices(self.robustness_, yv, params, rng, plain)
        else:
            indices = STRATEGIES[strategy](self.robustness_, yv, params, rng)
        if indices.size == 0:
            raise ValueError(
                f"strategy={strategy!r} selected no samples "
                f"(robustness ranges over [{self.robustness_.min():.4g}, "
                f"{self.robustness_.max():.4g}])."
            )
        self.sample_indices_ = indices
        return self

    def _check_strategy(self, target_robustness, target_X, target_y):
        """The strategy's own requirements, each with an error that says what is missing."""
        strategy = self.strategy
        rpr = self.robustness is not None and is_rpr(self.robustness)
        if strategy == "rpr" and not rpr:
            raise ValueError(
                "strategy='rpr' needs robustness=RPRScorer(perturbation, estimator=model) "
                f"(skrob.rpr), the scorer that runs the perturbations; got {self.robustness!r}."
            )
        if strategy == "align" and rpr:
            raise ValueError("strategy='align' needs sample robustness, not an RPRScorer.")
        if strategy == "threshold" and self.threshold is None:
            raise ValueError("strategy='threshold' needs a threshold.")
        if strategy == "align" and self.class_balanced is not False:
            raise ValueError("class_balanced is not defined for strategy='align'.")
        has_target = target_robustness is not None or target_X is not None
        if strategy == "align" and not has_target:
            raise ValueError(
                "strategy='align' needs the distribution to align with: "
                "fit(X, y, target_robustness=R_test) or fit(X, y, target_X=, target_y=). "
                "Inside RobustSubsetEstimator or GridSearchCV, route it: "
                "sklearn.set_config(enable_metadata_routing=True), "
                "selector.set_fit_request(target_robustness=True), then pass "
                "target_robustness= to the outer fit."
            )
        if strategy != "align" and has_target:
            raise ValueError(
                f"target_robustness, target_X and target_y are for strategy='align' only; "
                f"strategy={strategy!r}."
            )
        if target_robustness is not None and (target_X is not None or target_y is not None):
            raise ValueError("Pass either target_robustness or target_X, target_y, not both.")
        if (target_X is None) != (target_y is None):
            raise ValueError("target_X and target_y go together.")

    def fit_resample(self, X, y, *, target_robustness=None, target_X=None, target_y=None):
        """Fit, then return the kept rows of ``X`` and ``y`` (pandas stays pandas).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        target_robustness, target_X, target_y : array-like, default=None
            The distribution to align with (strategy="align"), as in :meth:`fit`. In an
            imbalanced-learn Pipeline with metadata routing enabled, request them with
            ``set_fit_resample_request(target_robustness=True)`` and pass them to the
            pipeline's ``fit``.

        Returns
        -------
        X_resampled : array-like of shape (n_selected, n_features)
        y_resampled : array-like of shape (n_selected,) or (n_selected, n_outputs)
        """
        self.fit(X, y, target_robustness=target_robustness, target_X=target_X, target_y=target_y)
        return _safe_indexing(X, self.sample_indices_), _safe_indexing(y, self.sample_indices_)

    # imbalanced-learn (>= 0.13) routes metadata to a sampler's fit_resample; scikit-learn
    # makes set_<method>_request only for its own methods, so this one is declared here.
    set_fit_resample_request = RequestMethod(
        "fit_resample", ["target_X", "target_robustness", "target_y"]
    )

    def _get_metadata_request(self):
        # imbalanced-learn's Pipeline routes its fit to both fit and fit_resample of a
        # sampler; what fit_resample requests, fit need not (it would be an unset-request
        # error there): fit_resample's requests stand for both.
        requests = super()._get_metadata_request()
        resample = getattr(requests, "fit_resample", None)
        if resample is not None:
            for key, value in resample.requests.items():
                if value is not None and requests.fit.requests.get(key) is None:
                    requests.fit.add_request(param=key, alias=False)
        return requests

    def get_feature_names_out(self, input_features=None):
        """The input's feature names: a sampler keeps the columns.

        Parameters
        ----------
        input_features : array-like of str, default=None
            The input's names; ``feature_names_in_`` (or ``x0, x1, ...``) when None.

        Returns
        -------
        names : ndarray of str
        """
        check_is_fitted(self, "sample_indices_")
        return _check_feature_names_in(self, input_features)

    def __sklearn_tags__(self):
        # imbalanced-learn's sampler tags, so that its sampler checks run; only when it is
        # imported already: importing it adds "fit_resample" to scikit-learn's routing
        # methods, which breaks the metadata requests made before.
        if "imblearn" not in sys.modules:
            tags = super().__sklearn_tags__()
            tags.target_tags.required = True
        else:
            from imblearn.utils._tags import InputTags, SamplerTags, Tags
            from sklearn.utils import TargetTags

            tags = Tags(
                estimator_type="sampler",
                target_tags=TargetTags(required=True),
                transformer_tags=None,
                regressor_tags=None,
                classifier_tags=None,
                sampler_tags=SamplerTags(sample_indices=True),
            )
            tags.input_tags = InputTags(two_d_array=True, dataframe=True)
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = True
        return tags


def _inner_has(attr):
    def check(self):
        if hasattr(self, "estimator_"):
            return hasattr(self.estimator_, attr)
        return hasattr(self.estimator, attr)

    return check


class RobustSubsetEstimator(MetaEstimatorMixin, BaseEstimator):
    """Fit an estimator on the samples a :class:`RobustSubsetSelector` keeps.

    Prediction, scoring and every other method go to the fitted estimator on all rows;
    only fitting sees the subset. The inner estimator's tags are copied, so a classifier
    stays a classifier (GridSearchCV then stratifies its folds). Per-sample fit metadata
    (``sample_weight``, ...) is subset with the rows.

    Parameters
    ----------
    estimator : estimator object
        The model fitted on the subset.
    selector : RobustSubsetSelector, default=None
        Chooses the subset; None means ``RobustSubsetSelector()``.

    Attributes
    ----------
    estimator_ : estimator
        The fitted clone of ``estimator``.
    selector_ : RobustSubsetSelector
        The fitted clone of ``selector``.
    sample_indices_ : ndarray of shape (n_selected,)
        Rows of the training data that ``estimator_`` was fitted on.
    classes_ : ndarray of shape (n_classes,)
        The inner classifier's classes.
    n_features_in_ : int

    References
    ----------
    Introducing Sample Robustness. Anonymous authors, ICLR 2021 conference submission
    (paper 000), https://openreview.net/forum?id=8-sxWOto_iI

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skrob import RobustSubsetEstimator, RobustSubsetSelector
    >>> X, y = load_iris(return_X_y=True)
    >>> model = RobustSubsetEstimator(KNeighborsClassifier(), RobustSubsetSelector())
    >>> grid = {"selector__fraction": [0.5, 1.0], "estimator__n_neighbors": [1, 5]}
    >>> search = GridSearchCV(model, grid, cv=3).fit(X, y)
    >>> sorted(search.best_params_)
    ['estimator__n_neighbors', 'selector__fraction']
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "selector": [HasMethods(["fit"]), None],
    }

    def __init__(self, estimator, selector=None):
        self.estimator = estimator
        self.selector = selector

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, **fit_params):
        """Choose the subset of ``(X, y)`` with the selector, fit the estimator on it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        **fit_params : dict
            Without metadata routing: passed to ``estimator.fit``. With routing: routed
            to the estimator's and the selector's ``fit`` as they request. Arrays with one
            entry per sample are subset like the rows.

        Returns
        -------
        self : object
        """
        if _routing_enabled():
            routed = process_routing(self, "fit", **fit_params)
            estimator_params, selector_params = routed.estimator.fit, routed.selector.fit
        else:
            estimator_params, selector_params = fit_params, {}
        X, y = indexable(X, y)
        selector = RobustSubsetSelector() if self.selector is None else self.selector
        self.selector_ = clone(selector).fit(X, y, **selector_params)
        indices = self.selector_.sample_indices_
        self.sample_indices_ = indices
        if is_classifier(self):
            labels = np.asarray(y)
            lost = np.setdiff1d(np.unique(labels), np.unique(labels[indices]))
            if lost.size:
                warn_user(
                    f"The selected subset has no sample of the classes {lost.tolist()}; the "
                    "estimator is fitted without them and never predicts them.",
                )
        self.n_features_in_ = self.selector_.n_features_in_
        if hasattr(self.selector_, "feature_names_in_"):
            self.feature_names_in_ = self.selector_.feature_names_in_
        self.estimator_ = clone(self.estimator).fit(
            _safe_indexing(X, indices),
            _safe_indexing(y, indices),
            **_check_method_params(X, estimator_params, indices),
        )
        return self

    def _delegate(self, method, X, params):
        check_is_fitted(self)
        if _routing_enabled():
            params = process_routing(self, method, **params)["estimator"][method]
        return getattr(self.estimator_, method)(X, **params)

    @available_if(_inner_has("predict"))
    def predict(self, X, **params):
        """Predict every row of ``X`` with the fitted estimator."""
        return self._delegate("predict", X, params)

    @available_if(_inner_has("predict_proba"))
    def predict_proba(self, X, **params):
        """Class probabilities of every row of ``X``."""
        return self._delegate("predict_proba", X, params)

    @available_if(_inner_has("predict_log_proba"))
    def predict_log_proba(self, X, **params):
        """Log class probabilities of every row of ``X``."""
        return self._delegate("predict_log_proba", X, params)

    @available_if(_inner_has("decision_function"))
    def decision_function(self, X, **params):
        """Decision function of every row of ``X``."""
        return self._delegate("decision_function", X, params)

    @available_if(_inner_has("transform"))
    def transform(self, X, **params):
        """Transform every row of ``X`` with the fitted estimator."""
        return self._delegate("transform", X, params)

    @available_if(_inner_has("score"))
    def score(self, X, y, **params):
        """The fitted estimator's ``score`` on all of ``(X, y)``."""
        check_is_fitted(self)
        if _routing_enabled():
            process_routing(self, "score", **params)  # validates, as in get_metadata_routing
            inner = get_routing_for_object(self.estimator_)
            if isinstance(inner, MetadataRequest):
                params = inner.score._route_params(
                    params=params, parent=type(self).__name__, caller="score"
                )
            else:
                params = process_routing(self, "score", **params).inner_score.score
        return self.estimator_.score(X, y, **params)

    def set_score_request(self, **requests):
        """Request metadata for ``score``, which is the inner estimator's ``score``.

        The requests go to ``estimator`` (they are its score's), so that a search
        validates them up front.

        Parameters
        ----------
        **requests : dict
            ``name=True/False/alias`` per metadata of the inner estimator's ``score``.

        Returns
        -------
        self : object
        """
        if not _routing_enabled():
            raise RuntimeError(
                "set_score_request is only available when metadata routing is enabled: "
                "sklearn.set_config(enable_metadata_routing=True)."
            )
        self.estimator.set_score_request(**requests)
        return self

    @property
    def classes_(self):
        """Classes of the fitted classifier."""
        check_is_fitted(self)
        return self.estimator_.classes_

    def get_metadata_routing(self):
        """Metadata routing: to the estimator's methods and to the selector's ``fit``."""
        selector = RobustSubsetSelector() if self.selector is None else self.selector
        router = MetadataRouter(owner=self).add(
            estimator=self.estimator,
            method_mapping=MethodMapping()
            .add(caller="fit", callee="fit")
            .add(caller="predict", callee="predict")
            .add(caller="predict_proba", callee="predict_proba")
            .add(caller="predict_log_proba", callee="predict_log_proba")
            .add(caller="decision_function", callee="decision_function")
            .add(caller="transform", callee="transform"),
        )
        inner = get_routing_for_object(self.estimator)
        if isinstance(inner, MetadataRequest):
            # score is the inner estimator's: its requests are this one's own, so that a
            # search validates them up front (an unset request is an error before any
            # fit, as for the estimator alone), not inside every split (NaN scores).
            own = MetadataRequest(owner=self)
            for param, alias in inner.score.requests.items():
                own.score.add_request(param=param, alias=alias)
            router.add_self_request(own)
        else:  # a router itself (a Pipeline): route to it
            router.add(
                inner_score=self.estimator,
                method_mapping=MethodMapping().add(caller="score", callee="score"),
            )
        return router.add(
            selector=selector, method_mapping=MethodMapping().add(caller="fit", callee="fit")
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.regressor_tags = inner.regressor_tags
        tags.transformer_tags = inner.transformer_tags
        tags.target_tags = replace(inner.target_tags, required=True)
        if inner.classifier_tags is not None:
            # Robustness of class labels is defined for one label column only.
            tags.classifier_tags = replace(inner.classifier_tags, multi_label=False)
            tags.target_tags.multi_output = False
        # The selector takes CSR (classification, exact search), so sparse is the inner's.
        tags.input_tags = replace(inner.input_tags, allow_nan=False)
        return tags
