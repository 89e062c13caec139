"""LO: the Laplacian of the predicted-class probability with respect to the input (paper 003).

For ``f(x) = softmax(module(x))_c``, ``LO(x) = Σ_i ∂²f/∂x_i²``, and the mean change of f over
perturbations of length r is ``E[f(x + Δ) − f(x)] ≈ r²/(2n)·LO`` (n input values).

Two exact routes, neither ever forms the n×n Hessian:

- smooth networks: every ``∂²f/∂x_i²`` is a second directional derivative along the basis
  vector ``e_i``, computed forward-over-forward (two nested ``torch.func.jvp``, no backward
  pass), vmapped over chunks of basis vectors and samples; all classes come at once;
- piecewise-linear networks (ReLU, max-pooling, linear layers: the logits' Hessian is 0
  almost everywhere): ``LO = tr(∇²_z s(z) · J Jᵀ)`` with ``J`` the Jacobian of the logits,
  from ``K`` vectorised backward passes instead of ``n`` forward ones. It is chosen when a
  ``torch.fx`` trace of the module finds only piecewise-linear operations.

"hutchinson" estimates the trace with Rademacher probes ``v``: ``E[vᵀ H v] = tr(H)``.
"""

import operator
from numbers import Integral

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from torch import nn

from skrob.torch._model import as_tensor, eval_mode, resolve_module

DEFAULT_BATCH_SIZE = 1024  # forward evaluations (sample x direction) held at once

_LINEAR_MODULES = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
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
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
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
_LINEAR_FUNCTIONS = {
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
_LINEAR_METHODS = {
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
    except Exception:  # noqa: BLE001 - any trace failure means "do not assume"
        return False
    modules = dict(module.named_modules())
    for node in graph.nodes:
        if node.op == "call_module":
            if not isinstance(modules[node.target], _LINEAR_MODULES):
                return False
        elif node.op == "call_function":
            if node.target in (operator.mul, operator.truediv):
                if sum(isinstance(a, torch.fx.Node) for a in node.args) > 1:
                    return False  # a product of two tensors is not linear
            elif node.target not in _LINEAR_FUNCTIONS:
                return False
        elif node.op == "call_method" and node.target not in _LINEAR_METHODS:
            return False
    return True


def _probabilities(module, returns_probabilities=False):
    def probs(x):  # one sample, without its batch axis
        out = module(x.unsqueeze(0))[0]
        return out if returns_probabilities else torch.softmax(out, dim=-1)

    return probs


def _second_directional(probs, X, V, per_sample):
    """``vᵀ ∇²s_k(x) v`` for every sample, direction and class: (B, m, K).

    Forward-over-forward: the second derivative of ``t -> s(x + t v)`` at 0.
    """

    def d2(x, v):
        def first(y):
            return torch.func.jvp(probs, (y,), (v,))[1]

        return torch.func.jvp(first, (x,), (v,))[1]

    over_directions = torch.func.vmap(d2, in_dims=(None, 0))
    return torch.func.vmap(over_directions, in_dims=(0, 0 if per_sample else None))(X, V)


class _Unsupported(Exception):
    """A layer the forward-Laplacian rules do not cover: use forward-over-forward."""


_AFFINE = (
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


def _elementwise_derivatives(layer, v, y):
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
    raise _Unsupported(type(layer).__name__)


_SHAPE_MODULES = (nn.Flatten, nn.Unflatten)
_SHAPE_FUNCTIONS = {torch.flatten, torch.reshape}
_SHAPE_METHODS = {"view", "reshape", "flatten"}
_ACTIVATION_FUNCTIONS = {
    torch.tanh: nn.Tanh(),
    torch.sigmoid: nn.Sigmoid(),
    torch.relu: nn.ReLU(),
    F.relu: nn.ReLU(),
}
_ACTIVATION_METHODS = {"tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "relu": nn.ReLU()}


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
        raise _Unsupported("a reshape that moves the batch axis")
    lead = 1 if jet.shared else 2
    return _Jet(
        v, jet.T.reshape(jet.T.shape[:lead] + v.shape[1:]), jet.lap.reshape(v.shape), jet.shared
    )


def _activation(layer, jet):
    y = layer(jet.v)
    d1, d2 = _elementwise_derivatives(layer, jet.v, y)
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
        raise _Unsupported("a product of two inputs")
    if not isinstance(a, _Jet):
        if divide:
            raise _Unsupported("a constant divided by an input")
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
        if isinstance(layer, _SHAPE_MODULES):
            return _reshape(layer, args[0])
        if isinstance(layer, _AFFINE):
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
            raise _Unsupported("nested Sequential")  # symbolic_trace inlines these
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
        if node.op == "call_method" and target in _SHAPE_METHODS:
            return _reshape(lambda a: getattr(a, target)(*args[1:], **kwargs), first)
        if target in _SHAPE_FUNCTIONS:
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
            _ACTIVATION_METHODS.get(target)
            if node.op == "call_method"
            else _ACTIVATION_FUNCTIONS.get(target)
        )
        if layer is not None and not kwargs and len(args) == 1:
            return _activation(layer, first)
    raise _Unsupported(f"{node.op} {node.target}")


def _forward_laplacian(module, X, batch_size):
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
    except Exception as exc:  # noqa: BLE001 - untraceable: use the general route
        raise _Unsupported("not traceable") from exc
    modules = dict(graph_module.named_modules())
    B = X.shape[0]
    shape = X.shape[1:]
    n = int(np.prod(shape))
    chunk = max(1, batch_size // B)
    total = None
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        E = torch.zeros((m, n), dtype=X.dtype, device=X.device)
        E[torch.arange(m), torch.arange(start, start + m)] = 1.0
        env = {}
        result = None
        for node in graph_module.graph.nodes:
            if node.op == "placeholder":
                env[node] = _Jet(X, E.reshape((m,) + shape), torch.zeros_like(X), True)
            elif node.op == "output":
                result = torch.fx.node.map_arg(node.args[0], env.__getitem__)
            else:
                env[node] = _run_node(node, modules, env)
        if not isinstance(result, _Jet) or result.v.ndim != 2:
            raise _Unsupported("the output is not a (samples, classes) tensor")
        v, T, lap = result.v, result.per_sample_T(), result.lap
        s = torch.softmax(v, dim=-1)
        M = torch.einsum("bmk,bml->bkl", T, T)
        Ms = (M @ s.unsqueeze(-1)).squeeze(-1)
        sMs = (s * Ms).sum(dim=1, keepdim=True)
        diag = torch.diagonal(M, dim1=1, dim2=2)
        part = s * (lap - (s * lap).sum(dim=1, keepdim=True))
        part = part + s * (diag - 2 * Ms + 2 * sMs - (s * diag).sum(dim=1, keepdim=True))
        total = part if total is None else total + part
    return total


def _exact_smooth(module, X, batch_size, returns_probabilities):
    if not returns_probabilities:
        try:
            with torch.no_grad():
                return _forward_laplacian(module, X, batch_size)
        except _Unsupported:
            pass
    probs = _probabilities(module, returns_probabilities)
    B = X.shape[0]
    shape = X.shape[1:]
    n = int(np.prod(shape))
    chunk = max(1, batch_size // B)
    total = None
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        E = torch.zeros((stop - start, n), dtype=X.dtype, device=X.device)
        E[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
        part = _second_directional(probs, X, E.reshape((-1,) + shape), False).sum(dim=1)
        total = part if total is None else total + part
    return total


def _exact_piecewise_linear(module, X):
    """``LO_c = s_c [M_cc − 2 (M s)_c + 2 sᵀ M s − Σ_j s_j M_jj]``, ``M = J Jᵀ``."""

    def logits(x):
        return module(x.unsqueeze(0))[0]

    J = torch.func.vmap(torch.func.jacrev(logits))(X)  # (B, K, *shape)
    J = J.reshape(J.shape[0], J.shape[1], -1)
    M = J @ J.transpose(1, 2)
    with torch.no_grad():
        s = torch.softmax(module(X), dim=-1)
    Ms = (M @ s.unsqueeze(-1)).squeeze(-1)
    sMs = (s * Ms).sum(dim=1, keepdim=True)
    diag = torch.diagonal(M, dim1=1, dim2=2)
    return s * (diag - 2 * Ms + 2 * sMs - (s * diag).sum(dim=1, keepdim=True))


def _hutchinson(module, X, n_probes, seeds, batch_size, returns_probabilities):
    probs = _probabilities(module, returns_probabilities)
    B = X.shape[0]
    shape = X.shape[1:]
    chunk = max(1, batch_size // B)
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    total = None
    for start in range(0, n_probes, chunk):
        m = min(chunk, n_probes - start)
        V = torch.stack(
            [2.0 * torch.randint(0, 2, (m,) + shape, generator=g) - 1.0 for g in generators]
        ).to(device=X.device, dtype=X.dtype)
        part = _second_directional(probs, X, V, True).sum(dim=1)
        total = part if total is None else total + part
    return total / n_probes


@validate_params(
    {
        "model": [object],
        "X": ["array-like", torch.Tensor],
        "target": [StrOptions({"predicted", "all"}), Interval(Integral, 0, None, closed="left")],
        "method": [StrOptions({"exact", "hutchinson"})],
        "n_probes": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "device": [str, torch.device, None],
        "random_state": ["random_state"],
        "input_shape": [tuple, None],
        "piecewise_linear": [StrOptions({"auto"}), "boolean"],
    },
    prefer_skip_nested_validation=True,
)
def laplacian(
    model,
    X,
    *,
    target="predicted",
    method="exact",
    n_probes=64,
    batch_size=None,
    device=None,
    random_state=None,
    input_shape=None,
    piecewise_linear="auto",
):
    """Laplacian (trace of the input Hessian) of a class probability, per sample.

    Parameters
    ----------
    model : fitted skorch NeuralNet or torch.nn.Module
        A plain module must return logits. A skorch net's module returns logits with
        ``criterion=CrossEntropyLoss`` and probabilities with skorch's default
        ``NLLLoss``; both are handled. Evaluated in eval mode.
    X : array-like or tensor of shape (n_samples, ...)
        Inputs as the module takes them (as skorch passes them); ``input_shape`` reshapes
        each row first, e.g. ``(1, 28, 28)`` for flattened images.
    target : "predicted", "all" or int, default="predicted"
        The predicted class of each sample, a given class, or every class (the columns
        then sum to 0, as the probabilities sum to 1).
    method : {"exact", "hutchinson"}, default="exact"
        "exact": all n second derivatives (forward-over-forward, or the Jacobian route for
        piecewise-linear modules); "hutchinson": the unbiased estimate from ``n_probes``
        Rademacher probes per sample.
    n_probes : int, default=64
    batch_size : int, default=None
        Forward evaluations (sample × direction) computed at once: bounds the memory
        (1024 when None).
    device : str or torch.device, default=None
        Where to compute; None: the model's device ("auto": CUDA when present).
    random_state : int, RandomState instance or None, default=None
        The probes of "hutchinson" (one stream per sample: independent of ``batch_size``).
    input_shape : tuple, default=None
    piecewise_linear : "auto" or bool, default="auto"
        Use the Jacobian route ("auto": when a torch.fx trace finds only piecewise-linear
        operations). For such nets LO is exact almost everywhere but does not predict the
        mean change over a finite radius: the kinks dominate it.

    Returns
    -------
    lo : ndarray of shape (n_samples,), or (n_samples, n_classes) with target="all"

    Examples
    --------
    >>> import torch
    >>> from skrob.torch import laplacian
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    >>> lo = laplacian(net, torch.randn(5, 4), target="all")
    >>> lo.shape, bool(abs(lo.sum(axis=1)).max() < 1e-5)
    ((5, 3), True)
    """
    module, dev, returns_probabilities = resolve_module(model, device)
    dtype = next(module.parameters()).dtype
    X = as_tensor(X, dev, input_shape, dtype)
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    if piecewise_linear == "auto":
        piecewise_linear = method == "exact" and is_piecewise_linear(module)
    if piecewise_linear and returns_probabilities:
        raise ValueError("The Jacobian route needs a module that returns logits.")
    if method == "hutchinson":
        entropy = check_random_state(random_state).randint(np.iinfo(np.int32).max)
        seeds = np.random.SeedSequence(entropy).generate_state(X.shape[0])
    # Samples per block: room for 64 directions (basis vectors or probes) each, so that
    # work shared by the directions (the leading affine layers) is amortised.
    rows = max(1, min(X.shape[0], batch_size // 64))
    out = []
    with eval_mode(module):
        for start in range(0, X.shape[0], rows):
            Xb = X[start : start + rows]
            if method == "hutchinson":
                lo = _hutchinson(
                    module,
                    Xb,
                    n_probes,
                    seeds[start : start + rows],
                    batch_size,
                    returns_probabilities,
                )
            elif piecewise_linear:
                lo = _exact_piecewise_linear(module, Xb)
            else:
                lo = _exact_smooth(module, Xb, batch_size, returns_probabilities)
            out.append(lo.detach())
        lo = torch.cat(out)
        if target == "all":
            return lo.cpu().double().numpy()
        with torch.no_grad():
            K = lo.shape[1]
            if target == "predicted":
                classes = torch.cat(
                    [module(X[i : i + rows]).argmax(dim=1) for i in range(0, X.shape[0], rows)]
                )
            else:
                if target >= K:
                    raise ValueError(f"target={target} is not a class index below {K}.")
                classes = torch.full((X.shape[0],), target, device=lo.device)
    return lo[torch.arange(X.shape[0]), classes].cpu().double().numpy()


def expected_probability_change(model, X, radius, **kwargs):
    """``radius² / (2n) · LO``: the mean change of the probability under perturbations of
    length ``radius`` (paper 003, Theorem 1), n the number of input values.

    ``kwargs`` go to :func:`laplacian`.
    """
    if not np.isscalar(radius) or radius <= 0:
        raise ValueError(f"radius must be a positive number, got {radius!r}.")
    lo = laplacian(model, X, **kwargs)
    shape = kwargs.get("input_shape")
    n = int(np.prod(shape)) if shape is not None else int(np.prod(np.shape(X)[1:]))
    return radius**2 / (2 * n) * lo


class LaplacianScorer(BaseEstimator):
    """``-mean |LO|`` over X as a scorer: a smaller |LO| is a more robust model (paper 003).

    Parameters are those of :func:`laplacian`.

    Examples
    --------
    >>> import torch
    >>> from skrob.torch import LaplacianScorer
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    >>> LaplacianScorer()(net, torch.randn(5, 4)) <= 0
    True
    """

    def __init__(
        self,
        *,
        target="predicted",
        method="exact",
        n_probes=64,
        batch_size=None,
        device=None,
        random_state=None,
        input_shape=None,
    ):
        self.target = target
        self.method = method
        self.n_probes = n_probes
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.input_shape = input_shape

    def __call__(self, estimator, X, y=None, **kwargs):
        """``-mean |LO|`` of ``estimator`` over ``X`` (``y`` is not used)."""
        lo = laplacian(estimator, X, **self.get_params())
        return -float(np.mean(np.abs(lo)))
