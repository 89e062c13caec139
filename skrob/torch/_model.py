"""Resolve a skorch net or an nn.Module to (module, device), in eval mode, and feed it X."""

import contextlib

import numpy as np
import torch
from sklearn.exceptions import NotFittedError


def resolve_device(device):
    """``None``/"auto": CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_module(model, device=None):
    """Return ``(module, device, returns_probabilities)`` for a skorch net or an nn.Module.

    A skorch net gives its ``module_`` and, unless ``device`` is given, its own device;
    with skorch's default ``NLLLoss`` criterion its module returns probabilities (skorch
    takes their log in the loss), with ``CrossEntropyLoss`` logits. A plain module must
    return logits; it stays on the device of its parameters unless ``device`` is given,
    in which case it is moved there (as skorch does).
    """
    if isinstance(model, torch.nn.Module):
        module = model
        current = next(iter(module.parameters()), None)
        target = (
            resolve_device(device)
            if device is not None
            else (current.device if current is not None else torch.device("cpu"))
        )
    elif hasattr(model, "module") and hasattr(model, "initialize"):  # a skorch net
        if not getattr(model, "initialized_", False):
            raise NotFittedError(f"This {type(model).__name__} is not initialized/fitted yet.")
        module = model.module_
        target = resolve_device(device if device is not None else model.device)
        criterion = getattr(model, "criterion_", None)
        probabilities = isinstance(criterion, torch.nn.NLLLoss)
        return module.to(target), target, probabilities
    else:
        raise TypeError(
            f"Expected a fitted skorch NeuralNet or a torch.nn.Module returning logits, "
            f"got {type(model).__name__}."
        )
    return module.to(target), target, False


@contextlib.contextmanager
def eval_mode(module):
    """Evaluate with dropout off and batch-norm statistics frozen; restore afterwards."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def as_tensor(X, device, input_shape=None, dtype=torch.float32):
    """X (array-like or tensor, one row per sample) as a ``dtype`` tensor on ``device``."""
    if isinstance(X, torch.Tensor):
        T = X.detach().to(device=device, dtype=dtype)
    else:
        A = np.asarray(X)
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
        T = T.reshape((T.shape[0],) + tuple(input_shape))
    return T
