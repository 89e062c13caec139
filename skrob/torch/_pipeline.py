"""A scikit-learn Pipeline ending in a net, as one torch module on the raw features.

``make_pipeline(StandardScaler(), NeuralNetClassifier(...))`` is how scikit-learn users
train nets. Its fitted transformers become torch operations in front of the net, so that
the Laplacian and the minimal distortion are taken with respect to the pipeline's input,
in the user's units. Affine steps (the scalers, PCA, TruncatedSVD, and ColumnTransformers
of them) are collapsed into one ``F.linear``; Normalizer and FunctionTransformer (whose
``func`` must take tensors) are elementwise or row-wise modules.
"""

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    RobustScaler,
    StandardScaler,
)

SUPPORTED = (
    "StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler, Normalizer, PCA, "
    "TruncatedSVD, FunctionTransformer (with a func that takes tensors), 'passthrough', "
    "and ColumnTransformer of these over numeric columns"
)


class Affine(torch.nn.Module):
    """``x -> x Wᵀ + b``: a chain of affine steps, composed once in float64."""

    def __init__(self, W, b, dtype):
        super().__init__()
        self.register_buffer("W", torch.as_tensor(W, dtype=dtype))
        self.register_buffer("b", torch.as_tensor(b, dtype=dtype))

    def forward(self, x):
        return F.linear(x, self.W, self.b)


class RowNormalizer(torch.nn.Module):
    """scikit-learn's Normalizer: each row divided by its norm (zero rows unchanged)."""

    def __init__(self, norm):
        super().__init__()
        self.norm = norm

    def forward(self, x):
        if self.norm == "l2":
            n = torch.sqrt((x * x).sum(dim=1, keepdim=True))
        elif self.norm == "l1":
            n = x.abs().sum(dim=1, keepdim=True)
        else:
            n = x.abs().amax(dim=1, keepdim=True)
        return x / torch.where(n == 0, torch.ones_like(n), n)


class Function(torch.nn.Module):
    """A FunctionTransformer's ``func`` applied to the tensor."""

    def __init__(self, func, kw_args):
        super().__init__()
        self.func, self.kw_args = func, dict(kw_args or {})

    def forward(self, x):
        return self.func(x, **self.kw_args)


class Clamp(torch.nn.Module):
    """MinMaxScaler(clip=True)'s clipping to its feature range."""

    def __init__(self, low, high):
        super().__init__()
        self.low, self.high = float(low), float(high)

    def forward(self, x):
        return x.clamp(self.low, self.high)


class Columns(torch.nn.Module):
    """A ColumnTransformer with a non-affine part: each part on its columns, concatenated."""

    def __init__(self, parts):
        super().__init__()
        self.parts = torch.nn.ModuleList(module for module, _ in parts)
        self.columns = [torch.as_tensor(cols, dtype=torch.long) for _, cols in parts]

    def forward(self, x):
        return torch.cat(
            [m(x[:, c.to(x.device)]) for m, c in zip(self.parts, self.columns, strict=True)],
            dim=1,
        )


def _affine(step, n_in):
    """``(W, b)`` of a fitted affine step on ``n_in`` inputs, or None if it is not one."""
    eye = np.eye(n_in)
    if step is None or step == "passthrough":
        return eye, np.zeros(n_in)
    if isinstance(step, StandardScaler | RobustScaler):
        center = step.mean_ if isinstance(step, StandardScaler) else step.center_
        if isinstance(step, StandardScaler) and not step.with_mean:
            center = None
        scale = step.scale_
        s = np.ones(n_in) if scale is None else 1.0 / scale
        m = np.zeros(n_in) if center is None else center
        return np.diag(s), -m * s
    if isinstance(step, MinMaxScaler):
        return np.diag(step.scale_), step.min_.astype(np.float64)
    if isinstance(step, MaxAbsScaler):
        return np.diag(1.0 / step.scale_), np.zeros(n_in)
    if isinstance(step, PCA):
        W = step.components_.astype(np.float64)
        if step.whiten:
            W = W / np.sqrt(step.explained_variance_)[:, None]
        return W, -W @ step.mean_
    if isinstance(step, TruncatedSVD):
        return step.components_.astype(np.float64), np.zeros(step.components_.shape[0])
    return None


def _column_indices(ct, columns, n_in):
    """Integer indices of a ColumnTransformer part's columns (names via feature_names_in_)."""
    if callable(columns):
        raise ValueError(f"{type(ct).__name__}: callable column selectors are not supported.")
    idx = np.arange(n_in)
    if isinstance(columns, str) or (
        np.ndim(columns) and len(columns) and isinstance(np.asarray(columns).flat[0], str)
    ):
        names = list(getattr(ct, "feature_names_in_", []))
        picked = [columns] if isinstance(columns, str) else list(columns)
        missing = [c for c in picked if c not in names]
        if missing:
            raise ValueError(f"ColumnTransformer columns {missing} are not among its inputs.")
        return np.array([names.index(c) for c in picked])
    return idx[columns].reshape(-1)


def _step_modules(name, step, n_in, dtype):
    """The modules (affine ones as ``(W, b)``) of one fitted step; its output width."""
    affine = _affine(step, n_in)
    if affine is not None:
        width = affine[0].shape[0]
        out = [("affine", affine, width)]
        if isinstance(step, MinMaxScaler) and step.clip:
            out.append(("module", Clamp(*step.feature_range), width))
        return out, width
    if isinstance(step, Normalizer):
        return [("module", RowNormalizer(step.norm), n_in)], n_in
    if isinstance(step, FunctionTransformer):
        if step.func is None:
            return [("affine", (np.eye(n_in), np.zeros(n_in)), n_in)], n_in
        module = Function(step.func, step.kw_args)
        try:
            with torch.no_grad():
                width = module(torch.zeros((1, n_in), dtype=dtype)).shape[1]
        except Exception as exc:  # noqa: BLE001 - any failure means "not torch-callable"
            raise ValueError(
                f"Pipeline step {name!r}: FunctionTransformer's func cannot take a torch "
                f"tensor ({exc}). Write it with torch operations (they work on numpy "
                "arrays too, via torch.as_tensor), or transform X before the pipeline."
            ) from exc
        return [("module", module, width)], width
    if isinstance(step, ColumnTransformer):
        return _column_transformer(name, step, n_in, dtype)
    raise ValueError(
        f"Pipeline step {name!r} ({type(step).__name__}) cannot be differentiated by "
        f"skrob.torch; supported: {SUPPORTED}. Remedy: transform X first and pass the "
        "last step, or replace the step by a supported one."
    )


def _column_transformer(name, ct, n_in, dtype):
    parts, affine_parts, width = [], True, 0
    for part_name, step, columns in ct.transformers_:
        if step == "drop":
            continue
        cols = _column_indices(ct, columns, n_in)
        if cols.size == 0:
            continue
        modules, out = _step_modules(f"{name}__{part_name}", step, cols.size, dtype)
        parts.append((modules, cols, out))
        affine_parts &= all(kind == "affine" for kind, _, _ in modules)
        width += out
    if affine_parts:  # one block matrix over the selected columns
        W, b, row = np.zeros((width, n_in)), np.zeros(width), 0
        for modules, cols, out in parts:
            Wp, bp = _compose([m for _, m, _ in modules], cols.size)
            W[row : row + out, cols] = Wp
            b[row : row + out] = bp
            row += out
        return [("affine", (W, b), width)], width
    columns = Columns([(_build(m, cols.size, dtype), cols) for m, cols, _ in parts])
    return [("module", columns, width)], width


def _compose(affines, n_in):
    W, b = np.eye(n_in), np.zeros(n_in)
    for Wk, bk in affines:
        W, b = Wk @ W, Wk @ b + bk
    return W, b


def _build(modules, n_in, dtype):
    """One module from entries ``(kind, affine (W, b) or module, output width)``;
    consecutive affine entries are merged into one ``F.linear``."""
    layers, run, width, run_in = [], [], n_in, n_in
    for kind, m, out in modules:
        if kind == "affine":
            if not run:
                run_in = width
            run.append(m)
        else:
            if run:
                layers.append(Affine(*_compose(run, run_in), dtype))
                run = []
            layers.append(m)
        width = out
    if run:
        layers.append(Affine(*_compose(run, run_in), dtype))
    if not layers:
        return torch.nn.Identity()
    return layers[0] if len(layers) == 1 else torch.nn.Sequential(*layers)


def pipeline_module(pipeline, net, dtype):
    """``nn.Sequential(<the pipeline's transformers in torch>, net)``."""
    try:
        n_in = pipeline.n_features_in_
    except AttributeError:
        raise ValueError(
            "The pipeline has no n_features_in_: fit it first (its first step must be "
            "fitted to know its input width)."
        ) from None
    modules, width = [], n_in
    for name, step in pipeline.steps[:-1]:
        step_modules, width = _step_modules(name, step, width, dtype)
        modules += step_modules
    return torch.nn.Sequential(_build(modules, n_in, dtype), net)
