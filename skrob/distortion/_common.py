"""What both distortion families share: the data and box checks, the model's
predictions, the norm, and the samples every model classifies correctly."""

import numpy as np
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d

from skrob._compat import _num_samples, validate_params
from skrob._validation import check_box, check_numeric_columns, frame_like


def _check_data(X, y, clip, owner):
    wrap = frame_like(X)
    X = check_array(check_numeric_columns(X), dtype=np.float64, input_name="X")
    y = np.asarray(y)
    if y.ndim != 1:
        y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    lo, hi = check_box(clip, X.shape[1], owner)
    outside = np.flatnonzero(((X < lo) | (X > hi)).any(axis=1))
    if outside.size:
        raise ValueError(
            f"{owner}: {outside.size} rows of X lie outside the box 'clip' (the first is row "
            f"{outside[0]}); every sample must be inside the box it is perturbed in."
        )
    return wrap, X, y, lo, hi


def _predict(estimator, wrap, X, y):
    pred = np.asarray(estimator.predict(wrap(X)))
    if pred.shape != y.shape:
        raise ValueError(
            f"{type(estimator).__name__}.predict returned shape {pred.shape}; one label per "
            f"sample is needed (y has shape {y.shape})."
        )
    return pred


@validate_params(
    {
        "estimators": ["array-like"],
        "X": ["array-like", "sparse matrix"],
        "y": ["array-like"],
    },
    prefer_skip_nested_validation=True,
)
def common_correct_mask(estimators, X, y):
    """The samples that every given estimator classifies correctly (paper 002's test set).

    Model-agnostic: any estimators with ``predict`` (scikit-learn models, skorch nets,
    Pipelines), so that distortions of several models are averaged over the same samples.

    Parameters
    ----------
    estimators : iterable of fitted estimators with ``predict``
    X : array-like
    y : array-like of shape (n_samples,)

    Returns
    -------
    mask : ndarray of shape (n_samples,), bool

    References
    ----------
    How Training Data Affect the Accuracy and Robustness of Neural Networks for Image
    Classification. Anonymous authors, ICLR 2019 conference submission (paper 002),
    https://openreview.net/forum?id=HklKWhC5F7

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from skrob import common_correct_mask
    >>> X, y = load_iris(return_X_y=True)
    >>> models = [LogisticRegression(max_iter=500).fit(X, y),
    ...           DecisionTreeClassifier(max_depth=1).fit(X, y)]
    >>> mask = common_correct_mask(models, X, y)
    >>> bool(mask.sum() <= min((m.predict(X) == y).sum() for m in models))
    True
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be one label per sample (1-D), got shape {y.shape}.")
    n = _num_samples(X)
    if n != len(y):
        raise ValueError(f"X and y must have one row per sample; got {n} and {len(y)}.")
    mask = np.ones(len(y), dtype=bool)
    for est in estimators:
        mask &= _predict(est, lambda data: data, X, y) == y
    return mask
