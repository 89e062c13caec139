"""Cross-validation against the least or most robust part of every validation fold.

Paper 000 tunes and scores models on the least and most robust part of the test data.
:class:`RobustnessSubsetSplit` does it in the splitter (every validation fold is cut down to
that part) and :func:`subset_scorer` in the scorer (the scorer looks only at that part of
what it is given); with fold-local robustness the two agree.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.metrics import get_scorer
from sklearn.model_selection import BaseCrossValidator, check_cv
from sklearn.utils import check_random_state, indexable
from sklearn.utils.metadata_routing import (
    MetadataRequest,
    MetadataRouter,
    MethodMapping,
    process_routing,
)
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d

from skrob._compat import (
    HasMethods,
    Interval,
    StrOptions,
    _BaseScorer,
    _check_method_params,
    _routing_enabled,
    _safe_indexing,
    validate_parameter_constraints,
    validate_params,
)
from skrob._sources import robustness_source, source_task
from skrob._subsets import subset_indices
from skrob._validation import plain

_FRACTION = [Interval(Real, 0, 1, closed="right"), Interval(Integral, 1, None, closed="left")]


class RobustnessSubsetSplit(BaseCrossValidator):
    """Cross-validation whose validation folds keep only their least or most robust part.

    Its test folds are parts of the base folds, not a partition of the data: use it with
    GridSearchCV, cross_validate and cross_val_score, not with ``cross_val_predict``
    (which needs every sample in exactly one test fold and says "cross_val_predict only
    works for partitions"). With metadata routing enabled, ``groups`` passed to the
    search reach the base splitter (e.g. ``GroupKFold``).

    For each split of the base ``cv``, the robustness of the validation fold's samples is
    computed, against the validation fold itself (``reference="fold"``, as paper 000
    computes ``R_t`` on ``t`` alone) or against the training fold (``reference="train"``,
    ``R_x(t)``), and the split yields ``(train, that part of the validation fold)``.

    Parameters
    ----------
    cv : int, cross-validation generator or iterable, default=5
        The base splitter, as in :func:`sklearn.model_selection.check_cv`; an int means
        stratified folds for class labels.
    subset : {"least", "most", "all"}, default="least"
        Which part of every validation fold to keep.
    fraction : float in (0, 1] or int, default=0.5
        Share (float) or number (int) of validation samples kept.
    reference : {"fold", "train"}, default="fold"
        What the validation samples' robustness is measured against.
    robustness : SampleRobustnessTransformer, default=None
        None means ``SampleRobustnessTransformer()``; cloned for every fold.
    preprocessor : transformer, default=None
        Robustness is measured in its output: a clone is fitted on each training fold
        and transforms that fold and its validation fold (e.g. ``StandardScaler()``
        for features in different units, as the model's own scaling would be).

    References
    ----------
    Introducing Sample Robustness. Anonymous authors, ICLR 2021 conference submission
    (paper 000), https://openreview.net/forum?id=8-sxWOto_iI

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skrob.model_selection import RobustnessSubsetSplit
    >>> X, y = load_iris(return_X_y=True)
    >>> cv = RobustnessSubsetSplit(cv=5, subset="least", fraction=0.5)
    >>> [len(test) for _, test in cv.split(X, y)]
    [15, 15, 15, 15, 15]
    >>> search = GridSearchCV(KNeighborsClassifier(), {"n_neighbors": [1, 5, 9]}, cv=cv)
    >>> search.fit(X, y).best_params_["n_neighbors"] in (1, 5, 9)
    True
    """

    # The base splitter may use groups (GroupKFold, ...): request them, so that with
    # metadata routing enabled GridSearchCV passes ``groups`` on.
    __metadata_request__split = {"groups": True}

    _parameter_constraints = {
        "cv": ["cv_object"],
        "subset": [StrOptions({"least", "most", "all"})],
        "fraction": _FRACTION,
        "reference": [StrOptions({"fold", "train"})],
        "robustness": [HasMethods(["fit"]), None],
        "preprocessor": [HasMethods(["fit", "transform"]), None],
    }

    def __init__(
        self,
        cv=5,
        *,
        subset="least",
        fraction=0.5,
        reference="fold",
        robustness=None,
        preprocessor=None,
    ):
        self.cv = cv
        self.subset = subset
        self.fraction = fraction
        self.reference = reference
        self.robustness = robustness
        self.preprocessor = preprocessor

    def _base_cv(self, y):
        robustness = robustness_source(self.robustness)
        classifier = source_task(robustness, y) == "classification"
        return check_cv(self.cv, y, classifier=classifier), robustness

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of splits, that of the base splitter.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), default=None
        y : array-like of shape (n_samples,), default=None
            Needed when ``cv`` is not an int (a stratified base splitter).
        groups : array-like of shape (n_samples,), default=None
            For a group-aware base splitter.

        Returns
        -------
        n_splits : int
        """
        if isinstance(self.cv, Integral) or y is None:
            return check_cv(self.cv).get_n_splits(X, y, groups)
        return self._base_cv(y)[0].get_n_splits(X, y, groups)

    def split(self, X, y=None, groups=None):
        """Yield ``(train, kept part of the validation fold)`` index pairs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Needed: robustness is defined by the labels.
        groups : array-like of shape (n_samples,), default=None
            Passed to the base splitter.

        Yields
        ------
        train : ndarray
        test : ndarray
            Ascending indices of the kept validation samples.
        """
        validate_parameter_constraints(
            self._parameter_constraints,
            {name: getattr(self, name) for name in self._parameter_constraints},
            caller_name=type(self).__name__,
        )
        if y is None:
            raise ValueError("RobustnessSubsetSplit needs y: robustness is defined by labels.")
        X, y, groups = indexable(X, y, groups)
        cv, robustness = self._base_cv(y)
        for train, test in cv.split(X, y, groups):
            X_test, y_test = _safe_indexing(X, test), _safe_indexing(y, test)
            if self.subset == "all":
                yield train, test
                continue
            X_train, y_train = _safe_indexing(X, train), _safe_indexing(y, train)
            if self.preprocessor is not None:  # fitted on the training fold only
                pre = clone(self.preprocessor).fit(X_train, y_train)
                X_train, X_test = pre.transform(X_train), pre.transform(X_test)
            if self.reference == "fold":
                R = _fold_robustness(robustness, X_test, y_test, "validation fold")
            else:
                fitted = clone(robustness).fit(X_train, y_train)
                R = fitted.robustness(X_test, y_test)
            yield train, test[subset_indices(R, self.subset, self.fraction)]


class _SubsetScoreFunc:
    """``score_func(y_true, y_pred, robustness=, **kw)`` on the chosen part: what scorers
    built from a scorer's score function (TunedThresholdClassifierCV's) call, with the
    robustness routed in, since they see predictions, not X."""

    def __init__(self, score_func, subset, fraction):
        self.score_func, self.subset, self.fraction = score_func, subset, fraction

    def __call__(self, y_true, y_pred, robustness=None, **kwargs):
        if self.score_func is None:
            raise ValueError(
                "subset_scorer(scoring=None) wraps estimator.score, which has no score "
                "function: pass a metric name, e.g. subset_scorer('accuracy')."
            )
        if robustness is None:
            raise ValueError(
                "This scorer was called from predictions alone (as TunedThresholdClassifierCV "
                "does), so it cannot compute the robustness of X: route it instead, "
                "sklearn.set_config(enable_metadata_routing=True), "
                "scorer.set_score_request(robustness=True), and pass robustness= to fit."
            )
        robustness = np.asarray(robustness, dtype=np.float64)
        kept = subset_indices(robustness, self.subset, self.fraction)
        y_true, y_pred = _safe_indexing(y_true, kept), _safe_indexing(y_pred, kept)
        return self.score_func(y_true, y_pred, **kwargs)


class _SubsetScorer(_BaseScorer):
    """Score only the least or most robust part of the data a scorer is given.

    A scikit-learn scorer object: its score function, sign and response method are the
    inner scorer's, applied to the chosen part (so curve scorers, as in
    TunedThresholdClassifierCV, work with the robustness routed in).
    """

    def __init__(self, scorer, subset, fraction, robustness, preprocessor=None):
        inner = scorer if isinstance(scorer, _BaseScorer) else None
        super().__init__(
            score_func=_SubsetScoreFunc(
                None if inner is None else inner._score_func, subset, fraction
            ),
            sign=1 if inner is None else inner._sign,
            kwargs={} if inner is None else inner._kwargs,
            response_method="predict" if inner is None else inner._response_method,
        )
        self._scorer = scorer
        self._subset = subset
        self._fraction = fraction
        self._robustness = robustness
        self._preprocessor = preprocessor
        self._request = MetadataRequest(owner=self)
        self._metadata_request = self._request

    def __repr__(self):
        return (
            f"subset_scorer({self._scorer!r}, subset={self._subset!r}, fraction={self._fraction!r})"
        )

    def _score(self, method_caller, estimator, X, y_true, **kwargs):
        """The scorer-protocol entry (``_MultimetricScorer`` calls it): as ``__call__``."""
        robustness = kwargs.pop("robustness", None)
        return self._subset_score(estimator, X, y_true, robustness, kwargs)

    def __call__(self, estimator, X, y, robustness=None, **kwargs):
        """Score ``estimator`` on the chosen part of ``(X, y)``.

        ``robustness`` (one value per row) is used when given, e.g. routed in with
        ``set_score_request(robustness=True)``; otherwise it is computed on ``(X, y)``.
        """
        if _routing_enabled():
            kwargs = process_routing(self, "score", **kwargs).scorer.score
        return self._subset_score(estimator, X, y, robustness, kwargs)

    def _subset_score(self, estimator, X, y, robustness, kwargs):
        if robustness is None:
            X_r = _preprocess(self._preprocessor, estimator, X, y)
            robustness = _fold_robustness(robustness_source(self._robustness), X_r, y, "scored set")
        robustness = np.asarray(robustness, dtype=np.float64)
        if robustness.shape != (len(y),):
            raise ValueError(
                f"robustness must have one value per sample, shape ({len(y)},); "
                f"got {robustness.shape}."
            )
        kept = subset_indices(robustness, self._subset, self._fraction)
        return self._scorer(
            estimator,
            _safe_indexing(X, kept),
            _safe_indexing(y, kept),
            **_check_method_params(X, kwargs, kept),
        )

    def set_score_request(self, *, robustness=None, **kwargs):
        """Request ``robustness`` (and the inner scorer's metadata) from the caller.

        Only with metadata routing enabled, ``sklearn.set_config(enable_metadata_routing=True)``.
        """
        if not _routing_enabled():
            raise RuntimeError(
                "set_score_request is only available when metadata routing is enabled: "
                "sklearn.set_config(enable_metadata_routing=True)."
            )
        self._request.score.add_request(param="robustness", alias=robustness)
        if kwargs:
            self._scorer.set_score_request(**kwargs)
        return self

    def get_metadata_routing(self):
        """Own request (``robustness``) plus the inner scorer's."""
        return (
            MetadataRouter(owner=self)
            .add_self_request(self._request)
            .add(
                scorer=self._scorer,
                method_mapping=MethodMapping().add(caller="score", callee="score"),
            )
        )


@validate_params(
    {
        "scoring": [str, callable, None],
        "subset": [StrOptions({"least", "most", "all"})],
        "fraction": _FRACTION,
        "robustness": [HasMethods(["fit"]), None],
        "preprocessor": [HasMethods(["fit", "transform"]), StrOptions({"estimator"}), None],
    },
    prefer_skip_nested_validation=True,
)
def subset_scorer(
    scoring=None, *, subset="least", fraction=0.5, robustness=None, preprocessor=None
):
    """Wrap a scorer so that it scores only the least or most robust part of its data.

    The robustness of the samples the scorer is called with is computed on those
    samples alone (for a validation fold: fold-local, like
    ``RobustnessSubsetSplit(reference="fold")``), or routed in as metadata after
    ``set_score_request(robustness=True)``.

    Parameters
    ----------
    scoring : str, callable or None, default=None
        As in :func:`sklearn.metrics.check_scoring`; None means the estimator's ``score``.
    subset : {"least", "most", "all"}, default="least"
    fraction : float in (0, 1] or int, default=0.5
        Share (float) or number (int) of the scored samples kept.
    robustness : SampleRobustnessTransformer, default=None
        None means ``SampleRobustnessTransformer()``.
    preprocessor : transformer, "estimator" or None, default=None
        Where robustness is measured: None, in the scored ``X`` as given; "estimator",
        in the features the scored model sees (a Pipeline's fitted steps before its
        last one: the scaling learned on the training part); a transformer, in its
        output, a clone fitted on the scored samples.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, robustness=None, **kwargs) -> float``.

    References
    ----------
    Introducing Sample Robustness. Anonymous authors, ICLR 2021 conference submission
    (paper 000), https://openreview.net/forum?id=8-sxWOto_iI

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.model_selection import cross_val_score
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skrob.model_selection import subset_scorer
    >>> X, y = load_iris(return_X_y=True)
    >>> scorer = subset_scorer("accuracy", subset="most", fraction=0.5)
    >>> cross_val_score(KNeighborsClassifier(), X, y, scoring=scorer).round(2).tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0]
    """
    scorer = _estimator_score if scoring is None else get_scorer(scoring)
    return _SubsetScorer(scorer, subset, fraction, robustness, preprocessor)


def _preprocess(preprocessor, estimator, X, y):
    """X in the space where :func:`subset_scorer` measures robustness."""
    if preprocessor is None:
        return X
    if isinstance(preprocessor, str):  # "estimator": the model's own fitted steps
        steps = getattr(estimator, "steps", None)
        if not steps or len(steps) < 2:
            raise ValueError(
                "subset_scorer(preprocessor='estimator') measures robustness in the "
                "features a Pipeline's last step sees; the scored estimator is a "
                f"{type(estimator).__name__}, not a Pipeline with preprocessing steps."
            )
        return estimator[:-1].transform(X)
    return clone(preprocessor).fit(X, y).transform(X)


def _fold_robustness(robustness, X, y, what):
    """Robustness of a validation fold on itself; errors say it is about the fold."""
    try:
        return clone(robustness).fit(X, y).robustness_
    except ValueError as exc:
        raise ValueError(
            f"Cannot compute the robustness of the {what} ({len(y)} samples) on itself: "
            f"{exc} Use a stratified splitter (StratifiedKFold) so that every fold holds "
            "every class, or reference='train' (RobustnessSubsetSplit)."
        ) from exc


def _estimator_score(estimator, X, y, **kwargs):
    return estimator.score(X, y, **kwargs)


@validate_params(
    {"y": ["array-like"], "sizes": ["array-like"], "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def balanced_nested_subsets(y, sizes, random_state=None):
    """Index arrays ``S1 ⊂ S2 ⊂ …``, each with the same number of samples of every class.

    One random order per class (``random_state``); ``S_k`` takes the first
    ``sizes[k] // n_classes`` samples of every class, so each set contains the previous.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
    sizes : array-like of int, increasing
        Total sizes; each must be a multiple of the number of classes.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    subsets : list of ndarray
        Ascending indices of each set.

    References
    ----------
    How Training Data Affect the Accuracy and Robustness of Neural Networks for Image
    Classification. Anonymous authors, ICLR 2019 conference submission (paper 002),
    https://openreview.net/forum?id=HklKWhC5F7

    Examples
    --------
    >>> from skrob.model_selection import balanced_nested_subsets
    >>> sets = balanced_nested_subsets([0, 1, 0, 1, 0, 1], [2, 4], random_state=0)
    >>> [len(s) for s in sets], set(sets[0]) <= set(sets[1])
    ([2, 4], True)
    """
    y = column_or_1d(check_array(y, ensure_2d=False, dtype=None, input_name="y"))
    classes, codes = np.unique(y, return_inverse=True)
    k = classes.size
    sizes = _integer_sizes(sizes)
    if np.any(sizes % k):
        raise ValueError(f"Every size must be a multiple of the {k} classes; got {sizes.tolist()}.")
    per_class = sizes // k
    counts = np.bincount(codes, minlength=k)
    if per_class[-1] > counts.min():
        raise ValueError(
            f"The largest set needs {per_class[-1]} samples per class; class "
            f"{plain(classes[counts.argmin()])!r} has {counts.min()}."
        )
    rng = check_random_state(random_state)
    orders = [rng.permutation(np.flatnonzero(codes == c)) for c in range(k)]
    return [np.sort(np.concatenate([o[:m] for o in orders])) for m in per_class]


def _integer_sizes(sizes):
    """``sizes`` as int64: integral numbers (floats from np.linspace too), increasing."""
    values = np.asarray(sizes)
    if values.dtype.kind not in "iuf" or values.ndim != 1 or values.size == 0:
        raise ValueError(
            f"sizes must be a non-empty 1-D sequence of integers; got {values.tolist()!r}."
        )
    if values.dtype.kind == "f" and not (
        np.isfinite(values).all() and (values == np.round(values)).all()
    ):
        raise ValueError(f"sizes must be whole numbers; got {values.tolist()}.")
    values = values.astype(np.int64)
    if np.any(np.diff(values) <= 0) or values[0] <= 0:
        raise ValueError(f"sizes must be increasing positive integers; got {values.tolist()}.")
    return values


@validate_params(
    {
        "estimator": [HasMethods(["fit", "predict"])],
        "X": ["array-like"],
        "y": ["array-like"],
        "X_test": ["array-like"],
        "y_test": ["array-like"],
        "train_sizes": ["array-like"],
        "scoring": [dict],
        "random_state": ["random_state"],
        "robustness_set": [StrOptions({"common", "per_model"})],
    },
    prefer_skip_nested_validation=False,
)
def robustness_learning_curve(
    estimator,
    X,
    y,
    X_test,
    y_test,
    *,
    train_sizes,
    scoring,
    random_state=None,
    robustness_set="common",
):
    """Accuracy and robustness scores of clones trained on nested class-balanced sets.

    Paper 002's curves: for every size in ``train_sizes`` a clone of ``estimator`` is fit
    on a set from :func:`balanced_nested_subsets` and scored on ``(X_test, y_test)``.
    skrob's robustness scorers (:class:`~skrob.DecisionDistortionScorer`,
    :class:`~skrob.RPRScorer`, ``skrob.torch``'s ``AdversarialDistortionScorer`` and
    ``LaplacianScorer``) are, by default, scored on the test samples that *every* fitted
    model classifies correctly (paper 002, Eq. 4: its set X), so that each model's
    robustness is averaged over the same samples; other scorers (accuracy) see the whole
    test set.

    Parameters
    ----------
    estimator : estimator
    X, y : training data
    X_test, y_test : test data
    train_sizes : array-like of int
    scoring : dict of str to callable
        ``scorer(fitted, X_test, y_test) -> float``, e.g. ``"accuracy"`` scorers or
        ``AdversarialDistortionScorer()``.
    random_state : int, RandomState instance or None, default=None
    robustness_set : {"common", "per_model"}, default="common"
        "common": the robustness scorers see the commonly-correct test samples (paper 002);
        "per_model": the whole test set (each distortion scorer then averages over its own
        model's correct samples).

    Returns
    -------
    curve : pandas.DataFrame
        One row per size: ``train_size``, then one column per scorer, and
        ``n_common`` (the size of the commonly-correct set) with ``robustness_set="common"``.

    References
    ----------
    How Training Data Affect the Accuracy and Robustness of Neural Networks for Image
    Classification. Anonymous authors, ICLR 2019 conference submission (paper 002),
    https://openreview.net/forum?id=HklKWhC5F7

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.metrics import get_scorer
    >>> from sklearn.model_selection import train_test_split
    >>> from skrob import DecisionDistortionScorer, robustness_learning_curve
    >>> X, y = load_iris(return_X_y=True)
    >>> X, X_test, y, y_test = train_test_split(X, y, test_size=30, stratify=y, random_state=0)
    >>> curve = robustness_learning_curve(
    ...     LogisticRegression(), X, y, X_test, y_test, train_sizes=[30, 90],
    ...     scoring={"accuracy": get_scorer("accuracy"),
    ...              "distortion": DecisionDistortionScorer(max_queries=200)},
    ...     random_state=0)
    >>> curve.columns.tolist()
    ['train_size', 'accuracy', 'distortion', 'n_common']
    """
    import pandas as pd
    from sklearn.metrics import get_scorer

    scorers = {}
    for name, s in scoring.items():
        if not (isinstance(s, str) or callable(s)):
            raise TypeError(
                f"scoring[{name!r}] must be a scorer name or a callable "
                f"scorer(estimator, X, y); got {type(s).__name__}."
            )
        scorers[name] = get_scorer(s) if isinstance(s, str) else s
    check_consistent_length(X, y)
    check_consistent_length(X_test, y_test)
    subsets = balanced_nested_subsets(y, train_sizes, random_state=random_state)
    fitted = [
        clone(estimator).fit(_safe_indexing(X, subset), _safe_indexing(y, subset))
        for subset in subsets
    ]
    sizes = [len(s) for s in subsets]
    common = None
    if robustness_set == "common":
        truth = np.asarray(y_test)
        common = np.ones(len(truth), dtype=bool)
        for model in fitted:
            common &= np.asarray(model.predict(X_test)) == truth
    rows = []
    for size, model in zip(sizes, fitted, strict=True):
        row = {"train_size": size}
        for name, s in scorers.items():
            if common is not None and _is_robustness_scorer(s):
                row[name] = (
                    s(
                        model,
                        _safe_indexing(X_test, np.flatnonzero(common)),
                        _safe_indexing(y_test, np.flatnonzero(common)),
                    )
                    if common.any()
                    else float("nan")
                )
            else:
                row[name] = s(model, X_test, y_test)
        if common is not None:
            row["n_common"] = int(common.sum())
        rows.append(row)
    return pd.DataFrame(rows)


def _is_robustness_scorer(scorer):
    """One of skrob's robustness scorers (distortions, RPR, LO): by their shared mixin."""
    from skrob._scoring import RobustnessScorerMixin

    return isinstance(scorer, RobustnessScorerMixin)
