"""Distortion of a regressor's predictions (paper 002, §2): model-agnostic, per sample."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import check_array, check_consistent_length


@validate_params(
    {
        "estimator": [object],
        "X": ["array-like"],
        "y": ["array-like"],
        "tolerance": [Interval(Real, 0, None, closed="neither")],
        "max_distortion": [Interval(Real, 0, None, closed="neither")],
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
    X = check_array(X, dtype=np.float64, input_name="X")
    y = np.asarray(y, dtype=np.float64)
    check_consistent_length(X, y)
    if y.ndim != 1:
        raise ValueError("y must be one target per sample.")

    def rel_error(Z, targets):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.abs(np.asarray(estimator.predict(Z), dtype=np.float64) - targets) / np.abs(
                targets
            )

    out = np.full(len(y), np.nan)
    correct = rel_error(X, y) <= tolerance
    grid = np.linspace(0.0, max_distortion, n_grid)[1:]
    n, d = X.shape
    for i in np.flatnonzero(correct):
        best = np.inf
        for j in range(d):
            for sign in (1.0, -1.0):
                Z = np.repeat(X[i : i + 1], len(grid), axis=0)
                Z[:, j] += sign * grid
                broken = np.flatnonzero(rel_error(Z, y[i]) > tolerance)
                if broken.size == 0:
                    continue
                k = broken[0]
                lo, hi = (grid[k - 1] if k > 0 else 0.0), grid[k]
                for _ in range(n_bisect):
                    mid = (lo + hi) / 2
                    z = X[i : i + 1].copy()
                    z[0, j] += sign * mid
                    if rel_error(z, y[i])[0] > tolerance:
                        hi = mid
                    else:
                        lo = mid
                best = min(best, hi)
        out[i] = best
    return out
