"""One table of torch operations by kind, and the shared pieces of the Laplacian routes.

- affine modules (linear maps: tangents and Laplacian pass linearly), reshapes, and
  elementwise activations with their first two derivatives: the forward Laplacian's rules;
- piecewise-linear modules, functions and methods: the allow-list of
  :func:`is_piecewise_linear` (the Jacobian route);
- :func:`softmax_laplacian`, the Laplacian of the probabilities through the logits, and
  :func:`basis_chunks`, the unit input directions in chunks.
"""

import operator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Unsupported(Exception):
    """A layer the forward-Laplacian rules do not cover: use forward-over-forward."""


def softmax_laplacian(s, M, lap=None):
    """Laplacian of the class probabilities s = softmax(z) through the logits z.

    ``M = Σ_i t_i t_iᵀ`` sums the logits' tangents (J Jᵀ for the basis directions) and
    ``lap`` is the logits' own Laplacian (0 for piecewise-linear nets). With the softmax
    Hessian ``H_c = s_c[(e_c − s)(e_c − s)ᵀ − diag(s) + s sᵀ]``:
    ``LO_c = s_c (lap_c − s·lap) + s_c [M_cc − 2 (M s)_c + 2 sᵀ M s − Σ_j s_j M_jj]``.
    """
    Ms = (M @ s.unsqueeze(-1)).squeeze(-1)
    sMs = (s * Ms).sum(dim=1, keepdim=True)
    diag = torch.diagonal(M, dim1=1, dim2=2)
    out = s * (diag - 2 * Ms + 2 * sMs - (s * diag).sum(dim=1, keepdim=True))
    if lap is not None:
        out = out + s * (lap - (s * lap).sum(dim=1, keepdim=True))
    return out


AFFINE_MODULES = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.Flatten,
    nn.Unflatten,
    nn.Identity,
    nn.Dropout,
    nn.Dropout2d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.ZeroPad2d,
)


def elementwise_derivatives(layer, v, y):
    """First and second derivative of an elementwise activation at its input v (output y)."""
    if isinstance(layer, nn.Tanh):
        d1 = 1 - y * y
        return d1, -2 * y * d1
    if isinstance(layer, nn.Sigmoid):
        d1 = y * (1 - y)
        return d1, d1 * (1 - 2 * y)
    if isinstance(layer, nn.ReLU):
        return (v > 0).to(v.dtype), torch.zeros_like(v)
    if isinstance(layer, nn.LeakyReLU):
        return torch.where(v > 0, 1.0, layer.negative_slope).to(v.dtype), torch.zeros_like(v)
    if isinstance(layer, nn.ELU):
        e = layer.alpha * torch.exp(torch.clamp(v, max=0))
        return torch.where(v > 0, torch.ones_like(v), e), torch.where(v > 0, 0.0, e)
    if isinstance(layer, nn.Softplus) and layer.beta == 1 and layer.threshold >= 20:
        d1 = torch.sigmoid(v)
        return d1, d1 * (1 - d1)
    raise Unsupported(type(layer).__name__)


SHAPE_MODULES = (nn.Flatten, nn.Unflatten)


SHAPE_FUNCTIONS = {torch.flatten, torch.reshape}


SHAPE_METHODS = {"view", "reshape", "flatten"}


ACTIVATION_FUNCTIONS = {
    torch.tanh: nn.Tanh(),
    torch.sigmoid: nn.Sigmoid(),
    torch.relu: nn.ReLU(),
    F.relu: nn.ReLU(),
}


ACTIVATION_METHODS = {"tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "relu": nn.ReLU()}


def basis_chunks(X, batch_size):
    """The input space's unit basis vectors, ``batch_size // n_samples`` at a time.

    Yields tensors of shape (m, *X.shape[1:]); the Laplacian is a sum over them.
    """
    shape = X.shape[1:]
    n = int(np.prod(shape))
    chunk = max(1, batch_size // X.shape[0])
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        E = torch.zeros((m, n), dtype=X.dtype, device=X.device)
        E[torch.arange(m), torch.arange(start, start + m)] = 1.0
        yield E.reshape((m,) + shape)


# Piecewise-linear modules: the affine ones of the forward Laplacian, and these.
LINEAR_MODULES = AFFINE_MODULES + (
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.Hardtanh,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool2d,
)


LINEAR_FUNCTIONS = {
    operator.add,
    operator.sub,
    operator.neg,
    operator.getitem,
    torch.flatten,
    torch.reshape,
    torch.cat,
    torch.relu,
    F.relu,
    F.leaky_relu,
    F.max_pool2d,
    F.avg_pool2d,
    F.linear,
    getattr,
}


LINEAR_METHODS = {
    "view",
    "reshape",
    "flatten",
    "size",
    "relu",
    "permute",
    "transpose",
    "contiguous",
    "squeeze",
    "unsqueeze",
    "add",
    "sub",
    "mean",
    "sum",
    "dim",
}


def is_piecewise_linear(module):
    """Whether a ``torch.fx`` trace of ``module`` finds only piecewise-linear operations.

    Conservative: a module that cannot be traced, or uses any operation not on the
    allow-list (tanh, sigmoid, a product of two tensors, ...), is treated as smooth.
    """
    try:
        graph = torch.fx.symbolic_trace(module).graph
    except Exception:
        return False
    modules = dict(module.named_modules())
    for node in graph.nodes:
        if node.op == "call_module":
            if not isinstance(modules[node.target], LINEAR_MODULES):
                return False
        elif node.op == "call_function":
            if node.target in (operator.mul, operator.truediv):
                if sum(isinstance(a, torch.fx.Node) for a in node.args) > 1:
                    return False  # a product of two tensors is not linear
            elif node.target not in LINEAR_FUNCTIONS:
                return False
        elif node.op == "call_method" and node.target not in LINEAR_METHODS:
            return False
    return True
