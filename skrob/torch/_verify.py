"""Exact minimal distortion and certified lower bounds for piecewise-linear ReLU networks.

A network that is a chain of affine maps (Linear, convolutions, average pooling,
batch-norm in eval mode, flatten/reshape, dropout in eval, a Pipeline's scalers) and ReLUs
is turned into float64 matrices ``[(W_0, b_0), relu, (W_1, b_1), relu, ..., (W_L, b_L)]``
on the flattened input (:func:`relu_layers`). On it:

- :func:`interval_bounds` (IBP) and :func:`crown_bounds` (CROWN, Zhang et al. 2018: a
  backward pass of linear relaxations of the ReLUs, intermediate layers bounded the same
  way) bound the pre-activations and the class margins over a perturbation set, an L∞ or
  L2 ball intersected with the box; :func:`bisect_radius` bisects on the radius;
- :func:`milp_minima` solves the mixed-integer program of Tjeng et al. (2019): one
  binary per unstable ReLU, big-M constants from the bounds over the ball whose radius is
  the best attack's distortion (the minimum lies inside it), one program per other class,
  by HiGHS (``scipy.optimize.milp``) with a time limit that leaves a bracket.
"""

import time

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from skrob import _milp
from skrob.torch._ops import AFFINE_MODULES

AVERAGE_POOLS = (
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
)

SUPPORTED = (
    "chains of Linear, Conv, AvgPool, BatchNorm (eval), Flatten/Unflatten, Dropout (eval), "
    "Identity, a Pipeline's scalers, and ReLU (a final Softmax/LogSoftmax is ignored)"
)


def _chain(module):
    """The module's operations in order, as callables, from a ``torch.fx`` trace."""
    if not list(module.children()):  # one layer (nn.Linear itself): no trace needed
        return [_module_op(module)]
    from skrob.torch._pipeline import Affine

    class Tracer(torch.fx.Tracer):  # a Pipeline's steps are one layer each
        def is_leaf_module(self, m, qualname):
            return (
                isinstance(m, Affine)
                or hasattr(m, "step_name")
                or super().is_leaf_module(m, qualname)
            )

    try:
        gm = torch.fx.GraphModule(module, Tracer().trace(module))
    except Exception as exc:
        raise ValueError(f"The network could not be traced by torch.fx ({exc}).") from None
    modules = dict(gm.named_modules())
    ops, prev = [], None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            prev = node
            continue
        if node.op == "output":
            if node.args[0] is not prev:
                raise ValueError(f"Exact and certified bounds need {SUPPORTED}: not a chain.")
            break
        inputs = [a for a in (*node.args, *node.kwargs.values()) if isinstance(a, torch.fx.Node)]
        if len(inputs) != 1 or inputs[0] is not prev:
            raise ValueError(
                f"Exact and certified bounds need {SUPPORTED}; {node.name} is not a link of "
                "one chain (skip connections and branches are not supported)."
            )
        ops.append(_op(node, modules))
        prev = node
    return ops


_RELU_FUNCTIONS = {torch.relu, nn.functional.relu}
_SOFTMAX = (nn.Softmax, nn.LogSoftmax)


def _op(node, modules):
    """``(kind, callable)`` with kind "relu", "affine" or "softmax"."""
    if node.op == "call_module":
        return _module_op(modules[node.target])
    return _function_op(node)


def _module_op(m):
    """``(kind, module)`` of one layer."""
    from skrob.torch._pipeline import Affine

    if isinstance(m, nn.ReLU):
        return "relu", m
    if isinstance(m, _SOFTMAX):
        return "softmax", m
    if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is None:
        raise ValueError(
            f"{type(m).__name__}(track_running_stats=False) normalises by each batch's own "
            "statistics even in eval mode, so it is not an affine map of one input; exact "
            "and certified bounds need batch-norm with running statistics."
        )
    if isinstance(m, AFFINE_MODULES + (Affine,)):
        return "affine", m
    if hasattr(m, "step_name"):  # a non-affine Pipeline step (skrob.torch._pipeline)
        raise ValueError(
            f"Exact and certified bounds need a chain of affine maps and ReLUs; the "
            f"Pipeline step {m.step_name!r} is {m.description}, which is not piecewise "
            f"linear in this sense. Supported: {SUPPORTED}. Transform X before the "
            "Pipeline and pass its last step, or use a minimal_distortion attack method."
        )
    raise ValueError(f"Exact and certified bounds need {SUPPORTED}; got {type(m).__name__}.")


def _function_op(node):
    args = node.args[1:]
    kwargs = dict(node.kwargs)
    if node.op == "call_function":
        if node.target in _RELU_FUNCTIONS:
            return "relu", torch.relu
        if node.target in (torch.flatten, torch.reshape):
            return "affine", lambda x, f=node.target: f(x, *args, **kwargs)
        if node.target in (
            torch.softmax,
            torch.log_softmax,
            nn.functional.softmax,
            nn.functional.log_softmax,
        ):
            return "softmax", None
    if node.op == "call_method":
        if node.target == "relu":
            return "relu", torch.relu
        if node.target in ("view", "reshape", "flatten", "contiguous"):
            return "affine", lambda x, name=node.target: getattr(x, name)(*args, **kwargs)
        if node.target in ("softmax", "log_softmax"):
            return "softmax", None
    raise ValueError(f"Exact and certified bounds need {SUPPORTED}; got {node.target}.")


def relu_layers(module, input_shape, operations=False):
    """``[(W, b), ...]`` float64 numpy affine maps with a ReLU between consecutive ones.

    The parameters are read exactly: the affine maps are probed on a float64 copy of the
    module (its float32 weights are exact in float64), never by running the float32 net,
    whose rounding would blur them. ``operations=True``: also return, per map, the torch
    operations it composes, one at a time (:func:`_operation`), which the network rounds
    one after another: ``(layers, operations)``.
    """
    import copy

    module = copy.deepcopy(module).to(device="cpu", dtype=torch.float64)
    ops = _chain(module)
    if ops and ops[-1][0] == "softmax":
        ops = ops[:-1]  # monotone in each logit's lead: the argmax and the flip are the same
    if any(kind == "softmax" for kind, _ in ops):
        raise ValueError("A Softmax inside the network (not last) is not piecewise linear.")
    dtype = torch.float64
    segments = [[]]  # the affine operations between consecutive ReLUs
    for kind, f in ops:
        if kind == "affine":
            segments[-1].append(f)
        else:
            segments.append([])
    layers, per_layer, shape = [], [], tuple(input_shape)
    with torch.no_grad():
        for seg in segments:  # an empty segment is the identity
            if operations:
                inner, op_shape = [], shape
                for f in seg:
                    W, b, out_shape = _probe([f], op_shape, dtype)
                    inner.append(_operation(f, W, b, out_shape))
                    op_shape = out_shape
                per_layer.append(inner)
            W, b, shape = _probe(seg, shape, dtype)
            layers.append((W, b))
    return (layers, per_layer) if operations else layers


# a batch-norm output: its scale and shift computed from four buffers, then x·a + c
_BATCH_NORM_OPERATIONS = 8


def _operation(f, W, b, out_shape):
    """One affine operation as :func:`rounding_bound` bounds its rounding:
    ``(W, b, bias magnitude, terms per output, reduced)``; W sparse.

    ``terms`` is how many roundings an output can take: its nonzero products and its bias
    (0 for an operation that only moves or pads values: exact); ``reduced``: its products
    are those TF32 or bfloat16 may round (matrix products and convolutions). A
    batch-norm's shift ``β − μ·a`` is computed by the network from ``β`` and ``μ·a``: its
    rounding follows their magnitudes, not the (possibly cancelled) difference.
    """
    W = sp.csr_matrix(W)
    nonzeros = np.diff(W.indptr)
    if isinstance(f, nn.modules.batchnorm._BatchNorm):  # computed, whatever its values
        scale = 1.0 / torch.sqrt(f.running_var + f.eps)
        if f.weight is not None:
            scale = scale * f.weight
        shift = torch.abs(f.running_mean * scale)
        if f.bias is not None:
            shift = shift + torch.abs(f.bias)
        per_value = int(np.prod(out_shape[1:]))
        magnitude = np.repeat(shift.double().numpy(), per_value)
        return W, b, magnitude, np.full(len(b), float(_BATCH_NORM_OPERATIONS)), False
    if np.all(nonzeros <= 1) and np.all(W.data == 1.0) and not np.any(b):
        # flatten, reshape, identity, dropout (eval), zero padding: values only move
        return W, b, np.zeros_like(b), np.zeros(len(b)), False
    return W, b, np.abs(b), nonzeros + 1.0, not isinstance(f, AVERAGE_POOLS)


def _probe(fs, shape, dtype):
    """The affine map of the callables ``fs`` on inputs of ``shape``: (W, b, out shape)."""
    n = int(np.prod(shape))
    E = torch.cat([torch.zeros((1, n), dtype=dtype), torch.eye(n, dtype=dtype)]).reshape(
        (n + 1, *shape)
    )
    out = E
    for f in fs:
        out = f(out)
    out_shape = tuple(out.shape[1:])
    flat = out.reshape(n + 1, -1).double().numpy()
    b = flat[0]
    W = (flat[1:] - b).T
    return W, b, out_shape


# --------------------------------------------------------------------------- bounds
def _input_box(x, eps, lo, hi, norm):
    """Elementwise bounds of the perturbation set (the ball's box, cut by the input box)."""
    e = eps[:, None]
    return np.maximum(x - e, lo), np.minimum(x + e, hi)


def interval_bounds(layers, x, eps, lo, hi, norm):
    """IBP: per ReLU layer the (lower, upper) pre-activation bounds, and the logits'."""
    low, u = _input_box(x, eps, lo, hi, norm)
    out = []
    for k, (W, b) in enumerate(layers):
        mid, rad = (low + u) / 2, (u - low) / 2
        c = mid @ W.T + b
        r = rad @ np.abs(W).T
        zl, zu = c - r, c + r
        if norm == 2 and k == 0:  # the L2 ball itself: x·W ± ε‖W_i‖, also sound
            c2 = x @ W.T + b
            r2 = eps[:, None] * np.linalg.norm(W, axis=1)[None, :]
            zl, zu = np.maximum(zl, c2 - r2), np.minimum(zu, c2 + r2)
        out.append((zl, zu))
        low, u = np.maximum(zl, 0), np.maximum(zu, 0)
    return out


def _linear_min(A, c, x, eps, lo, hi, norm):
    """Lower bound of ``A·x' + c`` over the ball ∩ box: (n, m) from A (n, m, d), c (n, m).

    The better of two sound bounds: over the ball's L∞ box cut by the input box (exact for
    L∞), and for L2 over the ball alone (``A·x − ε‖A‖₂``).
    """
    low, u = _input_box(x, eps, lo, hi, norm)
    box = (
        c
        + np.einsum("nmd,nd->nm", np.maximum(A, 0), low)
        + np.einsum("nmd,nd->nm", np.minimum(A, 0), u)
    )
    if norm == np.inf:
        return box
    ball = c + np.einsum("nmd,nd->nm", A, x) - eps[:, None] * np.linalg.norm(A, axis=2)
    return np.maximum(box, ball)


def crown_bounds(layers, x, eps, lo, hi, norm, C=None):
    """CROWN lower bounds of ``C·logits`` over the ball ∩ box, per sample: (n, m).

    Every intermediate layer is bounded by CROWN too; the lower relaxation of an unstable
    ReLU takes slope 1 when ``u >= -low`` and 0 otherwise (CROWN's adaptive choice).
    ``C``: (n, m, n_logits) specifications (default: the identity).
    """
    n = len(x)
    pre = relu_bounds(layers, x, eps, lo, hi, norm)
    if C is None:
        m = layers[-1][0].shape[0]
        C = np.broadcast_to(np.eye(m), (n, m, m))
    return _backward(layers, pre, C, x, eps, lo, hi, norm)


def relu_bounds(layers, x, eps, lo, hi, norm):
    """(lower, upper) of each ReLU layer's input over the ball ∩ box: CROWN layer by layer
    (each bounded by its own backward pass over the earlier ones), cut by IBP."""
    n = len(x)
    pre = []
    for k in range(len(layers) - 1):
        Wk = layers[k][0]
        eye = np.broadcast_to(np.eye(Wk.shape[0]), (n, Wk.shape[0], Wk.shape[0]))
        lower = _backward(layers[: k + 1], pre, eye, x, eps, lo, hi, norm)
        upper = -_backward(layers[: k + 1], pre, -eye, x, eps, lo, hi, norm)
        ibp = interval_bounds(layers[: k + 1], x, eps, lo, hi, norm)[-1]
        pre.append((np.maximum(lower, ibp[0]), np.minimum(upper, ibp[1])))
    return pre


def _backward(layers, pre, C, x, eps, lo, hi, norm):
    """The lower bound of ``C · f(x')`` where f is ``layers`` with the ReLU bounds ``pre``."""
    W, b = layers[-1]
    A = C @ W  # (n, m, width)
    c = C @ b
    for k in range(len(layers) - 2, -1, -1):
        low, u = pre[k]
        unstable = (low < 0) & (u > 0)
        active = low >= 0
        with np.errstate(divide="ignore", invalid="ignore"):
            up_slope = np.where(unstable, u / (u - low), active.astype(float))
            up_icpt = np.where(unstable, -u * low / (u - low), 0.0)
        low_slope = np.where(unstable, (u >= -low).astype(float), active.astype(float))
        # A⁺ takes the lower line, A⁻ the upper one
        Ap, An = np.maximum(A, 0), np.minimum(A, 0)
        c = c + np.einsum("nmw,nw->nm", An, up_icpt)
        A = Ap * low_slope[:, None, :] + An * up_slope[:, None, :]
        Wk, bk = layers[k]
        c = c + A @ bk
        A = A @ Wk
    return _linear_min(A, c, x, eps, lo, hi, norm)


def _spec(y, m):
    """``C`` (n, m-1, m): the rows ``e_y − e_j`` for every class j other than y."""
    n = len(y)
    others = np.array([[j for j in range(m) if j != t] for t in y]).reshape(n, m - 1)
    C = np.zeros((n, m - 1, m))
    C[np.arange(n)[:, None], np.arange(m - 1)[None, :], y[:, None]] = 1.0
    C[np.arange(n)[:, None], np.arange(m - 1)[None, :], others] -= 1.0
    return C, others


def _ibp_margins(layers, x, eps, lo, hi, norm, C):
    """Standard IBP (Gowal et al., 2018) lower bounds of ``C · logits``: intervals through
    the hidden layers, the specification folded into the last layer (its rows
    ``W_y − W_j`` meet the interval once, not the two logits separately)."""
    if len(layers) > 1:
        zl, zu = interval_bounds(layers[:-1], x, eps, lo, hi, norm)[-1]
        low, u = np.maximum(zl, 0.0), np.maximum(zu, 0.0)
    else:
        low, u = _input_box(x, eps, lo, hi, norm)
    W, b = layers[-1]
    A = C @ W  # (n, m-1, width)
    c = C @ b
    mid, rad = (low + u) / 2, (u - low) / 2
    out = c + np.einsum("nmw,nw->nm", A, mid) - np.einsum("nmw,nw->nm", np.abs(A), rad)
    if len(layers) == 1 and norm == 2:  # the L2 ball itself on the input
        ball = c + np.einsum("nmd,nd->nm", A, x) - eps[:, None] * np.linalg.norm(A, axis=2)
        out = np.maximum(out, ball)
    return out


def rounding_bound(layers, x, eps, lo, hi, norm, unit, product_unit=0.0, operations=None):
    """Upper bound on how far each logit of the network run in a floating-point format of
    unit roundoff ``unit`` (2**-24 for float32) can be from the exact one, over the ball:
    (n, m).

    The input is rounded once (``unit·|x'|``). The network rounds every torch operation
    apart (``operations``, from :func:`relu_layers`; None: each of ``layers`` is one
    operation), so each is bounded apart: a map composed of several can cancel in its
    coefficients what they round (two Linear layers without a ReLU between, a bias that
    a batch-norm's mean takes off). Each output of an
    operation sums ``k`` products and its bias (:func:`_operation`); it adds at most
    ``((1 + v)² (1 + γ_k) − 1) |W| |h̃| + γ_k |b|`` with ``γ_k = 2 k u / (1 − k u)`` (the
    classical bound of any summation order, doubled for blocked and vectorised kernels;
    infinite where ``k u ≥ 1``) and ``v = product_unit`` for matrix products and
    convolutions, the relative error of operands rounded to a narrower format before
    their products (TF32, bfloat16: :func:`skrob._device.reduced_float32_unit`). The error
    of the operation's input passes through ``|W|`` (ReLU is 1-Lipschitz), and ``|h̃|``,
    the computed input, is bounded by interval bounds of ``|h|`` over the ball plus that
    error. ``unit=0`` and ``product_unit=0``: no rounding (zeros).
    """
    n = len(x)
    if unit == 0 and product_unit == 0:
        return np.zeros((n, layers[-1][0].shape[0]))
    if operations is None:
        operations = [
            [(sp.csr_matrix(W), b, np.abs(b), np.full(len(b), W.shape[1] + 1.0), True)]
            for W, b in layers
        ]
    low, u = _input_box(x, eps, lo, hi, norm)
    err = unit * np.maximum(np.abs(low), np.abs(u))
    pre = interval_bounds(layers, x, eps, lo, hi, norm)
    for k, ops in enumerate(operations):
        for W, b, magnitude, terms, reduced in ops:
            absW = abs(W)
            with np.errstate(divide="ignore"):
                gamma = np.where(terms * unit < 1, 2 * terms * unit / (1 - terms * unit), np.inf)
            v = product_unit if reduced else 0.0
            factor = (1 + v) ** 2 * (1 + gamma) - 1
            mag = np.maximum(np.abs(low), np.abs(u))
            with np.errstate(invalid="ignore"):  # inf * 0: an infinite bound stays one
                through = (absW @ err.T).T
                rounded = factor * (absW @ (mag + err).T).T + gamma * magnitude
                rounded = np.where(terms > 0, rounded, 0.0)  # exact moves
                err = through + rounded
            err = np.where(np.isnan(err), np.inf, err)
            mid, rad = (low + u) / 2, (u - low) / 2
            centre, radius = (W @ mid.T).T + b, (absW @ rad.T).T
            low, u = centre - radius, centre + radius  # this operation's output, IBP
        zl, zu = pre[k]  # the composed map's bounds are tighter
        low, u = np.maximum(zl, 0.0), np.maximum(zu, 0.0)  # |relu(z)|
    return err


def margins_lower(layers, x, y, eps, lo, hi, norm, method, rounding=None):
    """Lower bound of ``min_{j≠y} z_y − z_j`` over the ball ∩ box: (n,).

    ``rounding``: the network's rounding as it predicts, the keyword arguments of
    :func:`rounding_bound` (``unit``, the unit roundoff of its format, 2**-24 for float32;
    ``product_unit``, that of its products' operands where they are narrower;
    ``operations``): the bound is lowered by :func:`rounding_bound`'s margin, so that a
    positive bound holds for the network as it computes, not only in exact arithmetic.
    None: exact arithmetic.
    """
    m = layers[-1][0].shape[0]
    C, others = _spec(y, m)
    if method == "ibp":
        margins = _ibp_margins(layers, x, eps, lo, hi, norm, C)
    else:
        margins = crown_bounds(layers, x, eps, lo, hi, norm, C)
    if rounding:
        err = rounding_bound(layers, x, eps, lo, hi, norm, **rounding)
        n = len(y)
        margins = margins - (err[np.arange(n), y][:, None] + np.take_along_axis(err, others, 1))
    return margins.min(axis=1)


def bisect_radius(layers, x, y, lo, hi, norm, method, upper, steps=30, rounding=None):
    """Per sample the largest radius (bisected) whose margin lower bound stays positive."""
    n = len(x)
    r_lo, r_hi = np.zeros(n), upper.astype(float).copy()
    ok0 = margins_lower(layers, x, y, np.zeros(n), lo, hi, norm, method, rounding) > 0
    for _ in range(steps):
        mid = (r_lo + r_hi) / 2
        safe = margins_lower(layers, x, y, mid, lo, hi, norm, method, rounding) > 0
        r_lo = np.where(safe, mid, r_lo)
        r_hi = np.where(safe, r_hi, mid)
    return np.where(ok0, r_lo, 0.0)


# --------------------------------------------------------------------------- exact
def milp_minima(layers, x, y, lo, hi, norm, upper, time_limit, bar=None, reach=None):
    """Exact minimal L∞ or L1 distortion by MILP: (lower, upper, points) per sample.

    ``upper``: a known adversarial distortion per sample (the best attack's, inf where
    none); the minimum lies in that ball, so the ReLU bounds over it give valid big-M
    constants. ``reach``: the L∞ radius searched where ``upper`` is inf (needed where the
    box ``[lo, hi]`` is open). ``bar``: a progress bar advanced by one per sample.
    """
    n, d = x.shape
    lower_out, upper_out = np.zeros(n), upper.astype(float).copy()
    points = np.full((n, d), np.nan)
    radius = upper * (1 + 1e-6)  # the minimum is within the attack's distance
    if reach is not None:
        radius = np.where(np.isfinite(radius), radius, reach)
    # the ReLU bounds over the L∞ box of radius `upper` (it contains the L1 ball too)
    pre = relu_bounds(layers, x, radius, lo, hi, np.inf)
    for i in range(n):
        if bar is not None and i:
            bar.update(1)
        deadline = time.monotonic() + time_limit
        others = [j for j in range(layers[-1][0].shape[0]) if j != y[i]]
        found = {}

        def run(cap, presolve, i=i, others=others, deadline=deadline, found=found):
            """One program per other class over the points closer than cap (the first
            pass a hair above the attack's distance, so its point is found again)."""
            best, lows = cap, []
            for j in others:
                args = (layers, pre, i, x[i], y[i], j, lo, hi, norm, radius[i])
                limit = best * (1 + 1e-9) if presolve else best
                low, val, pt = _solve_one(*args, limit, deadline, presolve=presolve)
                lows.append(low)
                if pt is not None and val < best:
                    best, found["point"] = val, pt
            return best, min(lows, default=best)

        upper_out[i], lower_out[i] = _milp.confirmed_minimum(run, upper_out[i])
        if "point" in found:
            points[i] = found["point"]
    return lower_out, upper_out, points


def _solve_one(layers, pre, i, x, y, j, lo, hi, norm, radius, cap, deadline, presolve=True):
    """One class's program over the points closer than ``cap``: (lower bound, value,
    point); ``(inf, inf, None)`` when it is proven empty, ``(bound, inf, None)`` when the
    solver stopped (time limit, failure) without a point."""
    d = x.size
    # variables: x' (d) | per ReLU layer: z (w), h (w), a (w binaries) | t or (p, q)
    var_lo, var_hi, integrality = [], [], []

    def add_vars(lo_, hi_, integer=False):
        start = sum(len(v) for v in var_lo)
        var_lo.append(np.asarray(lo_, float))
        var_hi.append(np.asarray(hi_, float))
        integrality.append(np.full(len(lo_), 1 if integer else 0))
        return start

    xl = np.maximum(x - radius, lo)
    xh = np.minimum(x + radius, hi)
    xs = add_vars(xl, xh)
    prev = xs
    rows = []  # (dict col -> coef, lb, ub)
    relu_vars = []
    for k in range(len(layers) - 1):
        W, b = layers[k]
        low, u = pre[k][0][i], pre[k][1][i]
        w = W.shape[0]
        zs = add_vars(low, u)
        hs = add_vars(np.maximum(low, 0), np.maximum(u, 0))
        As = add_vars(np.zeros(w), np.ones(w), integer=True)
        for r in range(w):
            # z_r = W_r h_prev + b_r
            cols = {prev + c: W[r, c] for c in np.flatnonzero(W[r])}
            cols[zs + r] = cols.get(zs + r, 0.0) - 1.0
            rows.append((cols, -b[r], -b[r]))
            if low[r] >= 0:  # active: h = z
                rows.append(({hs + r: 1.0, zs + r: -1.0}, 0.0, 0.0))
                var_hi[-1][r] = 0.0  # the binary is unused: fix it at 0
            elif u[r] <= 0:  # inactive: h = 0 (bounds already 0)
                var_hi[-1][r] = 0.0
            else:  # h >= z, h <= z - low (1 - a), h <= u a
                rows.append(({hs + r: 1.0, zs + r: -1.0}, 0.0, np.inf))
                rows.append(({hs + r: 1.0, zs + r: -1.0, As + r: -low[r]}, -np.inf, -low[r]))
                rows.append(({hs + r: 1.0, As + r: -u[r]}, -np.inf, 0.0))
        relu_vars.append((zs, hs, As))
        prev = hs
    W, b = layers[-1]
    # class j at least as high as y: (W_j − W_y)·h + b_j − b_y >= 0
    diff = W[j] - W[y]
    cols = {prev + c: diff[c] for c in np.flatnonzero(diff)}
    rows.append((cols, b[y] - b[j], np.inf))
    # objective
    if norm == np.inf:
        ts = add_vars([0.0], [radius])
        for c in range(d):
            rows.append(({xs + c: 1.0, ts: -1.0}, -np.inf, x[c]))
            rows.append(({xs + c: -1.0, ts: -1.0}, -np.inf, -x[c]))
        n_var = sum(len(v) for v in var_lo)
        cost = np.zeros(n_var)
        cost[ts] = 1.0
    else:  # L1: x' − x = p − q
        ps = add_vars(np.zeros(d), np.full(d, radius))
        qs = add_vars(np.zeros(d), np.full(d, radius))
        for c in range(d):
            rows.append(({xs + c: 1.0, ps + c: -1.0, qs + c: 1.0}, x[c], x[c]))
        n_var = sum(len(v) for v in var_lo)
        cost = np.zeros(n_var)
        cost[ps : ps + d] = 1.0
        cost[qs : qs + d] = 1.0
    rows.append(({k: v for k, v in enumerate(cost) if v}, -np.inf, cap))
    r_idx, c_idx, vals = [], [], []
    for r, (cols, _, _) in enumerate(rows):
        for c, v in cols.items():
            r_idx.append(r)
            c_idx.append(c)
            vals.append(v)
    A = sp.csr_array((vals, (r_idx, c_idx)), shape=(len(rows), n_var))
    out = _milp.solve(
        cost,
        np.concatenate(integrality),
        np.concatenate(var_lo),
        np.concatenate(var_hi),
        A,
        [r[1] for r in rows],
        [r[2] for r in rows],
        deadline,
        presolve,
    )
    if out.status == "infeasible":
        return np.inf, np.inf, None
    bound = max(out.bound, 0.0) if out.status != "failed" else 0.0
    if out.x is None:
        return bound, np.inf, None
    pt = out.x[xs : xs + d]
    val = float(np.abs(pt - x).max() if norm == np.inf else np.abs(pt - x).sum())
    return (val if out.status == "optimal" else min(bound, val)), val, pt
