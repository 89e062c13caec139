"""Shared input checks: labels, tasks, finite values, fitted state."""

import os
import sys
import warnings
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target

_CLASSIFICATION_TARGETS = ("binary", "multiclass")
_REGRESSION_TARGETS = ("continuous", "continuous-multioutput")


def _library_paths():
    """Where the code between a user's line and skrob's lives: skrob, scikit-learn,
    joblib (and its loky), and the standard library's thread and process pools."""
    import concurrent.futures
    import threading

    import joblib

    folders = (sys.modules["skrob"], sklearn, joblib, concurrent.futures)
    return tuple(str(Path(m.__file__).parent) + os.sep for m in folders) + (threading.__file__,)


_LIBRARY_DIRS = _library_paths()


def warn_user(message, category=UserWarning):
    """Warn, attributing the warning to the first caller outside skrob, scikit-learn and
    joblib: the user's line, also when a search or joblib runs the call. In a worker
    thread or process, whose stack holds no user code, the outermost frame."""
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


# task="auto" warns when "classification" would mean more classes than this, or more
# classes than half the samples: most likely a regression target with integer values.
MANY_CLASSES = 50


def many_classes(y):
    """``(n_classes, n_samples)`` when a class-label reading of ``y`` is implausible, else None.

    Implausible: numeric labels with more than ``MANY_CLASSES`` classes, or more classes
    than half the samples (scikit-learn's ``load_diabetes`` target has 214 values among
    442 samples).
    """
    y = np.asarray(y)
    if y.dtype.kind not in "iuf" or y.size < 4:
        return None
    n_classes = np.unique(y).size
    if n_classes > MANY_CLASSES or (n_classes > y.shape[0] / 2 and y.shape[0] >= 20):
        return n_classes, y.shape[0]
    return None


def resolve_task(y, task="auto", *, warn=True):
    """Return "classification" or "regression" for the target ``y``.

    ``task="auto"`` follows :func:`sklearn.utils.multiclass.type_of_target`:
    "binary" and "multiclass" are classification, "continuous" and
    "continuous-multioutput" regression. Any other target type is an error. When
    "classification" means implausibly many classes for numeric labels
    (:func:`many_classes`), a warning says so: pass ``task="regression"`` for an
    integer-valued regression target.
    """
    if task in ("classification", "regression"):
        return task
    check_label_kinds(y)
    kind = type_of_target(y, input_name="y")
    if kind in _CLASSIFICATION_TARGETS:
        many = many_classes(y) if warn else None
        if many is not None:
            warn_user(
                f"task='auto' reads y as class labels: {many[0]} classes among "
                f"{many[1]} samples. If y is a regression target with integer values, "
                "pass task='regression'; pass task='classification' to silence this."
            )
        return "classification"
    if kind in _REGRESSION_TARGETS:
        return "regression"
    raise ValueError(
        f"Unknown label type: cannot infer the task from a target of type {kind!r}; "
        "expected one of "
        f"{_CLASSIFICATION_TARGETS + _REGRESSION_TARGETS}. Pass task='classification' or "
        "task='regression' explicitly."
    )


def plain(value):
    """A numpy scalar as the Python value it holds (for messages: 0, not np.int64(0))."""
    return value.item() if isinstance(value, np.generic) else value


def _is_missing(v):
    """None, or a float NaN (pandas' missing value in an object column)."""
    return v is None or (isinstance(v, float) and v != v) or v is getattr(pd, "NA", None)


def check_label_kinds(y):
    """Refuse labels that mix strings with other types, or hold None (np.unique cannot
    order them)."""
    y = np.asarray(y)
    if y.dtype.kind == "O":
        missing = sum(1 for v in y.ravel() if _is_missing(v))
        if missing:
            raise ValueError(
                f"{missing} labels of y are missing (None or NaN); every sample needs a "
                "label: drop those rows (e.g. df.dropna(subset=[target]))."
            )
        strings = np.fromiter((isinstance(v, str) for v in y.ravel()), bool, y.size)
        if strings.any() and not strings.all():
            others = sorted({type(v).__name__ for v in y.ravel() if not isinstance(v, str)})
            raise ValueError(
                f"y mixes string labels with {', '.join(others)} labels; use one kind "
                "(e.g. y.astype(str))."
            )
    return y


def encode_classes(y):
    """Return ``(classes, codes)`` for class labels, with at least two classes."""
    y = check_label_kinds(y)
    if y.ndim != 1:
        raise ValueError(f"Class labels must be one-dimensional, got shape {y.shape}.")
    classes, codes = np.unique(y, return_inverse=True)
    if classes.shape[0] < 2:
        raise ValueError(
            "Sample robustness needs at least two distinct labels; got one class only, "
            f"{classes.tolist()!r}: no sample has a differently labelled neighbour."
        )
    return classes, codes.astype(np.intp, copy=False)


def entropy(random_state):
    """The seed of a stream of ``numpy.random.SeedSequence``s, from any ``random_state``.

    An int is its own seed (so ``random_state=3`` means the same draws everywhere); None
    or a ``RandomState`` draws one, consuming the ``RandomState``.
    """
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def reject_metadata(scorer, metadata):
    """A scorer's ``**kwargs`` (routed metadata) that it cannot use: an error, not dropped."""
    if metadata:
        raise TypeError(
            f"{type(scorer).__name__} takes no metadata; got {sorted(metadata)}. Do not "
            "request it for this scorer (set_score_request), or score with another."
        )


def check_clip(clip, owner, *, open_sides=False, error=ValueError):
    """``clip = (low, high)``, the one box contract: finite numbers, ``low < high``.

    With ``open_sides`` (perturbations, which clip their results) one side may be None;
    attacks need a bounded box. Returns ``(low, high)`` as floats (None kept), or None for
    ``clip=None``.
    """
    if clip is None:
        return None
    try:
        low, high = clip
    except (TypeError, ValueError):
        raise error(
            f"The 'clip' parameter of {owner} must be a pair (low, high); got {clip!r}."
        ) from None
    bounds = []
    for name, value in (("low", low), ("high", high)):
        if value is None and open_sides:
            bounds.append(None)
            continue
        if not isinstance(value, Real) or isinstance(value, bool) or not np.isfinite(value):
            none = " or None" if open_sides else ""
            raise error(
                f"The 'clip' parameter of {owner}: {name} must be a finite number{none}; "
                f"got {value!r}."
            )
        bounds.append(float(value))
    low, high = bounds
    if low is None and high is None:
        raise error(
            f"The 'clip' parameter of {owner} needs a low or a high bound; got (None, None)."
        )
    if low is not None and high is not None and not low < high:
        raise error(f"The 'clip' parameter of {owner} must have low < high; got {clip!r}.")
    return low, high


def check_norm(norm, owner, allowed=(np.inf, 2)):
    """The norm of the distortion functions of both families: ``np.inf`` (or "inf"),
    2 or 1, among ``allowed``; an error naming the owner otherwise."""
    p = np.inf if (norm == "inf" or (isinstance(norm, Real) and np.isinf(norm))) else norm
    if p not in allowed:
        names = " or ".join("np.inf" if a == np.inf else str(a) for a in allowed)
        raise ValueError(f"The 'norm' parameter of {owner} must be {names}; got {norm!r}.")
    return p


def check_box(clip, n_features, owner):
    """The one box contract of the distortion functions of both families:
    ``clip`` -> (lo, hi) float64 arrays of shape (n_features,), ±inf on open sides.

    ``clip`` is None (no box) or a pair (low, high), each None (open), a finite number, or
    one finite number per feature.
    """
    lo, hi = np.full(n_features, -np.inf), np.full(n_features, np.inf)
    if clip is None:
        return lo, hi
    try:
        low, high = clip
    except (TypeError, ValueError):
        raise ValueError(
            f"The 'clip' parameter of {owner} must be a pair (low, high); got {clip!r}."
        ) from None
    sides = []
    for name, value, default in (("low", low, lo), ("high", high, hi)):
        if value is None:
            sides.append(default)
            continue
        try:
            v = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"The 'clip' parameter of {owner}: {name} must be a number, one per "
                f"feature, or None; got {value!r}."
            ) from None
        if v.ndim > 1 or (v.ndim == 1 and v.shape[0] != n_features):
            raise ValueError(
                f"The 'clip' parameter of {owner}: {name} must be a number or "
                f"{n_features} numbers (one per feature); got shape {v.shape}."
            )
        if not np.all(np.isfinite(v)):
            raise ValueError(
                f"The 'clip' parameter of {owner}: {name} must be finite (None leaves a "
                f"side open); got {value!r}."
            )
        sides.append(np.broadcast_to(v, n_features).astype(np.float64))
    lo, hi = sides
    if not np.all(lo < hi):
        raise ValueError(
            f"The 'clip' parameter of {owner} must have low < high for every feature; got {clip!r}."
        )
    return lo, hi


def _number_dtype(dtype):
    """Whether a pandas, polars or numpy column type holds numbers (bool included)."""
    if hasattr(dtype, "is_numeric"):  # polars
        return dtype.is_numeric() or str(dtype) == "Boolean"
    return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


def check_numeric_columns(X, input_name="X"):
    """Raise a ValueError that names the columns of ``X`` that are not numbers (text, IDs
    as strings, categories, dates), instead of numpy's "could not convert string to
    float" about one value; X is returned unchanged otherwise.

    DataFrames (pandas, polars) are read by their column types; numpy object and string
    arrays by trying each column.
    """
    columns, dtypes = getattr(X, "columns", None), getattr(X, "dtypes", None)
    if columns is not None and dtypes is not None and not hasattr(X, "toarray"):
        bad = [
            f"{name!r} ({dtype})"
            for j, (name, dtype) in enumerate(zip(list(columns), list(dtypes), strict=False))
            if not _number_dtype(dtype) and not _numbers_in(X, j, dtype)
        ]
    elif isinstance(X, np.ndarray) and X.dtype.kind in "OUS" and X.ndim == 2:
        bad = []
        for j in range(X.shape[1]):
            try:
                X[:, j].astype(np.float64)
            except (TypeError, ValueError):
                value = next((v for v in X[:, j] if _is_text(v)), None)
                if value is not None:  # else missing values or objects: check_array's error
                    value = str(value) if isinstance(value, str) else bytes(value)
                    bad.append(f"column {j} (it holds {value!r})")
    else:
        return X
    if bad:
        shown = ", ".join(bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise ValueError(
            f"{input_name} has columns that are not numbers: {shown}. skrob measures "
            "distances between rows of numbers: drop these columns, or encode them first "
            "(for instance scikit-learn's OneHotEncoder in a ColumnTransformer, and pass "
            "the encoded table)."
        )
    return X


def numeric_table(estimator, X, y="no_validation", reset=True):
    """``validate_data`` of a robustness estimator: X of numbers (the columns that are not
    are named), CSR allowed, float64 or float32 kept; y, when given, of one or several
    outputs. ``reset=False``: X checked against the fit (transform, score)."""
    from sklearn.utils.validation import validate_data

    labels = {} if isinstance(y, str) else {"multi_output": True, "y_numeric": False}
    return validate_data(
        estimator,
        check_numeric_columns(X),
        y,
        reset=reset,
        accept_sparse="csr",
        dtype=[np.float64, np.float32],
        **labels,
    )


def _numbers_in(frame, j, dtype):
    """Whether a pandas column of objects (or of numeric categories) holds only numbers
    and missing values, as a column read from JSON can: check_array converts those."""
    if hasattr(dtype, "is_numeric") or not hasattr(frame, "iloc"):  # polars: typed
        return False
    if isinstance(dtype, pd.CategoricalDtype):
        return _number_dtype(dtype.categories.dtype)
    if getattr(dtype, "kind", None) != "O":
        return False
    return all(_converts(v) for v in frame.iloc[:, j])


def _converts(value):
    """Whether a value is a number ("3.5" is one) or missing (None, NaN, pd.NA)."""
    if value is None or value is pd.NA:
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _is_text(value):
    """Whether a value is text that is not a number."""
    return isinstance(value, str | bytes) and not _converts(value)


def frame_like(X):
    """A function giving arrays back the dataframe type of ``X`` (pandas or polars), with
    its columns: a model fitted on a DataFrame is then called with one (no warning per
    call); the identity for arrays."""
    columns = getattr(X, "columns", None)
    if columns is None:
        return lambda block: block
    frame = type(X)
    if frame.__module__.split(".")[0] == "polars":
        return lambda block: frame(block, schema=list(columns), orient="row")
    return lambda block: frame(block, columns=columns)


def _final_step(estimator):
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


def _is(kind, *estimators):
    """scikit-learn's ``is_classifier``/``is_regressor`` on any of ``estimators``; a
    duck-typed model without scikit-learn's tags is neither."""
    from sklearn.base import is_classifier, is_regressor

    test = is_classifier if kind == "classifier" else is_regressor
    for est in estimators:
        try:
            if test(est):
                return True
        except (AttributeError, TypeError):
            continue
    return False


def check_classifier(estimator, owner, y=None):
    """What counts or flips predicted classes (RPR, minimal distortion, label flips) needs
    a classifier: a regressor, or a continuous target for a model that is not a
    classifier, is an error that says what measures it instead, never a silent number
    (every continuous prediction 'changes', every step 'fails')."""
    final = _final_step(estimator)
    if _is("regressor", estimator, final):
        raise ValueError(
            f"{owner} measures classifiers (changes of the predicted class); "
            f"{type(final).__name__} is a regressor. For regression use "
            "skrob.relative_error_distortion."
        )
    if y is not None and len(y) and not _is("classifier", estimator, final):
        kind = type_of_target(np.asarray(y), input_name="y")
        if kind.startswith("continuous"):
            raise ValueError(
                f"{owner} takes class labels y; got a continuous target ({kind}). For "
                "regression use skrob.relative_error_distortion."
            )


def check_regressor(estimator, owner):
    """The sibling of :func:`check_classifier`: a relative error needs real predictions."""
    final = _final_step(estimator)
    if _is("classifier", estimator, final):
        raise ValueError(
            f"{owner} measures regressors (a relative error of real predictions); "
            f"{type(final).__name__} is a classifier. For classifiers use "
            "skrob.decision_based_distortion or skrob.exact_distortion."
        )


# Metrics that add up per-feature differences in the features' own units.
SCALE_DEPENDENT = {
    "euclidean", "l2", "sqeuclidean", "cityblock", "manhattan", "l1", "chebyshev",
    "minkowski", "braycurtis", "canberra",
}  # fmt: skip
# A feature whose standard deviation is below 1/SPREAD of the largest barely counts in a
# distance; when most features are such, distances follow a few features alone.
SPREAD = 100.0


def unit_columns(X):
    """``(X / top, top)``: every column divided by its largest absolute value (1 for a
    zero column), so that statistics of the columns neither overflow (values near 1e300)
    nor underflow (near 1e-200); ``std(X) = std(X / top) * top``."""
    X = np.asarray(X, dtype=np.float64)
    top = np.abs(X).max(axis=0, initial=0.0)
    top[top == 0] = 1.0
    return X / top, top


def column_std(X, chunk=1024):
    """Every column's standard deviation (``ddof=0``) at any finite magnitude, in float64,
    without a float64 copy of ``X``: two passes over row chunks (the mean, then the
    squared deviations) of the columns divided by their largest absolute value (1 for a
    zero column), so that nothing overflows or underflows. The result may overflow to
    inf where the spread itself exceeds float64's range. Chunks of 1,024 rows: a chunk's
    float64 copy stays small enough for the allocator to reuse its memory instead of
    mapping fresh pages for every chunk."""
    X = np.asarray(X)
    n, d = X.shape
    if n == 0:
        return np.zeros(d)
    top = np.maximum(np.abs(X.max(axis=0)), np.abs(X.min(axis=0))).astype(np.float64)
    top[top == 0] = 1.0
    total = np.zeros(d)
    for s in range(0, n, chunk):
        total += (X[s : s + chunk] / top).sum(axis=0)
    mean = total / n
    squares = np.zeros(d)
    for s in range(0, n, chunk):
        Z = X[s : s + chunk] / top
        Z -= mean
        squares += np.einsum("ij,ij->j", Z, Z)
    with np.errstate(over="ignore"):
        return np.sqrt(squares / n) * top


def warn_on_scales(X, metric, owner):
    """Warn when most features' scales are orders of magnitude below the largest one under
    a scale-dependent metric: raw units then decide the distances (breast cancer's raw
    features give a mean robustness of 0.98, standardised 0.78). Images, whose pixels
    share one unit, do not trigger it (only a few border pixels vary little)."""
    import scipy.sparse as sp

    name = metric if isinstance(metric, str) else getattr(metric, "name", None)
    if name not in SCALE_DEPENDENT or X.shape[1] < 2 or X.shape[0] < 2:
        return
    if sp.issparse(X):
        mean = np.asarray(X.mean(axis=0)).ravel()
        sq = np.asarray(X.multiply(X).mean(axis=0)).ravel()
        with np.errstate(invalid="ignore", over="ignore"):
            std = np.sqrt(np.maximum(sq - mean**2, 0.0))
    else:
        std = column_std(X)
    spread = std[np.isfinite(std) & (std > 0)]
    if spread.size < 2:
        return
    small = spread < spread.max() / SPREAD
    if small.mean() > 0.25:
        warn_user(
            f"{owner}: {int(small.sum())} of {spread.size} features vary over less than "
            f"1/{SPREAD:g} of the largest feature's spread (standard deviations from "
            f"{spread.min():.3g} to {spread.max():.3g}): under metric={name!r} the "
            "distances follow the few largest features almost alone. Standardise X first "
            "(sklearn.preprocessing.StandardScaler) unless the units are comparable; "
            "metric='seuclidean' does the same inside the distance."
        )
