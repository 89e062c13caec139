"""Minimal adversarial distortion of a classifier (paper 002): L∞ and L2, batched, in torch.

For every correctly classified sample, the norm of the smallest perturbation found that
changes the prediction (inside the box ``clip``); NaN for samples misclassified to begin
with and for samples no attack flipped (recorded in ``success``). Every attack's points are
pulled onto the boundary along the segment from x (false position on the margin), and the
final point is checked: inside the box, and really predicted differently; its norm is
computed in float64.

The attacks (all untargeted, vectorised over a batch, per-sample state) are
``skrob.torch._attacks.ATTACKS``: "fab", "deepfool", "ifgsm" (L∞, paper 002's I-FGSM
as written: the cross-entropy, 10 steps of ε/10, ε bisected per sample), "bim" (L∞, a
stronger iterative FGSM: the margin loss, steps of 2.5ε/T, ε bisected), "ddn" and "cw"
(L2); "auto" runs FAB, 15 steps (L∞), or FAB, 7 steps, then DDN, 30 steps, keeping each
sample's minimum (L2). "exact" (L∞, L1) is the minimum itself for ReLU networks.
"""

from numbers import Integral, Real

import numpy as np
import torch

from skrob._compat import Interval, StrOptions, validate_params
from skrob._progress import progress_bar
from skrob._validation import check_box, check_norm, warn_user
from skrob.distortion import common_correct_mask  # noqa: F401  (re-exported here)
from skrob.distortion._scorers import STATISTICS, DistortionScorer
from skrob.torch._attacks import (
    ATTACKS,
    AUTO,
    NORMS,
    logits,
    lp_norm,
    margin_loss,
    run_attack,
    shrink,
)
from skrob.torch._model import (
    as_tensor,
    check_outputs,
    class_indices,
    eval_mode,
    parameter_dtype,
    resolve_module,
)


@validate_params(
    {
        "model": [object],
        "X": ["array-like", "sparse matrix", torch.Tensor],
        "y": ["array-like", torch.Tensor],
        "norm": [StrOptions({"inf"}), Real],
        "method": [StrOptions({"auto", "exact", *ATTACKS})],
        "clip": [tuple, None],
        "tol": [Interval(Real, 0, 1, closed="right")],
        "time_limit": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device, None],
        "input_shape": [tuple, None],
        "return_adversarial": ["boolean"],
        "return_bounds": ["boolean"],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=True,
)
def minimal_distortion(
    model,
    X,
    y,
    *,
    norm=np.inf,
    method="auto",
    clip=None,
    tol=1e-3,
    time_limit=10.0,
    batch_size=256,
    device=None,
    input_shape=None,
    return_adversarial=False,
    return_bounds=False,
    verbose=0,
):
    """Norm of the smallest perturbation found that changes each correct prediction.

    Parameters
    ----------
    model : fitted skorch net or torch.nn.Module returning logits
    X : array-like or tensor of shape (n_samples, ...)
    y : array-like of shape (n_samples,)
        True labels (class indices of the module's outputs).
    norm : np.inf or 2 (or 1 with method="exact"), default=np.inf
    method : {"auto", "exact", "fab", "deepfool", "ifgsm", "bim", "ddn", "cw"}, default="auto"
        See the module docstring; "ifgsm" and "bim" are L∞ only, "ddn" and "cw" L2 only. "exact"
        (L∞ and L1, ReLU networks made of affine layers): the exact minimum by mixed-integer
        programming (:mod:`skrob.torch._verify`), started from "auto"'s result; its point
        lies on the decision boundary (a tie), so it is not required to flip the label.
    clip : (low, high) or None, default=None
        The box every adversarial point must stay in, in the units of X (e.g. (0, 1) for
        images in [0, 1]): each side None (open), a number, or one number per input value.
        None: no box, so that tabular or standardised data work as they are. The attacks
        then search within ``[min X − w, max X + w]``, ``w = max(max X − min X, max |X|)``
        (they need a finite region and a scale); exact programs and certificates need no
        box: they hold over the whole space.
    tol : float, default=1e-3
        Bisection tolerance of "bim" on ε, relative to the box's width.
    time_limit : float, default=10.0
        Seconds per sample for "exact"; where it strikes, the result is the best point
        found (an upper bound) and a warning counts those samples.
    batch_size : int, default=256
    device, input_shape : see :func:`skrob.torch.laplacian`.
    return_adversarial : bool, default=False
        Also return the adversarial points and the per-sample success mask,
        ``(distortion, X_adv, success)`` as :func:`skrob.decision_based_distortion`.
    return_bounds : bool, default=False
        With ``method="exact"``: return ``(lower, upper)``, equal where the minimum is
        proven and a bracket where the time limit struck (as :func:`skrob.exact_distortion`).
    verbose : int, default=0
        Show a progress bar over the samples when positive (one for the attacks, one for
        the exact programs of "exact").

    Returns
    -------
    distortion : ndarray of shape (n_samples,)
        NaN for samples misclassified to begin with; ``inf`` for samples no attack
        flipped inside the box (with ``method="exact"``: no point of another class in it).
    X_adv : ndarray, only with ``return_adversarial``
        The adversarial points (the samples themselves where there is none).
    success : ndarray of shape (n_samples,), bool, only with ``return_adversarial``
        Where a verified adversarial point was found (the finite distortions).

    References
    ----------
    How Training Data Affect the Accuracy and Robustness of Neural Networks for Image
    Classification. Anonymous authors, ICLR 2019 conference submission (paper 002),
    https://openreview.net/forum?id=HklKWhC5F7

    Examples
    --------
    >>> import torch
    >>> from skrob.torch import minimal_distortion
    >>> net = torch.nn.Linear(4, 3)
    >>> X = torch.rand(5, 4)
    >>> d = minimal_distortion(net, X, net(X).argmax(1), norm=2)
    >>> d.shape
    (5,)
    """
    if return_bounds and method != "exact":
        raise ValueError(
            f"return_bounds=True needs method='exact' (an attack gives no lower bound; "
            f"certified_radius does); got method={method!r}."
        )
    if return_bounds and return_adversarial:
        raise ValueError("return_bounds and return_adversarial cannot both be True.")
    distortion, X_adv, success, _, lower = _distortions(
        model, X, y, norm, method, clip, tol, batch_size, device, input_shape, time_limit, verbose
    )
    if return_bounds:
        return lower, distortion
    if return_adversarial:
        return distortion, X_adv, success
    return distortion


def _distortions(
    model,
    X,
    y,
    norm,
    method,
    clip,
    tol,
    batch_size,
    device,
    input_shape,
    time_limit=10.0,
    verbose=0,
):
    """:func:`minimal_distortion`'s work; also returns which samples were correct."""
    p = check_norm(norm, "minimal_distortion", (np.inf, 2, 1) if method == "exact" else (np.inf, 2))
    if method == "exact" and p == 2:
        raise ValueError(
            "method='exact' is L∞ and L1 (norm=np.inf or 1): an L2 minimum needs a "
            f"mixed-integer quadratic program, which scipy does not solve; got {norm!r}."
        )
    if method not in ("auto", "exact") and p not in NORMS[method]:
        name = "an L-inf" if NORMS[method] == (np.inf,) else "an L2"
        fix = "norm=np.inf" if NORMS[method] == (np.inf,) else "norm=2"
        raise ValueError(f"method={method!r} is {name} attack: use {fix}.")
    module, dev, returns_probabilities = resolve_module(model, device)
    X = as_tensor(X, dev, input_shape, parameter_dtype(module))
    box, search = _box(clip, X, "minimal_distortion")
    lo, hi = _box_tensors(*search, X)
    with eval_mode(module):
        n_classes = check_outputs(module, X)
    y = class_indices(y, len(X), n_classes, dev)
    f = logits(module, returns_probabilities)
    # "exact" starts from the attacks' best point (L1: from the L2 attacks, measured in L1)
    attack_p = 2 if p == 1 else p
    methods = AUTO[attack_p] if method in ("auto", "exact") else ((method, {}),)
    n = len(X)
    distortion = np.full(n, np.nan)
    X_adv = X.detach().clone()
    success = np.zeros(n, dtype=bool)
    correct_all = np.zeros(n, dtype=bool)
    bar = progress_bar(verbose, n, "minimal distortion", unit="sample")
    with eval_mode(module):
        for start in range(0, n, batch_size):
            x, yb = X[start : start + batch_size], y[start : start + batch_size]
            with torch.no_grad():
                z = f(x)
            correct = z.argmax(1) == yb
            correct_all[start : start + len(x)] = correct.cpu().numpy()
            if not correct.any():
                bar.update(len(x))
                continue
            xc, yc = x[correct], yb[correct]
            margin0 = margin_loss(z[correct], yc)
            best = torch.full((len(xc),), torch.inf, dtype=torch.float64, device=dev)
            best_x = xc.clone()
            for m, params in methods:
                bar.set_postfix_str(m)
                cand, hit = run_attack(m, f, xc, yc, attack_p, lo, hi, tol, **params)
                cand = shrink(f, xc, cand, yc, margin0, hit)
                d = lp_norm(cand - xc, p)
                better = hit & (d < best)
                best = torch.where(better, d, best)
                best_x[better] = cand[better]
            with torch.no_grad():
                flipped = f(best_x).argmax(1) != yc
                inside = ((best_x >= lo) & (best_x <= hi)).flatten(1).all(1)
                best = torch.where(flipped & inside, lp_norm(best_x - xc, p), torch.inf)
            rows = torch.arange(start, start + len(x), device=dev)[correct].cpu().numpy()
            ok = torch.isfinite(best).cpu().numpy()
            distortion[rows[ok]] = best[torch.isfinite(best)].cpu().numpy()
            distortion[rows[~ok]] = np.inf  # not flipped inside the box
            success[rows] = ok
            X_adv[rows] = best_x
            bar.update(len(x))
    bar.close()
    X_adv = X_adv.cpu().numpy()
    lower = distortion.copy()
    if method == "exact" and correct_all.any():
        # every correct sample: the attacks' points only narrow the search; where none
        # succeeded, the program starts from the whole box
        lower = _exact(
            module,
            X,
            y,
            p,
            box,
            search,
            time_limit,
            distortion,
            X_adv,
            success,
            correct_all,
            verbose,
        )
    return distortion, X_adv, success, correct_all, lower


def _exact(
    module, X, y, p, box, search, time_limit, distortion, X_adv, success, correct, verbose=0
):
    """Replace the attacks' results by the exact minima (in place), for every correctly
    classified sample: an attack's success bounds the program's ball (in ``box``, open
    sides unbounded: exact without a box); without one the program covers the search box,
    and a proven empty program means no point of another class there: ``inf``."""
    from skrob.torch._verify import milp_minima, relu_layers

    with eval_mode(module):
        layers = relu_layers(module, tuple(X.shape[1:]))
    rows = np.flatnonzero(correct)
    start = np.where(success[rows], distortion[rows], np.inf)
    x = X[rows].flatten(1).double().cpu().numpy()
    # a sample no attack flipped: its program covers the search box
    reach = np.maximum(np.abs(x - search[0]), np.abs(search[1] - x)).max(axis=1)
    bar = progress_bar(verbose, len(rows), "exact (MILP)", unit="sample")
    lower, upper, points = milp_minima(
        layers,
        x,
        y[rows].cpu().numpy(),
        box[0],
        box[1],
        p,
        start,
        time_limit,
        bar,
        reach=reach,
    )
    bar.update(bar.total - bar.n)
    bar.close()
    found = np.all(np.isfinite(points), axis=1)
    X_adv[rows[found]] = points[found].reshape((found.sum(), *X_adv.shape[1:]))
    distortion[rows] = upper
    success[rows] = np.isfinite(upper)
    bounds = distortion.copy()
    bounds[rows] = np.minimum(lower, upper)
    open_ = int((lower < upper * (1 - 1e-9)).sum())
    if open_:
        warn_user(
            f"method='exact': the time limit ({time_limit} s per sample) struck before the "
            f"minimum of {open_} samples was proven; their distortion is the best found (an "
            "upper bound). Raise time_limit, or use a smaller network."
        )
    return bounds


class AdversarialDistortionScorer(DistortionScorer):
    """Minimal distortion as a scorer (greater is more robust).

    ``statistic="mean"``: the mean minimal distortion over the correctly classified
    samples; samples no attack flipped are left out of the mean, with a warning saying how
    many. ``statistic="robust_accuracy"``: the share of *all* samples that are classified
    correctly and that no attack flipped within ``epsilon`` (the figure RobustBench users
    compare); the attacks give upper bounds on the minimal distortion, so this is an upper
    bound on the true robust accuracy. ``statistic="certified_accuracy"``: the share of
    all samples classified correctly and *certified* within ``epsilon`` by CROWN
    (:func:`certified_radius`): a lower bound on the true robust accuracy. The statistics
    are those of :class:`~skrob.distortion._scorers.DistortionScorer`, shared with
    :class:`skrob.DecisionDistortionScorer`.

    Parameters
    ----------
    norm : np.inf or 2, default=np.inf
        The norm distortions are measured in.
    method : str, default="auto"
        The attack, as in :func:`minimal_distortion`.
    clip : (low, high) or None, default=None
        The box every adversarial point must stay in, in the units of X (e.g. (0, 1) for
        images in [0, 1]): each side None (open), a number, or one number per input value.
        None: no box, so that tabular or standardised data work as they are. The attacks
        then search within ``[min X − w, max X + w]``, ``w = max(max X − min X, max |X|)``
        (they need a finite region and a scale); exact programs and certificates need no
        box: they hold over the whole space.
    tol : float, default=1e-3
        Bisection tolerance of "bim" on ε, relative to the box's width.
    time_limit : float, default=10.0
        Seconds per sample for ``method="exact"``.
    batch_size : int, default=256
        Samples per attack batch.
    device : str or torch.device, default=None
        Where to compute; None: the model's device.
    input_shape : tuple, default=None
        The shape each row is reshaped to before the model sees it.
    statistic : {"mean", "robust_accuracy", "certified_accuracy"}, default="mean"
        What the scorer returns, as above.
    epsilon : float, default=None
        The radius of the two accuracies (required there).
    verbose : int, default=0
        Show progress bars when positive.

    References
    ----------
    How Training Data Affect the Accuracy and Robustness of Neural Networks for Image
    Classification. Anonymous authors, ICLR 2019 conference submission (paper 002),
    https://openreview.net/forum?id=HklKWhC5F7

    Examples
    --------
    >>> import torch
    >>> from skrob.torch import AdversarialDistortionScorer
    >>> net = torch.nn.Linear(4, 3)
    >>> X = torch.rand(20, 4)
    >>> y = net(X).argmax(1)
    >>> scorer = AdversarialDistortionScorer(statistic="robust_accuracy", epsilon=0.01)
    >>> 0.0 <= scorer(net, X, y) <= 1.0
    True
    """

    def __init__(
        self,
        *,
        norm=np.inf,
        method="auto",
        clip=None,
        tol=1e-3,
        time_limit=10.0,
        batch_size=256,
        device=None,
        input_shape=None,
        statistic="mean",
        epsilon=None,
        verbose=0,
    ):
        self.norm = norm
        self.method = method
        self.clip = clip
        self.tol = tol
        self.time_limit = time_limit
        self.batch_size = batch_size
        self.device = device
        self.input_shape = input_shape
        self.statistic = statistic
        self.epsilon = epsilon
        self.verbose = verbose

    _parameter_constraints = {
        **{
            k: v
            for k, v in minimal_distortion._skl_parameter_constraints.items()
            if k not in ("model", "X", "y", "return_adversarial", "return_bounds")
        },
        "statistic": [StrOptions(set(STATISTICS))],
        "epsilon": [Interval(Real, 0, float(np.finfo(np.float64).max), closed="neither"), None],
    }

    def _distortions(self, estimator, X, y):
        p = self.get_params()
        return _distortions(
            estimator,
            X,
            y,
            p["norm"],
            p["method"],
            p["clip"],
            p["tol"],
            p["batch_size"],
            p["device"],
            p["input_shape"],
            p["time_limit"],
            p["verbose"],
        )[0]

    def _certified(self, estimator, X, y):
        return _certified_mask(
            estimator,
            X,
            y,
            self.norm,
            self.clip,
            self.epsilon,
            self.device,
            self.input_shape,
        )


@validate_params(
    {
        "model": [object],
        "X": ["array-like", "sparse matrix", torch.Tensor],
        "y": ["array-like", torch.Tensor],
        "norm": [StrOptions({"inf"}), Real],
        "method": [StrOptions({"crown", "ibp"})],
        "clip": [tuple, None],
        "device": [str, torch.device, None],
        "input_shape": [tuple, None],
    },
    prefer_skip_nested_validation=True,
)
def certified_radius(
    model, X, y, *, norm=np.inf, method="crown", clip=None, device=None, input_shape=None
):
    """Largest radius within which no perturbation can change each correct prediction.

    A certified lower bound on the minimal distortion, for ReLU networks made of affine
    layers (Linear, convolutions, average pooling, batch-norm in eval, flatten; a Pipeline's
    scalers): the class margin ``z_y − max_{j≠y} z_j`` is bounded below over the L∞ or L2
    ball intersected with the box, by CROWN's linear relaxation of the ReLUs (Zhang et
    al., 2018, every layer bounded the same way) or by interval bound propagation
    (``"ibp"``, looser); the radius is bisected (30 steps) on where the bound stays
    positive. ``certified_radius <= minimal distortion`` on every sample; on a network
    without ReLUs (a linear model) it is the exact minimum. Computed in float64
    (:mod:`skrob.torch._verify`), less a bound of the rounding of the network as it
    predicts on its device: its format (float32), and TF32 or bfloat16 products where
    torch's settings allow them there (``torch.set_float32_matmul_precision``, cuDNN's
    ``allow_tf32``, on by default for convolutions), so that the certificate holds for
    the predictions themselves. Each affine operation's rounding is bounded apart, as the
    network rounds it, and each output as a sum of its products in any order: this
    covers direct and GEMM-based convolutions, not FFT-based ones (whose rounding is
    spread over the whole transform), which cuDNN may choose for large kernels.

    Parameters
    ----------
    model : fitted skorch net, torch.nn.Module returning logits, or a Pipeline ending in one
    X : array-like or tensor of shape (n_samples, ...)
    y : array-like of shape (n_samples,)
    norm : np.inf or 2, default=np.inf
    method : {"crown", "ibp"}, default="crown"
    clip : (low, high) or None, default=None
        The box every adversarial point must stay in, in the units of X (e.g. (0, 1) for
        images in [0, 1]): each side None (open), a number, or one number per input value.
        None: no box, so that tabular or standardised data work as they are. The attacks
        then search within ``[min X − w, max X + w]``, ``w = max(max X − min X, max |X|)``
        (they need a finite region and a scale); exact programs and certificates need no
        box: they hold over the whole space.
    device, input_shape : see :func:`skrob.torch.laplacian`.

    Returns
    -------
    radius : ndarray of shape (n_samples,)
        NaN for samples misclassified to begin with.

    Examples
    --------
    >>> import torch
    >>> from skrob.torch import certified_radius, minimal_distortion
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> X = torch.rand(10, 4)
    >>> y = net(X).argmax(1)
    >>> bool((certified_radius(net, X, y) <= minimal_distortion(net, X, y) + 1e-6).all())
    True
    """
    from skrob.torch._verify import bisect_radius

    p, layers, x, yc, correct, (lo_v, hi_v), search, rounding = _verification_inputs(
        model, X, y, norm, clip, device, input_shape, "certified_radius"
    )
    out = np.full(len(correct), np.nan)
    if correct.any():
        width = float(np.max(search[1] - search[0]))
        top = width if p == np.inf else width * np.sqrt(x.shape[1])
        out[correct] = bisect_radius(
            layers, x, yc, lo_v, hi_v, p, method, np.full(len(x), top), rounding=rounding
        )
    return out


def _box(clip, X, owner):
    """The box, as float64 arrays of one value per input value: ``(box, search)``.

    ``box`` is ``clip`` checked (:func:`skrob._validation.check_box`), ``±inf`` on open
    sides (``clip=None``: no box); X must lie in it. ``search`` is finite: the box with
    open sides closed at ``min X − w`` and ``max X + w``, ``w = max(max X − min X,
    max |X|)``, the region the attacks search (they need a finite box and a scale).
    Exact programs and certificates use ``box`` itself (a ball around each sample bounds
    them), so they hold without a box.
    """
    d = int(np.prod(X.shape[1:]))
    lo, hi = check_box(clip, d, owner)
    flat = X.detach().flatten(1).double().cpu().numpy()
    if not np.all(np.isfinite(flat)):
        raise ValueError(f"{owner}: X has non-finite values.")
    if ((flat < lo) | (flat > hi)).any():
        raise ValueError(_outside_box(flat, clip))
    s_lo, s_hi = lo, hi
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        low, high = (float(flat.min()), float(flat.max())) if flat.size else (0.0, 1.0)
        width = max(high - low, abs(low), abs(high)) or 1.0
        s_lo = np.where(np.isfinite(lo), lo, low - width)
        s_hi = np.where(np.isfinite(hi), hi, high + width)
    return (lo, hi), (s_lo, s_hi)


def _box_tensors(lo, hi, X):
    """``(lo, hi)`` as tensors shaped like one sample, in X's dtype, rounded inwards (a
    point clamped to them lies in the float64 box)."""
    dtype = X.dtype if X.is_floating_point() else torch.float64
    exact_lo, exact_hi = torch.as_tensor(lo), torch.as_tensor(hi)
    t_lo, t_hi = exact_lo.to(dtype), exact_hi.to(dtype)
    t_lo = torch.where(t_lo.double() < exact_lo, torch.nextafter(t_lo, t_lo + 1), t_lo)
    t_hi = torch.where(t_hi.double() > exact_hi, torch.nextafter(t_hi, t_hi - 1), t_hi)
    shape = tuple(X.shape[1:])
    return t_lo.reshape(shape).to(X.device), t_hi.reshape(shape).to(X.device)


def _outside_box(X, clip):
    """The error for X outside the box, with what to pass instead."""
    low, high = float(X.min()), float(X.max())
    clip = tuple(np.asarray(c).tolist() if c is not None else None for c in clip)
    return (
        f"X lies outside the box clip={tuple(clip)!r}: its values range over "
        f"[{low:.4g}, {high:.4g}]. Pass the box the inputs may move in, in the units of "
        f"X, e.g. clip=({low:.4g}, {high:.4g}) (the data's range), or clip=None (the "
        "default: the data's range widened by its width on each side)."
    )


def _verification_inputs(model, X, y, norm, clip, device, input_shape, owner):
    """The float64 ReLU layers, the correct samples (flattened) and their labels."""
    from skrob.torch._verify import relu_layers

    p = check_norm(norm, owner, (np.inf, 2))
    module, dev, returns_probabilities = resolve_module(model, device)
    X = as_tensor(X, dev, input_shape, parameter_dtype(module))
    box, search = _box(clip, X, owner)
    with eval_mode(module):
        n_classes = check_outputs(module, X)
        y = class_indices(y, len(X), n_classes, dev)
        with torch.no_grad():
            correct = (logits(module, returns_probabilities)(X).argmax(1) == y).cpu().numpy()
        layers, operations = relu_layers(module, tuple(X.shape[1:]), operations=True)
    x = X[correct].flatten(1).double().cpu().numpy()
    rounding = _rounding(module, X, operations)
    return p, layers, x, y.cpu().numpy()[correct], correct, box, search, rounding


def _rounding(module, X, operations):
    """The rounding of the network as it predicts, which certificates must hold for
    (:func:`skrob.torch._verify.rounding_bound`'s arguments): ``unit``, the unit roundoff
    of its format; ``product_unit``, the error of float32 operands that torch's settings
    let it round to TF32 or bfloat16 on its device (cuDNN's convolutions use TF32 by
    default); its ``operations``, each rounded apart."""
    from skrob._device import reduced_float32_unit

    unit = float(torch.finfo(X.dtype).eps) / 2
    product_unit = 0.0
    if X.dtype == torch.float32:
        conv = any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in module.modules())
        product_unit = reduced_float32_unit(X.device, convolutions=conv)
    return {"unit": unit, "product_unit": product_unit, "operations": operations}


def _certified_mask(model, X, y, norm, clip, epsilon, device, input_shape):
    """The samples classified correctly and certified at ``epsilon`` (CROWN)."""
    from skrob.torch._verify import margins_lower

    p, layers, x, yc, correct, (lo_v, hi_v), _, rounding = _verification_inputs(
        model, X, y, norm, clip, device, input_shape, "AdversarialDistortionScorer"
    )
    mask = np.zeros(len(correct), dtype=bool)
    if correct.any():
        eps = np.full(len(x), float(epsilon))
        margins = margins_lower(layers, x, yc, eps, lo_v, hi_v, p, "crown", rounding)
        mask[correct] = margins > 0
    return mask
