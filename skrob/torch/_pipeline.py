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
from sklearn.preprocessing import FunctionTransformer, Normalizer

from skrob._affine import affine as affine_map

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


def _affine(step, n_in, name="step"):
    """``(W, b, clip)`` of a fitted affine step on ``n_in`` inputs, or None if it is not one
    (:func:`skrob._affine.affine`, the reading the exact sklearn path shares)."""
    return affine_map(step, n_in, name)


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
    affine = _affine(step, n_in, name)
    if affine is not None:
        W, b, clip = affine
        width = W.shape[0]
        out = [("affine", (W, b), width)]
        if clip is not None:
            out.append(("module", _named(Clamp(*clip), name, "MinMaxScaler(clip=True)"), width))
        return out, width
    if isinstance(step, Normalizer):
        module = _named(RowNormalizer(step.norm), name, f"Normalizer(norm={step.norm!r})")
        return [("module", module, n_in)], n_in
    if isinstance(step, FunctionTransformer):
        if step.func is None:
            return [("affine", (np.eye(n_in), np.zeros(n_in)), n_in)], n_in
        func = getattr(step.func, "__name__", type(step.func).__name__)
        module = _named(Function(step.func, step.kw_args), name, f"FunctionTransformer({func})")
        width = _torch_width(module, name, func, n_in, dtype)
        return [("module", module, width)], width
    if isinstance(step, ColumnTransformer):
        return _column_transformer(name, step, n_in, dtype)
    raise ValueError(
        f"Pipeline step {name!r} ({type(step).__name__}) cannot be differentiated by "
        f"skrob.torch; supported: {SUPPORTED}. Remedy: transform X first and pass the "
        "last step, or replace the step by a supported one."
    )


def _named(module, step_name, description):
    """Tag a non-affine module with the Pipeline step it comes from, for error messages."""
    module.step_name, module.description = step_name, description
    return module


def _torch_width(module, name, func, n_in, dtype):
    """The output width of a FunctionTransformer's ``func`` run on a tensor; an error
    naming the step unless it takes and returns torch tensors that carry gradients."""
    x = torch.full((2, n_in), 0.5, dtype=dtype, requires_grad=True)
    fix = (
        f"Pipeline step {name!r}: FunctionTransformer(func={func}) must take and return "
        "torch tensors so that skrob.torch can differentiate through it (numpy functions "
        "such as np.log1p turn tensors into arrays; use torch.log1p), or transform X before "
        "the pipeline and pass its last step."
    )
    try:
        out = module(x)
    except Exception as exc:  # noqa: BLE001 - any failure means "not torch-callable"
        raise ValueError(f"{fix} Calling it on a tensor failed: {exc}") from exc
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        got = type(out).__name__ if not isinstance(out, torch.Tensor) else tuple(out.shape)
        raise ValueError(f"{fix} It returned {got} for a (2, {n_in}) tensor.")
    if not out.requires_grad:
        raise ValueError(f"{fix} Its output carries no gradient.")
    return out.shape[1]


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
    columns = _named(columns, name, "a ColumnTransformer with a non-affine part")
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
        first_name, first = pipeline.steps[0]
        raise ValueError(
            f"The Pipeline's first step {first_name!r} ({type(first).__name__}) has no "
            "n_features_in_: it is not fitted, or it is a custom transformer that does not "
            "record its input width. Fit the Pipeline first; a custom transformer must set "
            "n_features_in_ in fit (scikit-learn's convention). skrob.torch differentiates "
            f"through {SUPPORTED}."
        ) from None
    modules, width = [], n_in
    for name, step in pipeline.steps[:-1]:
        step_modules, width = _step_modules(name, step, width, dtype)
        modules += step_modules
    return torch.nn.Sequential(_build(modules, n_in, dtype), net)
