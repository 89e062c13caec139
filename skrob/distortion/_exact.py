"""The exact minimal distortion where the model's decision regions are known: linear
models, decision trees, tree ensembles (mixed-integer programming, HiGHS)."""

from numbers import Real

import numpy as np

from skrob._compat import HasMethods, Interval, StrOptions, validate_params
from skrob._validation import (
    check_classifier,
    check_norm,
    warn_user,
)
from skrob.distortion import _model_exact as exact
from skrob.distortion._common import _check_data, _predict


@validate_params(
    {
        "estimator": [HasMethods(["predict"])],
        "X": ["array-like", "sparse matrix"],
        "y": ["array-like"],
        "norm": [StrOptions({"inf"}), Real],
        "clip": [tuple, list, None],
        "time_limit": [Interval(Real, 0, None, closed="neither")],
        "return_bounds": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def exact_distortion(
    estimator, X, y, *, norm=np.inf, clip=None, time_limit=10.0, return_bounds=False
):
    """Exact minimal distortion of models whose decision regions are known.

    The infimum of ``‖x' − x‖`` over the points ``x'`` in the box that the model predicts
    differently from a correct prediction at ``x``:

    - linear classifiers (``coef_``, ``intercept_``; binary and multiclass argmax): each
      other class's region is a half-space; inside a box the smallest step into it is a
      separable program solved exactly on its sorted breakpoints;
    - ``DecisionTreeClassifier``: the distance to the nearest leaf box of another class;
    - ``RandomForestClassifier``, ``ExtraTreesClassifier`` and
      ``GradientBoostingClassifier``: a mixed-integer linear program over the cells between
      consecutive thresholds (Kantchelian et al., 2016, "Evasion and hardening of tree
      ensemble classifiers"), one per other class, solved by HiGHS
      (:func:`scipy.optimize.milp`) within ``time_limit`` seconds per sample; the chosen
      point's class is checked exactly. L2 is exact too: the squared distance is
      separable over the cells.

    Each of them may be the last step of a Pipeline whose earlier steps are per-feature
    scalers (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler): distances are in the
    pipeline's input units. These are references for :func:`decision_based_distortion`,
    which gives upper bounds for any model.

    Parameters
    ----------
    estimator : fitted classifier of a kind above
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        True labels.
    norm : np.inf, 2 or 1, default=np.inf
    clip : (low, high) or None, default=None
        The box: each side None, a number or one number per feature.
    time_limit : float, default=10.0
        Seconds per sample for the tree-ensemble programs.
    return_bounds : bool, default=False
        Return ``(lower, upper)``: equal where the minimum is proven; a bracket where the
        time limit struck.

    Returns
    -------
    distortion : ndarray of shape (n_samples,)
        NaN for misclassified samples; ``inf`` where no point of another class is in the
        box. Where the time limit struck (or HiGHS stopped short) before the minimum was
        proven, a warning, and the distance of the best verified adversarial point found
        (an upper bound; ``inf`` if none), as :func:`skrob.torch.minimal_distortion` does.

    References
    ----------
    How Training Data Affect the Accuracy and Robustness of Neural Networks for Image
    Classification. Anonymous authors, ICLR 2019 conference submission (paper 002),
    https://openreview.net/forum?id=HklKWhC5F7

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skrob import exact_distortion
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0], [3.0, 1.0]])
    >>> y = np.array([0, 0, 1, 1])
    >>> model = LogisticRegression().fit(X, y)
    >>> exact_distortion(model, X, y, norm=2).round(3).tolist()
    [1.5, 1.5, 1.5, 1.5]
    """
    owner = "exact_distortion"
    norm = check_norm(norm, owner, (np.inf, 2, 1))
    wrap, X, y, lo, hi = _check_data(X, y, clip, owner)
    check_classifier(estimator, owner, y)
    model, scale, offset = exact.unwrap_affine(estimator, X.shape[1])
    kind = exact.model_kind(model)
    pred = _predict(estimator, wrap, X, y)
    correct = np.flatnonzero(pred == y)
    lower, upper = np.full(len(y), np.nan), np.full(len(y), np.nan)
    if correct.size:
        Xc, labels = X[correct], y[correct]
        if kind == "linear":
            d = exact.linear_distance(model, scale, offset, Xc, labels, lo, hi, norm)
            lower[correct] = upper[correct] = d
        elif kind == "tree":
            d = exact.tree_distance(model, scale, offset, Xc, labels, lo, hi, norm)
            lower[correct] = upper[correct] = d
        else:
            lo_b, up_b = exact.ensemble_distance(
                model, scale, offset, Xc, labels, lo, hi, norm, time_limit, X, pred
            )
            lower[correct], upper[correct] = lo_b, up_b
    if return_bounds:
        return lower, upper
    open_ = np.flatnonzero(lower < upper)
    if open_.size:
        warn_user(
            f"exact_distortion: the minimum of {open_.size} samples was not proven (the time "
            f"limit of {time_limit} s per sample struck, or HiGHS stopped short); their "
            "distortion is the best verified point found (an upper bound, inf where none "
            "was). Pass return_bounds=True for their brackets, or a larger time_limit."
        )
    return upper
