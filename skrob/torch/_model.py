"""Resolve a skorch net or an nn.Module to (module, device), in eval mode, and feed it X."""

import contextlib
import copy

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

from skrob._device import resolve_device  # noqa: F401 - one device check for skrob
from skrob._validation import check_numeric_columns


def _on(module, device):
    """The module on ``device``: itself when it is there, else a moved copy.

    ``module.to`` moves in place; the caller's module (or skorch net) must not change
    device because skrob measured it somewhere else.
    """
    first = next(iter(module.parameters()), None)
    if first is None:
        first = next(iter(module.buffers()), None)
    if first is None or first.device == device:
        return module
    return copy.deepcopy(module).to(device)


def resolve_module(model, device=None):
    """Return ``(module, device, returns_probabilities)`` for a skorch net or an nn.Module.

    ``device=None`` leaves devices alone, as skorch's ``device=None`` does: the module is
    evaluated where its parameters are (CPU for a parameter-free one); ``"auto"`` means
    CUDA when available. A skorch net gives its ``module_`` (its own ``device`` unless
    ``device`` is given); with skorch's default ``NLLLoss`` criterion its module returns
    probabilities (skorch takes their log in the loss), with ``CrossEntropyLoss`` logits.
    A plain module must return logits. A module is never moved in place: when it has to
    go to another device, a copy goes. A fitted :class:`sklearn.pipeline.Pipeline` whose
    last step is one of these becomes one module on the pipeline's input
    (:mod:`skrob.torch._pipeline`): its transformers run as torch operations first.
    """
    probabilities = False
    if isinstance(model, Pipeline):
        from skrob.torch._pipeline import pipeline_module

        net, target, probabilities = resolve_module(model.steps[-1][1], device)
        composed = pipeline_module(model, net, parameter_dtype(net))
        return composed.to(target), target, probabilities  # net is there already
    if isinstance(model, torch.nn.Module):
        module = model
    elif hasattr(model, "module") and hasattr(model, "initialize"):  # a skorch net
        if not getattr(model, "initialized_", False):
            raise NotFittedError(f"This {type(model).__name__} is not initialized/fitted yet.")
        module = model.module_
        if device is None:
            device = model.device
        probabilities = isinstance(getattr(model, "criterion_", None), torch.nn.NLLLoss)
    else:
        raise TypeError(
            "Expected a fitted skorch NeuralNet, a torch.nn.Module returning logits, or a "
            f"Pipeline ending in one; got {type(model).__name__}."
        )
    if device is None:
        first = next(iter(module.parameters()), None)
        target = first.device if first is not None else torch.device("cpu")
    else:
        target = resolve_device(device)
    return _on(module, target), target, probabilities


@contextlib.contextmanager
def eval_mode(module):
    """Evaluate with dropout off and batch-norm statistics frozen; restore afterwards."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def parameter_dtype(module):
    """The floating dtype of the module's parameters (float32 for a parameter-free one)."""
    first = next(iter(module.parameters()), None)
    return first.dtype if first is not None and first.is_floating_point() else torch.float32


def check_outputs(module, X, probe=2):
    """Run the module on the first rows of X; it must map them to (rows, n_classes).

    Returns the number of classes. A module that rejects X, or maps it to another shape
    (an MLP given 3-D images broadcasts over the extra axis), gets an error naming X's
    shape and ``input_shape``.
    """
    rows = X[:probe]
    try:
        with torch.no_grad():
            out = module(rows)
    except RuntimeError as exc:
        raise ValueError(
            f"The model cannot take X with rows of shape {tuple(X.shape[1:])}: {exc} "
            "Pass input_shape= to reshape each row as the model expects."
        ) from exc
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != rows.shape[0]:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"The model maps {rows.shape[0]} rows of shape {tuple(X.shape[1:])} to {shape}; "
            "skrob.torch needs one row of class scores per sample, (n_samples, n_classes). "
            "Check X's shape, or pass input_shape= to reshape each row."
        )
    if out.shape[1] < 2:
        raise ValueError(f"The model returns {out.shape[1]} class score; at least 2 are needed.")
    return out.shape[1]


def as_tensor(X, device, input_shape=None, dtype=torch.float32):
    """X (array-like or tensor, one row per sample) as a ``dtype`` tensor on ``device``."""
    if sp.issparse(X):
        raise TypeError(
            "Sparse data was passed for X, but dense data is required: use X.toarray()."
        )
    if isinstance(X, torch.Tensor):
        T = X.detach().to(device=device, dtype=dtype)
    else:
        A = np.asarray(check_numeric_columns(X))
        if A.dtype.kind not in "fiub":
            raise ValueError(f"X must be numeric, got dtype {A.dtype}.")
        T = torch.as_tensor(A, dtype=dtype, device=device)
    if T.ndim < 2 or T.shape[0] == 0:
        raise ValueError(
            f"X must hold at least one sample, one per row; got shape {tuple(T.shape)}."
        )
    if not torch.isfinite(T).all():
        raise ValueError("Input X contains NaN or infinity.")
    if input_shape is not None:
        shape = tuple(input_shape)
        if not all(isinstance(s, int | np.integer) and s > 0 for s in shape):
            raise ValueError(f"input_shape must hold positive integers, got {input_shape!r}.")
        if int(np.prod(shape)) != int(np.prod(T.shape[1:])):
            raise ValueError(
                f"input_shape {shape} holds {int(np.prod(shape))} values, but each row of X "
                f"has shape {tuple(T.shape[1:])} ({int(np.prod(T.shape[1:]))} values)."
            )
        T = T.reshape((T.shape[0],) + shape)
    return T


def class_indices(y, n, n_classes, device):
    """``y`` as int64 class indices in [0, n_classes), one per sample of n."""
    A = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    if A.ndim != 1 or A.shape[0] != n:
        raise ValueError(
            f"y must hold one class index per sample: shape ({n},); got shape {A.shape}."
        )
    if A.dtype.kind == "b" or A.dtype.kind not in "iuf":
        raise ValueError(
            f"y must hold integer class indices of the model's outputs, got dtype {A.dtype} "
            "(encode string labels first, e.g. with sklearn's LabelEncoder)."
        )
    if A.dtype.kind == "f" and not (np.isfinite(A).all() and (A == np.round(A)).all()):
        raise ValueError("y must hold integer class indices; got non-integer values.")
    if n and (A.min() < 0 or A.max() >= n_classes):
        raise ValueError(
            f"y must hold class indices in [0, {n_classes}) (the model's outputs); "
            f"got values in [{A.min():g}, {A.max():g}]."
        )
    return torch.as_tensor(A.astype(np.int64), device=device)
