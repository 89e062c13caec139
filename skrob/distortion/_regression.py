"""The smallest input change that breaks a regressor's prediction (paper 002, §2)."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d

from skrob._compat import HasMethods, Interval, validate_params
from skrob._validation import (
    check_numeric_columns,
    check_regressor,
    frame_like,
)

_MAX = float(np.finfo(np.float64).max)  # finite parameters: Interval(..., None) admits inf


# Rows per predict call in the grid search.
_ROWS_PER_PREDICT = 1 << 18


@validate_params(
    {
        "estimator": [HasMethods(["predict"])],
        "X": ["array-like", "sparse matrix"],
        "y": ["array-like"],
        "tolerance": [Interval(Real, 0, _MAX, closed="right")],
        "max_distortion": [Interval(Real, 0, _MAX, closed="right")],
        "n_grid": [Interval(Integral, 2, None, closed="left")],
        "n_bisect": [Interval(Integral, 0, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def relative_error_distortion(
    estimator, X, y, *, tolerance=0.025, max_distortion=1.0, n_grid=1001, n_bisect=40
):
    """Smallest input change that pushes a correct prediction's relative error over a bound.

    A prediction is correct when ``|ŷ − y| / |y| <= tolerance``. For each correct sample,
    every feature is moved alone, up and down (``x ± δ e_j``); the distortion is the
    smallest ``δ`` over those directions at which the relative error exceeds the
    tolerance: a grid of ``n_grid`` steps up to ``max_distortion`` finds the first
    crossing, then ``n_bisect`` bisection steps pin it down. For one input feature this is
    the paper's search over ``±δ`` (which enumerates δ in steps of 0.0001), exactly.
    Every sample and direction is searched at once: each ``predict`` call carries many
    rows (one call per bisection step for the whole batch).

    Parameters
    ----------
    estimator : fitted regressor with ``predict``
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    tolerance : float, default=0.025
    max_distortion : float, default=1.0
        Largest δ searched; beyond it the sample counts as immune (``inf``).
    n_grid, n_bisect : int

    Returns
    -------
    distortion : ndarray of shape (n_samples,)
        NaN for samples whose prediction is not correct to begin with (or y = 0), ``inf``
        for samples no δ up to ``max_distortion`` breaks.

    References
    ----------
    How Training Data Affect the Accuracy and Robustness of Neural Networks for Image
    Classification. Anonymous authors, ICLR 2019 conference submission (paper 002),
    https://openreview.net/forum?id=HklKWhC5F7

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skrob import relative_error_distortion
    >>> X = np.array([[1.0], [2.0], [3.0]]); y = np.array([2.0, 4.0, 6.0])
    >>> model = LinearRegression().fit(X, y)
    >>> relative_error_distortion(model, X, y, tolerance=0.1).round(4).tolist()
    [0.1, 0.2, 0.3]
    """
    wrap = frame_like(X)
    X = check_array(check_numeric_columns(X), dtype=np.float64, input_name="X")
    y = column_or_1d(check_array(y, ensure_2d=False, dtype=np.float64, input_name="y"), warn=True)
    check_consistent_length(X, y)
    check_regressor(estimator, "relative_error_distortion")

    rel_error = _RelativeError(estimator, wrap)
    out = np.full(len(y), np.nan)
    correct = np.flatnonzero(rel_error(X, y) <= tolerance)
    if not correct.size:
        return out
    grid = np.linspace(0.0, max_distortion, n_grid)[1:]
    # Directions +e_0, -e_0, +e_1, ...: (sample, direction) pairs, all searched at once.
    signs = np.tile([1.0, -1.0], X.shape[1])
    features = np.repeat(np.arange(X.shape[1]), 2)
    samples, dirs, lo, hi = _first_crossings(
        rel_error, X, y, correct, grid, signs, features, tolerance
    )
    rows = np.arange(samples.size)
    for _ in range(n_bisect):  # one predict per step for every (sample, direction)
        mid = (lo + hi) / 2
        Z = X[samples].copy()
        Z[rows, features[dirs]] += signs[dirs] * mid
        above = rel_error(Z, y[samples]) > tolerance
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    out[correct] = np.inf
    np.minimum.at(out, samples, hi)
    return out


class _RelativeError:
    """``|predict(Z) - y| / |y|``; a model fitted on a DataFrame gets one, with its columns
    (no warning per call)."""

    def __init__(self, estimator, wrap):
        self.estimator, self.wrap = estimator, wrap

    def __call__(self, Z, targets):
        Z = self.wrap(Z)
        pred = np.asarray(self.estimator.predict(Z), dtype=np.float64)
        if pred.shape != targets.shape:
            raise ValueError(
                f"{type(self.estimator).__name__}.predict returned shape {pred.shape} for "
                f"{targets.shape[0]} samples; one target per sample is needed."
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.abs(pred - targets) / np.abs(targets)


def _first_crossings(rel_error, X, y, correct, grid, signs, features, tolerance):
    """Per (sample, direction) whose grid crosses the tolerance: the bracket around the
    first crossing, ``(samples, directions, lo, hi)``; chunks of samples per predict."""
    d = X.shape[1]
    per_sample = 2 * d * grid.size
    chunk = max(1, _ROWS_PER_PREDICT // per_sample)
    lo_all, hi_all, pair_sample, pair_dir = [], [], [], []
    for start in range(0, correct.size, chunk):
        idx = correct[start : start + chunk]
        Z = np.repeat(X[idx], per_sample, axis=0).reshape(idx.size, 2 * d, grid.size, d)
        for k in range(2 * d):
            Z[:, k, :, features[k]] += signs[k] * grid
        broken = rel_error(Z.reshape(-1, d), np.repeat(y[idx], per_sample)) > tolerance
        broken = broken.reshape(idx.size, 2 * d, grid.size)
        s_idx, d_idx = np.nonzero(broken.any(axis=2))
        kk = broken.argmax(axis=2)[s_idx, d_idx]
        lo_all.append(np.where(kk > 0, grid[np.maximum(kk - 1, 0)], 0.0))
        hi_all.append(grid[kk])
        pair_sample.append(idx[s_idx])
        pair_dir.append(d_idx)
    return tuple(np.concatenate(p) for p in (pair_sample, pair_dir, lo_all, hi_all))
