"""Fitted scikit-learn transformers that are affine maps ``x -> W x + b``, read exactly.

One reading for every path that folds a Pipeline's preprocessing into a model: the exact
minimal distortion of scikit-learn models (:mod:`skrob.distortion._model_exact`, which needs
per-feature maps) and the torch modules built from a Pipeline (:mod:`skrob.torch._pipeline`).
Each step is read as it *transforms*, not as it was configured to fit: a
``StandardScaler(with_mean=False)`` still has a ``mean_`` it never subtracts, and a
``MinMaxScaler(clip=True)`` is affine only inside its feature range (its clipping is
returned separately, never dropped).
"""

import numpy as np
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

AFFINE_STEPS = (
    "StandardScaler, MinMaxScaler (clip=False), MaxAbsScaler, RobustScaler, PCA, "
    "TruncatedSVD, 'passthrough'"
)


def _fitted(step, attribute, name):
    if not hasattr(step, attribute):
        raise ValueError(
            f"The Pipeline step {name!r} ({type(step).__name__}) is not fitted: fit the "
            "Pipeline first."
        )


def per_feature(step, n_in, name="step"):
    """``(scale, offset, clip)`` of a per-feature affine step, or None if it is not one.

    The step maps ``x`` to ``x * scale + offset``; ``clip`` is None or the
    ``(low, high)`` range the output is clipped to afterwards (``MinMaxScaler(clip=True)``).
    """
    one, zero = np.ones(n_in), np.zeros(n_in)
    clip = None
    if step is None or (isinstance(step, str) and step == "passthrough"):
        return one, zero, None
    if isinstance(step, StandardScaler):
        _fitted(step, "n_features_in_", name)
        s = one / step.scale_ if (step.with_std and step.scale_ is not None) else one
        m = step.mean_ if (step.with_mean and step.mean_ is not None) else zero
        o = -m * s
    elif isinstance(step, RobustScaler):
        _fitted(step, "n_features_in_", name)
        s = one / step.scale_ if (step.with_scaling and step.scale_ is not None) else one
        c = step.center_ if (step.with_centering and step.center_ is not None) else zero
        o = -c * s
    elif isinstance(step, MinMaxScaler):
        _fitted(step, "scale_", name)
        s, o = np.asarray(step.scale_, float), np.asarray(step.min_, float)
        if step.clip:
            clip = tuple(float(v) for v in step.feature_range)
    elif isinstance(step, MaxAbsScaler):
        _fitted(step, "scale_", name)
        s, o = one / step.scale_, zero
    else:
        return None
    s = np.broadcast_to(np.asarray(s, float), n_in).copy()
    o = np.broadcast_to(np.asarray(o, float), n_in).copy()
    return s, o, clip


def affine(step, n_in, name="step"):
    """``(W, b, clip)`` of a fitted affine step on ``n_in`` inputs, or None if it is not one."""
    diag = per_feature(step, n_in, name)
    if diag is not None:
        s, o, clip = diag
        return np.diag(s), o, clip
    if isinstance(step, PCA):
        _fitted(step, "components_", name)
        W = step.components_.astype(np.float64)
        if step.whiten:
            W = W / np.sqrt(step.explained_variance_)[:, None]
        return W, -W @ step.mean_, None
    if isinstance(step, TruncatedSVD):
        _fitted(step, "components_", name)
        return step.components_.astype(np.float64), np.zeros(step.components_.shape[0]), None
    return None
