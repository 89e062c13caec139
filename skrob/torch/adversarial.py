"""Minimal adversarial distortion of a classifier (paper 002): L∞ and L2, batched, in torch.

For every correctly classified sample, the norm of the smallest perturbation found that
changes the prediction (inside the box ``clip``); NaN for samples misclassified to begin
with and for samples no attack flipped (recorded in ``success``). Every adversarial point
is checked: inside the box, and really predicted differently; its norm is computed in
float64 after a bisection along the segment from x, which pulls it onto the boundary.

Attacks (all untargeted, vectorised over a batch, per-sample state):

- "deepfool" (Moosavi-Dezfooli et al.): linearise every class margin, step to the nearest
  linearised boundary (the dual norm of the gradient difference); exact in one step for
  linear models;
- "bim" (L∞, paper 002's method): iterative FGSM inside a per-sample bisection over ε
  (below DeepFool's distortion in "auto");
- "ddn" (L2, Rony et al.): decoupled direction and norm;
- "cw" (L2, Carlini & Wagner): tanh-space Adam on the CW margin loss with a binary search
  over the constant c;
- "auto": the per-sample minimum of deepfool and bim (L∞) or deepfool and ddn (L2).
"""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from skrob.torch._model import as_tensor, eval_mode, resolve_module

_METHODS = {np.inf: ("deepfool", "bim"), 2: ("deepfool", "ddn")}


def _norm(delta, p):
    flat = delta.flatten(1).double()
    return flat.abs().amax(dim=1) if p == np.inf else flat.norm(dim=1)


def _logits(module, returns_probabilities):
    def f(x):
        out = module(x)
        return torch.log(out.clamp_min(1e-30)) if returns_probabilities else out

    return f


def _margin_loss(z, y):
    """z_y − max_{j≠y} z_j (positive while still correct)."""
    other = z.clone()
    other[torch.arange(len(y)), y] = -torch.inf
    return z[torch.arange(len(y)), y] - other.amax(dim=1)


def _deepfool(f, x, y, p, lo, hi, max_iter=50, overshoot=0.02):
    x_adv = x.clone()
    for _ in range(max_iter):
        with torch.no_grad():
            still = f(x_adv).argmax(1) == y
        if not still.any():
            break
        rows = still.nonzero().squeeze(1)
        xa = x_adv[rows].clone().requires_grad_(True)
        ya = y[rows]
        z = f(xa)
        grads = torch.stack(
            [
                torch.autograd.grad(z[:, k].sum(), xa, retain_graph=True)[0]
                for k in range(z.shape[1])
            ],
            1,
        )  # (B, K, ...)
        idx = torch.arange(len(ya), device=x.device)
        w = (grads - grads[idx, ya].unsqueeze(1)).flatten(2)  # (B, K, n)
        margin = (z - z[idx, ya].unsqueeze(1)).detach()  # <= 0 for the other classes
        dual = w.abs().sum(2) if p == np.inf else w.norm(dim=2)
        dist = margin.abs() / dual.clamp_min(1e-12)
        dist[idx, ya] = torch.inf
        k = dist.argmin(1)
        wk = w[idx, k]
        length = dist[idx, k].unsqueeze(1) + 1e-6
        if p == np.inf:
            step = length * wk.sign()
        else:
            step = length * wk / wk.norm(dim=1, keepdim=True).clamp_min(1e-12)
        x_adv[rows] = (xa.detach() + (1 + overshoot) * step.reshape(xa.shape)).clamp(lo, hi)
    return x_adv


def _bim(f, x, y, eps, lo, hi, n_steps=20):
    """Iterative FGSM in the per-sample L∞ ball of radius eps (shape (B,))."""
    e = eps.reshape((-1,) + (1,) * (x.ndim - 1)).to(x.dtype)
    alpha = 2.5 * e / n_steps
    x_adv = x.clone()
    best = x.clone()
    found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for _ in range(n_steps):
        xa = x_adv.clone().requires_grad_(True)
        loss = -_margin_loss(f(xa), y).sum()
        (g,) = torch.autograd.grad(loss, xa)
        x_adv = torch.min(torch.max(xa.detach() + alpha * g.sign(), x - e), x + e).clamp(lo, hi)
        with torch.no_grad():
            flipped = f(x_adv).argmax(1) != y
        best[flipped & ~found] = x_adv[flipped & ~found]
        found |= flipped
    return best, found


def _bim_bisection(f, x, y, lo, hi, tol, upper):
    """Per-sample bisection of ε in [0, upper] (a tensor), to ``tol`` relative to upper."""
    low = torch.zeros(len(x), dtype=torch.float64, device=x.device)
    high = upper.to(torch.float64).clone()
    best, found = _bim(f, x, y, high, lo, hi)
    x_best = best.clone()
    ok = found.clone()
    while ((high - low) > tol * upper).any():
        mid = (low + high) / 2
        adv, hit = _bim(f, x, y, mid, lo, hi)
        x_best[hit] = adv[hit]
        ok |= hit
        high = torch.where(hit, mid, high)
        low = torch.where(hit, low, mid)
    return x_best, ok


def _ddn(f, x, y, lo, hi, steps=100, gamma=0.05, init_norm=1.0):
    B = len(x)
    shape = (-1,) + (1,) * (x.ndim - 1)
    delta = torch.zeros_like(x, requires_grad=True)
    eps = torch.full((B,), init_norm, dtype=x.dtype, device=x.device)
    best = x.clone()
    best_norm = torch.full((B,), torch.inf, dtype=torch.float64, device=x.device)
    opt = torch.optim.SGD([delta], lr=1.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=0.01)
    for _ in range(steps):
        xa = x + delta
        z = f(xa)
        adv = z.argmax(1) != y
        norm = delta.detach().flatten(1).norm(dim=1)
        better = adv & (norm.double() < best_norm)
        best[better] = xa.detach()[better]
        best_norm[better] = norm.double()[better]
        loss = -_margin_loss(z, y).sum()
        opt.zero_grad()
        loss.backward()
        g = delta.grad
        g_norm = g.flatten(1).norm(dim=1).clamp_min(1e-12)
        delta.grad = -g / g_norm.reshape(shape)  # steepest ascent of the loss, unit L2
        opt.step()
        sched.step()
        eps = torch.where(adv, (1 - gamma) * eps, (1 + gamma) * eps)
        eps = torch.minimum(eps, torch.full_like(eps, float((hi - lo) * np.sqrt(x[0].numel()))))
        with torch.no_grad():
            d_norm = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
            delta.mul_((eps / d_norm).reshape(shape))
            delta.copy_((x + delta).clamp(lo, hi) - x)
    return best, torch.isfinite(best_norm)


def _cw(f, x, y, lo, hi, steps=100, search_steps=6, c_init=1e-2, lr=0.01):
    """Carlini–Wagner L2: minimise ||δ||² + c·max(margin, 0) in tanh space, c by bisection."""
    B = len(x)
    c = torch.full((B,), c_init, dtype=x.dtype, device=x.device)
    c_lo = torch.zeros_like(c)
    c_hi = torch.full_like(c, torch.inf)
    best = x.clone()
    best_norm = torch.full((B,), torch.inf, dtype=torch.float64, device=x.device)
    span = (hi - lo) / 2
    center = (hi + lo) / 2
    w0 = torch.atanh(((x - center) / span).clamp(-1 + 1e-6, 1 - 1e-6))
    for _ in range(search_steps):
        w = w0.clone().requires_grad_(True)
        opt = torch.optim.Adam([w], lr=lr)
        success = torch.zeros(B, dtype=torch.bool, device=x.device)
        for _ in range(steps):
            xa = center + span * torch.tanh(w)
            z = f(xa)
            dist = (xa - x).flatten(1).pow(2).sum(1)
            loss = (dist + c * _margin_loss(z, y).clamp_min(0)).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                adv = z.argmax(1) != y
                norm = dist.detach().sqrt().double()
                better = adv & (norm < best_norm)
                best[better] = xa.detach()[better]
                best_norm[better] = norm[better]
                success |= adv
        c_hi = torch.where(success, torch.minimum(c_hi, c), c_hi)
        c_lo = torch.where(success, c_lo, torch.maximum(c_lo, c))
        c = torch.where(torch.isfinite(c_hi), (c_lo + c_hi) / 2, c * 10)
    return best, torch.isfinite(best_norm)


def _shrink(f, x, x_adv, y, steps=20):
    """Bisect along x + t (x_adv − x): the smallest t ∈ [0, 1] still misclassified."""
    t_lo = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    t_hi = torch.ones_like(t_lo)
    shape = (-1,) + (1,) * (x.ndim - 1)
    with torch.no_grad():
        for _ in range(steps):
            mid = (t_lo + t_hi) / 2
            flipped = f(x + mid.reshape(shape) * (x_adv - x)).argmax(1) != y
            t_hi = torch.where(flipped, mid, t_hi)
            t_lo = torch.where(flipped, t_lo, mid)
    return x + t_hi.reshape(shape) * (x_adv - x)


def _attack(method, f, x, y, p, lo, hi, tol, upper):
    if method == "deepfool":
        return _deepfool(f, x, y, p, lo, hi), None
    if method == "bim":
        return _bim_bisection(f, x, y, lo, hi, tol, upper)
    if method == "ddn":
        return _ddn(f, x, y, lo, hi)
    return _cw(f, x, y, lo, hi)


@validate_params(
    {
        "model": [object],
        "X": ["array-like", torch.Tensor],
        "y": ["array-like", torch.Tensor],
        "norm": [StrOptions({"inf"}), Real],
        "method": [StrOptions({"auto", "deepfool", "bim", "ddn", "cw"})],
        "clip": [tuple],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device, None],
        "input_shape": [tuple, None],
        "return_adversarial": ["boolean"],
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
    batch_size=256,
    device=None,
    input_shape=None,
    return_adversarial=False,
):
    """Norm of the smallest perturbation found that changes each correct prediction.

    Parameters
    ----------
    model : fitted skorch net or torch.nn.Module returning logits
    X : array-like or tensor of shape (n_samples, ...)
    y : array-like of shape (n_samples,)
        True labels (class indices of the module's outputs).
    norm : np.inf or 2, default=np.inf
    method : {"auto", "deepfool", "bim", "ddn", "cw"}, default="auto"
        See the module docstring; "bim" is L∞ only, "ddn" and "cw" L2 only.
    clip : (low, high), default=(0.0, 1.0)
        The box every adversarial point must stay in.
    tol : float, default=1e-3
        Bisection tolerance of "bim" on ε, relative to its upper bound (the best
        distortion found by the attacks before it, or the box's width).
    batch_size : int, default=256
    device, input_shape : see :func:`skrob.torch.laplacian`.
    return_adversarial : bool, default=False
        Also return the adversarial points and the per-sample success mask.

    Returns
    -------
    distortion : ndarray of shape (n_samples,)
        NaN for samples misclassified to begin with and for samples no attack flipped.
    X_adv, success : ndarray, only with ``return_adversarial``

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
    p = np.inf if (norm == "inf" or (isinstance(norm, Real) and np.isinf(norm))) else norm
    if p not in (np.inf, 2):
        raise ValueError(f"norm must be np.inf or 2, got {norm!r}.")
    if method == "bim" and p != np.inf:
        raise ValueError("method='bim' is an L-inf attack: use norm=np.inf.")
    if method in ("ddn", "cw") and p != 2:
        raise ValueError(f"method={method!r} is an L2 attack: use norm=2.")
    lo, hi = float(clip[0]), float(clip[1])
    if not lo < hi:
        raise ValueError(f"clip must be (low, high) with low < high, got {clip!r}.")
    module, dev, returns_probabilities = resolve_module(model, device)
    dtype = next(module.parameters()).dtype
    X = as_tensor(X, dev, input_shape, dtype)
    y = torch.as_tensor(np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y), device=dev)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"y must hold one class index per sample; got shape {tuple(y.shape)}.")
    if ((X < lo) | (X > hi)).any():
        raise ValueError(f"X lies outside the box clip={clip!r}.")
    y = y.long()
    f = _logits(module, returns_probabilities)
    methods = _METHODS[p] if method == "auto" else (method,)
    n = len(X)
    distortion = np.full(n, np.nan)
    X_adv = X.detach().clone()
    success = np.zeros(n, dtype=bool)
    with eval_mode(module):
        for start in range(0, n, batch_size):
            x, yb = X[start : start + batch_size], y[start : start + batch_size]
            with torch.no_grad():
                correct = f(x).argmax(1) == yb
            if not correct.any():
                continue
            xc, yc = x[correct], yb[correct]
            best = torch.full((len(xc),), torch.inf, dtype=torch.float64, device=dev)
            best_x = xc.clone()
            for m in methods:
                # BIM searches below the best distortion found so far (DeepFool's, in
                # "auto"), or the whole box.
                upper = torch.where(torch.isfinite(best), best, torch.full_like(best, hi - lo))
                cand, _ = _attack(m, f, xc, yc, p, lo, hi, tol, upper)
                with torch.no_grad():
                    flipped = f(cand).argmax(1) != yc
                    cand = _shrink(f, xc, torch.where(_rows(flipped, xc), cand, xc), yc)
                    flipped &= f(cand).argmax(1) != yc
                    inside = ((cand >= lo) & (cand <= hi)).flatten(1).all(1)
                    d = _norm(cand - xc, p)
                    better = flipped & inside & (d < best)
                    best = torch.where(better, d, best)
                    best_x[better] = cand[better]
            rows = torch.arange(start, start + len(x), device=dev)[correct].cpu().numpy()
            ok = torch.isfinite(best).cpu().numpy()
            distortion[rows[ok]] = best[torch.isfinite(best)].cpu().numpy()
            success[rows] = ok
            X_adv[rows] = best_x
    if return_adversarial:
        return distortion, X_adv.cpu().numpy(), success
    return distortion


def _rows(mask, x):
    return mask.reshape((-1,) + (1,) * (x.ndim - 1))


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
    """
    y = np.asarray(y)
    mask = np.ones(len(y), dtype=bool)
    for est in estimators:
        mask &= np.asarray(est.predict(X)) == y
    return mask


class AdversarialDistortionScorer(BaseEstimator):
    """Mean minimal distortion over the correctly classified samples (greater is more robust).

    Parameters are those of :func:`minimal_distortion`. Samples no attack flipped are left
    out of the mean, with a warning saying how many.
    """

    def __init__(
        self, *, norm=np.inf, method="auto", clip=(0.0, 1.0), batch_size=256, input_shape=None
    ):
        self.norm = norm
        self.method = method
        self.clip = clip
        self.batch_size = batch_size
        self.input_shape = input_shape

    def __call__(self, estimator, X, y, **kwargs):
        """Mean distortion of ``estimator`` over its correctly classified samples of X."""
        d = minimal_distortion(estimator, X, y, **self.get_params())
        if np.isnan(d).all():
            return float("nan")
        return float(np.nanmean(d))
