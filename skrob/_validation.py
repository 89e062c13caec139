"""Shared input checks: labels, tasks, finite values, fitted state."""

import numpy as np
from sklearn.utils.multiclass import type_of_target

from skrob._neighbors import _pow2_scale

_CLASSIFICATION_TARGETS = ("binary", "multiclass")
_REGRESSION_TARGETS = ("continuous", "continuous-multioutput")


def resolve_task(y, task="auto"):
    """Return "classification" or "regression" for the target ``y``.

    ``task="auto"`` follows :func:`sklearn.utils.multiclass.type_of_target`:
    "binary" and "multiclass" are classification, "continuous" and
    "continuous-multioutput" regression. Any other target type is an error.
    """
    if task in ("classification", "regression"):
        return task
    kind = type_of_target(y, input_name="y")
    if kind in _CLASSIFICATION_TARGETS:
        return "classification"
    if kind in _REGRESSION_TARGETS:
        return "regression"
    raise ValueError(
        f"Unknown label type: cannot infer the task from a target of type {kind!r}; "
        "expected one of "
        f"{_CLASSIFICATION_TARGETS + _REGRESSION_TARGETS}. Pass task='classification' or "
        "task='regression' explicitly."
    )


def encode_classes(y):
    """Return ``(classes, codes)`` for class labels, with at least two classes."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"Class labels must be one-dimensional, got shape {y.shape}.")
    classes, codes = np.unique(y, return_inverse=True)
    if classes.shape[0] < 2:
        raise ValueError(
            "Sample robustness needs at least two distinct labels; got one class only, "
            f"{classes.tolist()!r}: no sample has a differently labelled neighbour."
        )
    return classes, codes.astype(np.intp, copy=False)


def regression_targets(y):
    """Return ``y`` as a float64 2-D array and its max norm, which must be positive."""
    Y = np.asarray(y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2:
        raise ValueError(f"Regression targets must be 1-D or 2-D, got shape {Y.shape}.")
    if not np.all(np.isfinite(Y)):
        raise ValueError("Regression targets contain NaN or infinity.")
    # The largest row norm, scaled by a power of two so that it neither overflows nor
    # underflows on the way (inf only where float64 cannot hold the norm itself).
    scale = _pow2_scale(np.abs(Y).max(initial=0.0))
    with np.errstate(over="ignore"):
        norm_inf = float(np.sqrt(((Y * scale) ** 2).sum(axis=1)).max()) / scale
    if norm_inf == 0.0:
        raise ValueError(
            "All regression targets are zero (max norm ||y||_inf = 0): sample robustness "
            "R = 1 / (1 + Q / ||y||_inf) is undefined."
        )
    if np.unique(Y, axis=0).shape[0] < 2:
        raise ValueError(
            "Sample robustness needs at least two distinct target values; all targets are equal."
        )
    return Y, norm_inf
