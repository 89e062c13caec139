"""Forward Laplacian (Li et al., 2023) over a torch.fx trace: value, tangents, Laplacian.

One pass per chunk of directions carries, node by node, the value, the tangents of the
chunk's directions and the Laplacian of every unit restricted to them. Rules: affine maps
(linear, convolution, average pooling, batch norm in eval mode, ...) carry tangents and
Laplacian linearly; reshapes reshape; an elementwise activation with known derivatives adds
``σ''(v) Σ_i t_i²``; max pooling gathers; sums add. Anything else raises ``Unsupported``.
"""

import operator

import torch
import torch.nn.functional as F
from torch import nn

from skrob.torch._ops import (
    ACTIVATION_FUNCTIONS,
    ACTIVATION_METHODS,
    AFFINE_MODULES,
    SHAPE_FUNCTIONS,
    SHAPE_METHODS,
    SHAPE_MODULES,
    Unsupported,
    basis_chunks,
    elementwise_derivatives,
    softmax_laplacian,
)


class _Jet:
    """Value (B, ...), tangents of m directions ((m, ...) while shared by all samples,
    else (B, m, ...)) and the Laplacian restricted to those directions (B, ...)."""

    def __init__(self, v, T, lap, shared):
        self.v, self.T, self.lap, self.shared = v, T, lap, shared

    def per_sample_T(self):
        if self.shared:
            return self.T.unsqueeze(0).expand((self.v.shape[0],) + self.T.shape)
        return self.T


def _affine(fn, jet):
    zero = fn(torch.zeros_like(jet.v[:1]))
    v = fn(jet.v)
    if jet.shared:
        T = fn(jet.T) - zero
    else:
        B, m = jet.T.shape[:2]
        T = (fn(jet.T.flatten(0, 1)) - zero).unflatten(0, (B, m))
    return _Jet(v, T, fn(jet.lap) - zero, jet.shared)


def _reshape(fn, jet):
    v = fn(jet.v)
    if v.shape[0] != jet.v.shape[0]:
        raise Unsupported("a reshape that moves the batch axis")
    lead = 1 if jet.shared else 2
    return _Jet(
        v, jet.T.reshape(jet.T.shape[:lead] + v.shape[1:]), jet.lap.reshape(v.shape), jet.shared
    )


def _activation(layer, jet):
    y = layer(jet.v)
    d1, d2 = elementwise_derivatives(layer, jet.v, y)
    T = jet.T.unsqueeze(0) if jet.shared else jet.T
    lap = d1 * jet.lap + d2 * (T * T).sum(dim=1)
    return _Jet(y, d1.unsqueeze(1) * T, lap, False)


def _max_pool(jet, *args, **kwargs):
    out, idx = F.max_pool2d(jet.v, *args, **{**kwargs, "return_indices": True})
    T = jet.per_sample_T()
    B, m = T.shape[:2]
    flat = idx.flatten(2)  # (B, C, Ho*Wo): positions in each channel's H*W
    index = flat.unsqueeze(1).expand(B, m, *flat.shape[1:])
    T = torch.gather(T.flatten(-2), -1, index).reshape(B, m, *out.shape[1:])
    lap = torch.gather(jet.lap.flatten(-2), -1, flat).reshape(out.shape)
    return _Jet(out, T, lap, False)


def _combine(op, a, b):
    """a + op * b (op is +1 or -1); either may be a constant."""
    if isinstance(a, _Jet) and isinstance(b, _Jet):
        shared = a.shared and b.shared
        Ta, Tb = (a.T, b.T) if shared else (a.per_sample_T(), b.per_sample_T())
        return _Jet(a.v + op * b.v, Ta + op * Tb, a.lap + op * b.lap, shared)
    if isinstance(a, _Jet):
        return _Jet(a.v + op * b, a.T, a.lap, a.shared)
    return _Jet(a + op * b.v, op * b.T, op * b.lap, b.shared)


def _scale(a, b, divide):
    if isinstance(a, _Jet) and isinstance(b, _Jet):
        raise Unsupported("a product of two inputs")
    if not isinstance(a, _Jet):
        if divide:
            raise Unsupported("a constant divided by an input")
        a, b = b, a
    c = 1 / b if divide else b
    return _Jet(a.v * c, a.T * c, a.lap * c, a.shared)


def _run_node(node, modules, env):
    def arg(a):
        return torch.fx.node.map_arg(a, lambda n: env[n])

    args, kwargs = arg(node.args), arg(node.kwargs)
    jets = [a for a in args if isinstance(a, _Jet)]
    if node.op == "get_attr":
        obj = modules[""]
        for part in node.target.split("."):
            obj = getattr(obj, part)
        return obj
    if node.op == "call_module":
        layer = modules[node.target]
        if isinstance(layer, SHAPE_MODULES):
            return _reshape(layer, args[0])
        if isinstance(layer, AFFINE_MODULES):
            return _affine(layer, args[0])
        if isinstance(layer, nn.MaxPool2d):
            return _max_pool(
                args[0],
                layer.kernel_size,
                layer.stride,
                layer.padding,
                layer.dilation,
                ceil_mode=layer.ceil_mode,
            )
        if isinstance(layer, nn.Sequential):
            raise Unsupported("nested Sequential")  # symbolic_trace inlines these
        return _activation(layer, args[0])
    if node.op in ("call_function", "call_method"):
        target = node.target
        if not jets:  # constants only (sizes, shapes): evaluate
            if node.op == "call_method":
                return getattr(args[0], target)(*args[1:], **kwargs)
            return target(*args, **kwargs)
        first = args[0]
        if node.op == "call_method" and target in ("size", "dim") or target is getattr:
            probe = first.v if isinstance(first, _Jet) else first
            if node.op == "call_method":
                return getattr(probe, target)(*args[1:], **kwargs)
            return getattr(probe, args[1])
        if node.op == "call_method" and target in SHAPE_METHODS:
            return _reshape(lambda a: getattr(a, target)(*args[1:], **kwargs), first)
        if target in SHAPE_FUNCTIONS:
            return _reshape(lambda a: target(a, *args[1:], **kwargs), first)
        if target in (operator.add, torch.add) or (node.op == "call_method" and target == "add"):
            return _combine(1, args[0], args[1])
        if target in (operator.sub, torch.sub) or (node.op == "call_method" and target == "sub"):
            return _combine(-1, args[0], args[1])
        if target is operator.neg:
            return _Jet(-first.v, -first.T, -first.lap, first.shared)
        if target in (operator.mul, torch.mul):
            return _scale(args[0], args[1], False)
        if target is operator.truediv:
            return _scale(args[0], args[1], True)
        if target is F.max_pool2d:
            return _max_pool(first, *args[1:], **kwargs)
        if target in (F.avg_pool2d, F.linear, F.conv2d):
            return _affine(lambda a: target(a, *args[1:], **kwargs), first)
        layer = (
            ACTIVATION_METHODS.get(target)
            if node.op == "call_method"
            else ACTIVATION_FUNCTIONS.get(target)
        )
        if layer is not None and not kwargs and len(args) == 1:
            return _activation(layer, first)
    raise Unsupported(f"{node.op} {node.target}")


def forward_laplacian(module, X, batch_size):
    """Forward Laplacian (Li et al., 2023) through a torch.fx trace of a logits module.

    Propagates, node by node, the value, the tangents of a chunk of basis directions and
    the Laplacian of every unit restricted to those directions: affine maps carry
    tangents and Laplacian linearly, an elementwise activation adds ``σ''(v) Σ_i t_i²``,
    max-pooling gathers, sums add. The Laplacian is additive over directions, so chunks
    are summed. Tangents through the leading affine layers do not depend on the sample:
    they are computed once per chunk. Softmax at the end, as in the Jacobian route. Any
    operation without a rule raises ``_Unsupported``: forward-over-forward then.
    """
    try:
        graph_module = torch.fx.symbolic_trace(module)
    except Exception as exc:
        raise Unsupported("not traceable") from exc
    modules = dict(graph_module.named_modules())
    total = None
    for E in basis_chunks(X, batch_size):
        env = {}
        result = None
        for node in graph_module.graph.nodes:
            if node.op == "placeholder":
                env[node] = _Jet(X, E, torch.zeros_like(X), True)
            elif node.op == "output":
                result = torch.fx.node.map_arg(node.args[0], env.__getitem__)
            else:
                env[node] = _run_node(node, modules, env)
        if not isinstance(result, _Jet) or result.v.ndim != 2:
            raise Unsupported("the output is not a (samples, classes) tensor")
        T = result.per_sample_T()
        M = torch.einsum("bmk,bml->bkl", T, T)
        part = softmax_laplacian(torch.softmax(result.v, dim=-1), M, result.lap)
        total = part if total is None else total + part
    return total
