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
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import _num_samples

from skrob._progress import progress_bar
from skrob._validation import check_clip, reject_metadata, warn_user
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
        "clip": [tuple],
        "tol": [Interval(Real, 0, 1, closed="right")],
        "time_limit": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device, None],
        "input_shape": [tuple, None],
        "return_adversarial": ["boolean"],
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
    clip=(0.0, 1.0),
    tol=1e-3,
    time_limit=10.0,
    batch_size=256,
    device=None,
    input_shape=None,
    return_adversarial=False,
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
    clip : (low, high), default=(0.0, 1.0)
        The box every adversarial point must stay in.
    tol : float, default=1e-3
        Bisection tolerance of "bim" on ε, relative to the box's width.
    time_limit : float, default=10.0
        Seconds per sample for "exact"; where it strikes, the result is the best point
        found (an upper bound) and a warning counts those samples.
    batch_size : int, default=256
    device, input_shape : see :func:`skrob.torch.laplacian`.
    return_adversarial : bool, default=False
        Also return the adversarial points and the per-sample success mask.
    verbose : int, default=0
        Show a progress bar over the samples when positive (one for the attacks, one for
        the exact programs of "exact").

    Returns
    -------
    distortion : ndarray of shape (n_samples,)
        NaN for samples misclassified to begin with and for samples no attack flipped.
    X_adv, success : ndarray, only with ``return_adversarial``

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
    distortion, X_adv, success, _ = _distortions(
        model, X, y, norm, method, clip, tol, batch_size, device, input_shape, time_limit, verbose
    )
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
    p = np.inf if (norm == "inf" or (isinstance(norm, Real) and np.isinf(norm))) else norm
    if method == "exact":
        if p not in (np.inf, 1):
            raise ValueError(
                "method='exact' is L∞ and L1 (norm=np.inf or 1): an L2 minimum needs a "
                f"mixed-integer quadratic program, which scipy does not solve; got {norm!r}."
            )
    elif p not in (np.inf, 2):
        raise ValueError(f"norm must be np.inf or 2, got {norm!r}.")
    if method not in ("auto", "exact") and p not in NORMS[method]:
        name = "an L-inf" if NORMS[method] == (np.inf,) else "an L2"
        fix = "norm=np.inf" if NORMS[method] == (np.inf,) else "norm=2"
        raise ValueError(f"method={method!r} is {name} attack: use {fix}.")
    lo, hi = check_clip(clip, "minimal_distortion")
    module, dev, returns_probabilities = resolve_module(model, device)
    X = as_tensor(X, dev, input_shape, parameter_dtype(module))
    with eval_mode(module):
        n_classes = check_outputs(module, X)
    y = class_indices(y, len(X), n_classes, dev)
    if ((X < lo) | (X > hi)).any():
        raise ValueError(_outside_box(X, clip))
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
            success[rows] = ok
            X_adv[rows] = best_x
            bar.update(len(x))
    bar.close()
    X_adv = X_adv.cpu().numpy()
    if method == "exact" and correct_all.any():
        # every correct sample: the attacks' points only narrow the search; where none
        # succeeded, the program starts from the whole box
        _exact(
            module, X, y, p, lo, hi, time_limit, distortion, X_adv, success, correct_all, verbose
        )
    return distortion, X_adv, success, correct_all


def _exact(module, X, y, p, lo, hi, time_limit, distortion, X_adv, success, correct, verbose=0):
    """Replace the attacks' results by the exact minima (in place), for every correctly
    classified sample: an attack's success bounds the program's ball; without one the
    ball is the whole box. A proven empty program means no point of another class in the
    box: ``inf``."""
    from skrob.torch._verify import exact_distortion, relu_layers

    with eval_mode(module):
        layers = relu_layers(module, tuple(X.shape[1:]))
    rows = np.flatnonzero(correct)
    start = np.where(success[rows], distortion[rows], np.inf)
    x = X[rows].flatten(1).double().cpu().numpy()
    d = x.shape[1]
    bar = progress_bar(verbose, len(rows), "exact (MILP)", unit="sample")
    lower, upper, points = exact_distortion(
        layers,
        x,
        y[rows].cpu().numpy(),
        np.full(d, lo),
        np.full(d, hi),
        p,
        start,
        time_limit,
        bar,
    )
    bar.update(bar.total - bar.n)
    bar.close()
    found = np.all(np.isfinite(points), axis=1)
    X_adv[rows[found]] = points[found].reshape((found.sum(), *X_adv.shape[1:]))
    distortion[rows] = upper
    success[rows] = np.isfinite(upper)
    open_ = int((lower < upper * (1 - 1e-9)).sum())
    if open_:
        warn_user(
            f"method='exact': the time limit ({time_limit} s per sample) struck before the "
            f"minimum of {open_} samples was proven; their distortion is the best found (an "
            "upper bound). Raise time_limit, or use a smaller network."
        )


@validate_params(
    {
        "estimators": ["array-like"],
        "X": ["array-like", "sparse matrix", torch.Tensor],
        "y": ["array-like"],
    },
    prefer_skip_nested_validation=True,
)
def common_correct_mask(estimators, X, y):
    """The samples that every given estimator classifies correctly (paper 002's test set).

    Parameters
    ----------
    estimators : iterable of fitted estimators with ``predict``
    X : array-like
    y : array-like of shape (n_samples,)

    Returns
    -------
    mask : ndarray of shape (n_samples,), bool

    References
    ----------
    How Training Data Affect the Accuracy and Robustness of Neural Networks for Image
    Classification. Anonymous authors, ICLR 2019 conference submission (paper 002),
    https://openreview.net/forum?id=HklKWhC5F7

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from skrob.torch import common_correct_mask
    >>> X, y = load_iris(return_X_y=True)
    >>> models = [LogisticRegression(max_iter=500).fit(X, y),
    ...           DecisionTreeClassifier(max_depth=1).fit(X, y)]
    >>> mask = common_correct_mask(models, X, y)
    >>> bool(mask.sum() <= min((m.predict(X) == y).sum() for m in models))
    True
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be one label per sample (1-D), got shape {y.shape}.")
    n = _num_samples(X)
    if n != len(y):
        raise ValueError(f"X and y must have one row per sample; got {n} and {len(y)}.")
    mask = np.ones(len(y), dtype=bool)
    for est in estimators:
        pred = np.asarray(est.predict(X))
        if pred.shape != y.shape:
            raise ValueError(
                f"{type(est).__name__}.predict returned shape {pred.shape}; expected {y.shape}."
            )
        mask &= pred == y
    return mask


class AdversarialDistortionScorer(BaseEstimator):
    """Minimal distortion as a scorer (greater is more robust).

    ``statistic="mean"``: the mean minimal distortion over the correctly classified
    samples; samples no attack flipped are left out of the mean, with a warning saying how
    many. ``statistic="robust_accuracy"``: the share of *all* samples that are classified
    correctly and that no attack flipped within ``epsilon`` (the figure RobustBench users
    compare); the attacks give upper bounds on the minimal distortion, so this is an upper
    bound on the true robust accuracy. ``statistic="certified_accuracy"``: the share of
    all samples classified correctly and *certified* within ``epsilon`` by CROWN
    (:func:`certified_radius`): a lower bound on the true robust accuracy.

    Parameters
    ----------
    norm : np.inf or 2, default=np.inf
        The norm distortions are measured in.
    method : str, default="auto"
        The attack, as in :func:`minimal_distortion`.
    clip : (low, high), default=(0.0, 1.0)
        The box every adversarial point must stay in, in the units of X.
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
        clip=(0.0, 1.0),
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
            if k not in ("model", "X", "y", "return_adversarial")
        },
        "statistic": [StrOptions({"mean", "robust_accuracy", "certified_accuracy"})],
        "epsilon": [Interval(Real, 0, float(np.finfo(np.float64).max), closed="neither"), None],
    }

    def __call__(self, estimator, X, y, **kwargs):
        """Mean distortion of ``estimator`` over its correctly classified samples of X.

        Metadata (``sample_weight``, ...) has no meaning here: it is an error, never
        silently dropped.
        """
        reject_metadata(self, kwargs)
        self._validate_params()  # errors name this scorer, not minimal_distortion
        if self.statistic != "mean" and self.epsilon is None:
            raise ValueError(
                f"AdversarialDistortionScorer(statistic={self.statistic!r}) needs epsilon=, "
                "the perturbation budget in the norm's units."
            )
        p = self.get_params()
        if self.statistic == "certified_accuracy":
            return _certified_share(
                estimator,
                X,
                y,
                p["norm"],
                p["clip"],
                self.epsilon,
                p["device"],
                p["input_shape"],
            )
        d, _, success, correct = _distortions(
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
        )
        if self.statistic == "robust_accuracy":
            with np.errstate(invalid="ignore"):
                within = success & (d <= self.epsilon)
            return float(np.mean(correct & ~within))
        unbroken = int((correct & ~success).sum())
        if unbroken:
            warn_user(
                f"{unbroken} of {int(correct.sum())} correctly classified samples were not "
                "flipped by any attack inside the box; they are left out of the mean "
                "distortion, which therefore understates the model's robustness."
            )
        if np.isnan(d).all():
            return float("nan")
        return float(np.nanmean(d))


@validate_params(
    {
        "model": [object],
        "X": ["array-like", "sparse matrix", torch.Tensor],
        "y": ["array-like", torch.Tensor],
        "norm": [StrOptions({"inf"}), Real],
        "method": [StrOptions({"crown", "ibp"})],
        "clip": [tuple],
        "device": [str, torch.device, None],
        "input_shape": [tuple, None],
    },
    prefer_skip_nested_validation=True,
)
def certified_radius(
    model, X, y, *, norm=np.inf, method="crown", clip=(0.0, 1.0), device=None, input_shape=None
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
    (:mod:`skrob.torch._verify`).

    Parameters
    ----------
    model : fitted skorch net, torch.nn.Module returning logits, or a Pipeline ending in one
    X : array-like or tensor of shape (n_samples, ...)
    y : array-like of shape (n_samples,)
    norm : np.inf or 2, default=np.inf
    method : {"crown", "ibp"}, default="crown"
    clip : (low, high), default=(0.0, 1.0)
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
    from skrob.torch._verify import certified_radius as bisect_radius

    p, layers, x, yc, correct, lo_v, hi_v, unit = _verification_inputs(
        model, X, y, norm, clip, device, input_shape, "certified_radius"
    )
    out = np.full(len(correct), np.nan)
    if correct.any():
        width = float(np.max(hi_v - lo_v))
        top = width if p == np.inf else width * np.sqrt(x.shape[1])
        out[correct] = bisect_radius(
            layers, x, yc, lo_v, hi_v, p, method, np.full(len(x), top), unit=unit
        )
    return out


def _outside_box(X, clip):
    """The error for X outside the box, with what to pass instead."""
    low, high = float(X.min()), float(X.max())
    return (
        f"X lies outside the box clip={tuple(clip)!r}: its values range over "
        f"[{low:.4g}, {high:.4g}]. The default box (0, 1) is for images with pixels in "
        "[0, 1]; for tabular or standardised data pass the box the inputs may move in, "
        f"e.g. clip=({low:.4g}, {high:.4g}) (the data's range), in the units of X."
    )


def _verification_inputs(model, X, y, norm, clip, device, input_shape, owner):
    """The float64 ReLU layers, the correct samples (flattened) and their labels."""
    from skrob.torch._verify import relu_layers

    p = np.inf if (norm == "inf" or (isinstance(norm, Real) and np.isinf(norm))) else norm
    if p not in (np.inf, 2):
        raise ValueError(f"The 'norm' parameter of {owner} must be np.inf or 2; got {norm!r}.")
    lo, hi = check_clip(clip, owner)
    module, dev, returns_probabilities = resolve_module(model, device)
    X = as_tensor(X, dev, input_shape, parameter_dtype(module))
    with eval_mode(module):
        n_classes = check_outputs(module, X)
        y = class_indices(y, len(X), n_classes, dev)
        if ((X < lo) | (X > hi)).any():
            raise ValueError(_outside_box(X, clip))
        with torch.no_grad():
            correct = (logits(module, returns_probabilities)(X).argmax(1) == y).cpu().numpy()
        layers = relu_layers(module, tuple(X.shape[1:]))
    x = X[correct].flatten(1).double().cpu().numpy()
    d = x.shape[1]
    # the unit roundoff of the format the network predicts in: certificates hold for it
    unit = float(torch.finfo(X.dtype).eps) / 2
    lo_v, hi_v = np.full(d, lo), np.full(d, hi)
    return p, layers, x, y.cpu().numpy()[correct], correct, lo_v, hi_v, unit


def _certified_share(model, X, y, norm, clip, epsilon, device, input_shape):
    """The share of all samples classified correctly and certified at ``epsilon``."""
    from skrob.torch._verify import margins_lower

    p, layers, x, yc, correct, lo_v, hi_v, unit = _verification_inputs(
        model, X, y, norm, clip, device, input_shape, "AdversarialDistortionScorer"
    )
    if not correct.any():
        return 0.0
    eps = np.full(len(x), float(epsilon))
    safe = margins_lower(layers, x, yc, eps, lo_v, hi_v, p, "crown", unit) > 0
    return float(safe.sum() / len(correct))
