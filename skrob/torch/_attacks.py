"""The attacks of :func:`skrob.torch.minimal_distortion`, behind one signature.

Every attack is ``attack(f, x, y, p, lo, hi, tol, **params) -> (x_adv, hit)``: ``f`` maps
inputs to logits, ``x`` a batch of correctly classified samples with labels ``y``, ``p``
the norm (``np.inf`` or 2), ``[lo, hi]`` the box, ``tol`` the bisection tolerance of the
attacks that bisect; ``hit`` marks the samples whose ``x_adv`` flips the prediction.
:data:`ATTACKS` is the table; :data:`NORMS` what each supports; :data:`AUTO` what
``method="auto"`` runs per norm.

- "fab" (Croce & Hein, 2020): steps onto the linearised boundary, box-constrained and
  biased towards x; the first step is DeepFool's, so linear models are exact;
- "deepfool" (Moosavi-Dezfooli et al.): iterate the step onto the nearest linearised
  boundary (the dual norm of the gradient difference) until the label changes;
- "bim" (L∞, paper 002's method): iterative FGSM inside a per-sample bisection over ε;
- "ddn" (L2, Rony et al.): decoupled direction and norm;
- "cw" (L2, Carlini & Wagner): tanh-space Adam on the CW margin loss with a binary search
  over the constant c.
"""

import numpy as np
import torch


def lp_norm(delta, p):
    flat = delta.flatten(1).double()
    if p == 1:
        return flat.abs().sum(dim=1)
    return flat.abs().amax(dim=1) if p == np.inf else flat.norm(dim=1)


def logits(module, returns_probabilities):
    def f(x):
        out = module(x)
        return torch.log(out.clamp_min(1e-30)) if returns_probabilities else out

    return f


def _width(lo, hi):
    """The box's widest side, a number (the scale of the attacks that need one)."""
    width = hi - lo
    return float(width.max()) if torch.is_tensor(width) else float(width)


def _flat(bound):
    """A per-value box bound for flattened samples (a number stays a number)."""
    return bound.reshape(-1) if torch.is_tensor(bound) else bound


def _rows(v, x):
    """Per-sample values v of shape (B,), shaped to broadcast against x of shape (B, ...)."""
    return v.reshape((-1,) + (1,) * (x.ndim - 1))


def _grads(outputs, x):
    """Input gradients of each column of outputs (B, k) at x: shape (B, k, n)."""
    k = outputs.shape[1]
    grads = [
        torch.autograd.grad(outputs[:, j].sum(), x, retain_graph=j < k - 1)[0] for j in range(k)
    ]
    return torch.stack(grads, 1).flatten(2)


def margin_loss(z, y):
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
        grads = _grads(z, xa)  # (B, K, n)
        idx = torch.arange(len(ya), device=x.device)
        w = grads - grads[idx, ya].unsqueeze(1)
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
    with torch.no_grad():
        return x_adv, f(x_adv).argmax(1) != y


def _project(w, c, x, lo, hi, p):
    """Smallest step d (in L∞ or L2) with w·d = c that keeps x + d inside the box [lo, hi].

    w, x of shape (B, n), c of shape (B,). Per row, d_i = sign(w_i) min(s b_i, u_i), with
    b_i = 1 (L∞) or |w_i| (L2) and u_i the room to the box in the direction of sign(w_i)
    (the KKT conditions of both problems); the smallest s reaching w·d = c is read off the
    sorted breakpoints u_i / b_i of the piecewise-linear w·d(s). Where the box cannot reach
    c, d moves every coordinate to the box (``feasible`` is False).
    """
    flip = torch.where(c < 0, -1.0, 1.0).to(w.dtype).unsqueeze(1)
    w = w * flip
    c = c.abs()
    a = w.abs()
    u = torch.where(w > 0, hi - x, x - lo)
    b = torch.ones_like(a) if p == np.inf else a
    t = torch.where(b > 0, u / b.clamp_min(1e-30), torch.full_like(u, 1e30))
    t, order = t.sort(dim=1)
    ab, au = (a * b).gather(1, order), (a * u).gather(1, order)
    saturated = au.cumsum(1)  # w·d from the coordinates at the box by breakpoint j
    # d(w·d)/ds of the coordinates past j: suffix sums, exactly 0 past the last non-zero
    suffix = ab.flip(1).cumsum(1).flip(1)
    slope = torch.cat([suffix[:, 1:], torch.zeros_like(suffix[:, :1])], 1)
    reached = saturated + t * slope >= c.unsqueeze(1)
    feasible = saturated[:, -1] >= c
    j = reached.to(torch.int8).argmax(1)  # first breakpoint reaching c
    prev = (j - 1).clamp_min(0).unsqueeze(1)
    sat_prev = torch.where(j > 0, saturated.gather(1, prev).squeeze(1), 0)
    slope_prev = torch.where(j > 0, slope.gather(1, prev).squeeze(1), suffix[:, 0])
    s = (c - sat_prev) / slope_prev.clamp_min(1e-30)
    m = torch.where(feasible.unsqueeze(1), torch.minimum(s.unsqueeze(1) * b, u), u)
    return w.sign() * m, feasible


def _fab(
    f,
    x,
    y,
    p,
    lo,
    hi,
    steps=15,
    candidates=1,
    alpha_max=0.1,
    eta=1.05,
    beta=0.7,
    target=None,
    ranking=None,
):
    """FAB (Croce & Hein, 2020): projections onto the linearised boundary, biased to x.

    Every step linearises the margins z_k − z_y at the current point, of all classes in
    the first step (DeepFool's step, exact on linear models) and of the ``candidates``
    runner-up classes after it. A point past the boundary is recorded and first pulled
    back towards x by the factor ``beta`` (its margins moved along the same
    linearisation). Then the box-constrained minimal steps onto the nearest linearised
    boundary, from the point and from x, are mixed (weight α ≤ ``alpha_max`` on the step
    from x) with overshoot ``eta``. One forward and ``candidates`` backward passes a step.
    ``target`` (one class per sample): linearise that class's margin only, at every step.
    ``ranking`` (a list): receives the classes ordered by their linearised distance at x,
    from the first step, which linearises every class anyway.
    """
    B = len(x)
    idx = torch.arange(B, device=x.device)
    x0 = x.flatten(1)
    xk = x.clone()
    best = x.clone()
    best_norm = torch.full((B,), torch.inf, dtype=torch.float64, device=x.device)

    def record(xk, z):
        nonlocal best_norm
        adv = z.argmax(1) != y
        norm = lp_norm(xk - x, p)
        better = adv & (norm < best_norm)
        best[better] = xk[better]
        best_norm = torch.where(better, norm, best_norm)
        return adv

    for step in range(steps):
        xa = xk.clone().requires_grad_(True)
        z = f(xa)
        adv = record(xk, z.detach())
        other = z.detach().clone()
        other[idx, y] = -torch.inf
        if target is not None:
            cand = target.unsqueeze(1)
        else:
            k = z.shape[1] - 1 if step == 0 else min(candidates, z.shape[1] - 1)
            cand = other.topk(k, dim=1).indices  # (B, k)
        g = z.gather(1, cand) - z[idx, y].unsqueeze(1)  # < 0 while correct
        w = _grads(g, xa)  # (B, k, n)
        xf = xk.flatten(1)
        base = torch.where(adv.unsqueeze(1), (1 - beta) * x0 + beta * xf, xf)
        g = g.detach() + (w @ (base - xf).unsqueeze(2)).squeeze(2)  # margins at base
        # the nearest linearised boundary (the dual norm of its normal), then the
        # box-constrained minimal steps onto it from base and from x
        dual = w.abs().sum(2) if p == np.inf else w.norm(dim=2)
        lin = g.abs() / dual.clamp_min(1e-30)
        if step == 0 and ranking is not None and target is None:
            order = lin.argsort(1)
            ranking.append((cand.gather(1, order), lin.gather(1, order)))  # nearest first
        j = lin.argmin(1)
        wj, gj = w[idx, j], g[idx, j]
        d1, _ = _project(wj, -gj, base, _flat(lo), _flat(hi), p)
        d2, _ = _project(wj, -(gj + (wj * (x0 - base)).sum(1)), x0, _flat(lo), _flat(hi), p)
        n1, n2 = lp_norm(d1, p), lp_norm(d2, p)
        alpha = (n1 / (n1 + n2).clamp_min(1e-30)).clamp(max=alpha_max).to(x.dtype).unsqueeze(1)
        x_new = ((1 - alpha) * (base + eta * d1) + alpha * (x0 + eta * d2)).clamp(
            _flat(lo), _flat(hi)
        )
        xk = x_new.reshape(x.shape)
    with torch.no_grad():
        record(xk, f(xk))
    return best, torch.isfinite(best_norm)


def _iterative_fgsm(f, x, y, eps, lo, hi, n_steps, step, loss):
    """Iterative FGSM in the per-sample L∞ ball of radius eps (shape (B,)): ``n_steps``
    signed-gradient ascents of ``loss(z, y)`` of ``step · eps / n_steps``, projected on
    the ball and the box; the first flipping iterate is kept."""
    e = _rows(eps, x).to(x.dtype)
    alpha = step * e / n_steps
    x_adv = x.clone()
    best = x.clone()
    found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for _ in range(n_steps):
        xa = x_adv.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(loss(f(xa), y), xa)
        x_adv = torch.min(torch.max(xa.detach() + alpha * g.sign(), x - e), x + e).clamp(lo, hi)
        with torch.no_grad():
            flipped = f(x_adv).argmax(1) != y
        best[flipped & ~found] = x_adv[flipped & ~found]
        found |= flipped
    return best, found


def _bim(f, x, y, eps, lo, hi, n_steps=20):
    """A strong iterative FGSM: the margin loss, steps of 2.5 ε / T."""
    return _iterative_fgsm(
        f, x, y, eps, lo, hi, n_steps, 2.5, lambda z, t: -margin_loss(z, t).sum()
    )


def _ifgsm(f, x, y, eps, lo, hi, n_steps=10):
    """Paper 002's I-FGSM as written (Kurakin et al.): the cross-entropy, steps of ε / T."""
    return _iterative_fgsm(
        f,
        x,
        y,
        eps,
        lo,
        hi,
        n_steps,
        1.0,
        lambda z, t: torch.nn.functional.cross_entropy(z, t, reduction="sum"),
    )


def _bim_bisection(f, x, y, lo, hi, tol, attack=_bim):
    """Per-sample bisection of ε in [0, w], to ``tol`` relative to w, the box's widest side."""
    width = _width(lo, hi)
    low = torch.zeros(len(x), dtype=torch.float64, device=x.device)
    high = torch.full((len(x),), width, dtype=torch.float64, device=x.device)
    best, found = attack(f, x, y, high, lo, hi)
    x_best = best.clone()
    ok = found.clone()
    while ((high - low) > tol * width).any():
        mid = (low + high) / 2
        adv, hit = attack(f, x, y, mid, lo, hi)
        x_best[hit] = adv[hit]
        ok |= hit
        high = torch.where(hit, mid, high)
        low = torch.where(hit, low, mid)
    return x_best, ok


def _ddn(f, x, y, lo, hi, steps=40, gamma=0.1, init_norm=1.0, max_step=2.0):
    """Decoupled direction and norm (Rony et al., 2019) on the cross-entropy loss.

    The step along the normalised gradient decays from ``max_step`` to 0.01 (cosine), and
    the radius ε shrinks by (1 − γ) after an adversarial step and grows by (1 + γ) after
    a failed one; lengths are in units of the box's width.
    """
    B = len(x)
    width = _width(lo, hi)
    eps = torch.full((B,), init_norm * width, dtype=x.dtype, device=x.device)
    worst = torch.maximum(x - lo, hi - x).flatten(1).norm(dim=1)
    delta = torch.zeros_like(x)
    best = x.clone()
    best_norm = torch.full((B,), torch.inf, dtype=torch.float64, device=x.device)
    for i in range(steps):
        step = width * (0.01 + (max_step - 0.01) * (1 + np.cos(np.pi * i / steps)) / 2)
        d = delta.clone().requires_grad_(True)
        z = f(x + d)
        loss = torch.nn.functional.cross_entropy(z, y, reduction="sum")
        (g,) = torch.autograd.grad(loss, d)
        with torch.no_grad():
            adv = z.argmax(1) != y
            norm = lp_norm(delta, 2)
            better = adv & (norm < best_norm)
            best[better] = (x + delta)[better]
            best_norm = torch.where(better, norm, best_norm)
            delta += step * g / _rows(g.flatten(1).norm(dim=1).clamp_min(1e-12), x)
            eps = torch.minimum(torch.where(adv, (1 - gamma) * eps, (1 + gamma) * eps), worst)
            delta *= _rows(eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12), x)
            delta = (x + delta).clamp(lo, hi) - x
    return best, torch.isfinite(best_norm)


def _cw(f, x, y, lo, hi, steps=500, search_steps=9, c_init=1e-2, lr=0.01, targets=3):
    """Carlini–Wagner L2 with its original schedule, against each sample's nearest classes.

    For each of the ``targets`` classes nearest at x by the linearised distance
    ``(z_y − z_j) / ‖∇(z_y − z_j)‖``, the targeted objective
    ``‖δ‖² + c·max(z_y − z_j, 0)`` is minimised in tanh space by Adam (``lr`` decaying by
    0.5 % a step, up to ``steps`` steps, stopped when the loss has not improved by 1e-4
    relative over a tenth of them), with a binary search over c (``search_steps``, from
    ``c_init``, ×10 until the first success). Untargeted CW follows the runner-up logit,
    which can settle on a boundary farther than the nearest; the nearest classes' minimum
    is kept per sample.
    """
    xg = x.clone().requires_grad_(True)
    z = f(xg)
    n_classes = z.shape[1]
    dist = torch.full((len(x), n_classes), torch.inf, dtype=torch.float64, device=x.device)
    zy = z.gather(1, y[:, None])[:, 0]
    for j in range(n_classes):
        (g,) = torch.autograd.grad((zy - z[:, j]).sum(), xg, retain_graph=True)
        gap = (zy - z[:, j]).detach().double()
        dist[:, j] = gap / g.flatten(1).norm(dim=1).double().clamp_min(1e-30)
    dist[torch.arange(len(x)), y] = torch.inf
    order = dist.argsort(dim=1)[:, : min(targets, n_classes - 1)]
    best = x.clone()
    best_norm = torch.full((len(x),), torch.inf, dtype=torch.float64, device=x.device)
    for k in range(order.shape[1]):
        target = order[:, k]
        near = dist[torch.arange(len(x)), target].to(x.dtype)
        cand, norm = _cw_targeted(f, x, y, target, near, lo, hi, steps, search_steps, c_init, lr)
        better = norm < best_norm
        best[better] = cand[better]
        best_norm = torch.where(better, norm, best_norm)
    return best, torch.isfinite(best_norm)


def _cw_targeted(f, x, y, target, scale, lo, hi, steps, search_steps, c_init, lr):
    """Targeted CW-L2 (κ = 0), per-sample binary search over c; (best points, norms).

    The tanh-space variable moves in units of ``scale`` (the linearised distance to the
    target, per sample): Adam's steps, about ``lr`` in those units, are then a fixed share
    of each sample's own distance, large or small.
    """
    B = len(x)
    c = torch.full((B,), c_init, dtype=x.dtype, device=x.device)
    c_lo = torch.zeros_like(c)
    c_hi = torch.full_like(c, torch.inf)
    best = x.clone()
    best_norm = torch.full((B,), torch.inf, dtype=torch.float64, device=x.device)
    span = (hi - lo) / 2
    center = (hi + lo) / 2
    w0 = torch.atanh(((x - center) / span).clamp(-1 + 1e-6, 1 - 1e-6))
    rows = torch.arange(B, device=x.device)
    patience = max(1, steps // 10)
    unit = _rows((scale / (_width(lo, hi) / 2)).clamp(1e-6, 1.0), x)
    for _ in range(search_steps):
        v = torch.zeros_like(w0).requires_grad_(True)
        opt = torch.optim.Adam([v], lr=lr)
        success = torch.zeros(B, dtype=torch.bool, device=x.device)
        previous = torch.inf
        for i in range(steps):
            xa = center + span * torch.tanh(w0 + unit * v)
            z = f(xa)
            d2 = (xa - x).flatten(1).pow(2).sum(1)
            gap = z[rows, y] - z[rows, target]
            loss = (d2 + c * gap.clamp_min(0)).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            # a decaying step settles the iterates on the boundary instead of around it
            opt.param_groups[0]["lr"] = lr * 0.995 ** (i + 1)
            with torch.no_grad():
                adv = z.argmax(1) != y
                norm = d2.detach().sqrt().double()
                better = adv & (norm < best_norm)
                best[better] = xa.detach()[better]
                best_norm[better] = norm[better]
                success |= adv
            if (i + 1) % patience == 0:  # CW's early abort
                if loss.item() > previous * (1 - 1e-4):
                    break
                previous = loss.item()
        c_hi = torch.where(success, torch.minimum(c_hi, c), c_hi)
        c_lo = torch.where(success, c_lo, torch.maximum(c_lo, c))
        c = torch.where(torch.isfinite(c_hi), (c_lo + c_hi) / 2, c * 10)
    return best, best_norm


def shrink(f, x, x_adv, y, margin0, hit, steps=4):
    """Pull each x_adv towards x along the segment, onto the boundary: Illinois false position.

    On t ∈ [0, 1] of x + t (x_adv − x), the margin z_y − max_{j≠y} z_j is positive at 0 and
    negative at 1 (where ``hit``); every step evaluates it at the interpolated root and
    keeps the bracket, halving the stale end's margin when one end stays twice (Illinois).
    Linear margins land on the boundary in one step. Returns the adversarial end, which
    is never farther than x_adv.
    """
    with torch.no_grad():
        t_lo, m_lo = torch.zeros_like(margin0), margin0.clone()
        t_hi, m_hi = torch.ones_like(margin0), margin_loss(f(x_adv), y)
        active = hit & (m_hi < 0) & (m_lo > 0)
        side = torch.zeros_like(margin0)  # +1: the last step moved t_hi, −1: t_lo
        for _ in range(steps):
            t = (t_lo * m_hi - t_hi * m_lo) / (m_hi - m_lo).clamp_max(-1e-30)
            # a hair past the root, so a linear margin's first step is adversarial
            t = torch.where(active, torch.minimum(t + 1e-4 * (t_hi - t_lo), t_hi), t_hi)
            m = margin_loss(f(x + _rows(t, x) * (x_adv - x)), y)
            adv = active & (m < 0)
            low = active & ~adv
            m_lo = torch.where(adv & (side > 0), m_lo / 2, m_lo)
            m_hi = torch.where(low & (side < 0), m_hi / 2, m_hi)
            t_hi, m_hi = torch.where(adv, t, t_hi), torch.where(adv, m, m_hi)
            t_lo, m_lo = torch.where(low, t, t_lo), torch.where(low, m, m_lo)
            side = torch.where(adv, 1.0, torch.where(low, -1.0, side))
    t = _rows(t_hi, x)
    return torch.where(t == 1, x_adv, x + t * (x_adv - x))


def _fab_attack(f, x, y, p, lo, hi, tol, targets=0, target_steps=None, **params):
    """FAB; with ``targets=k``, also FAB targeted (``target_steps`` steps) at each of the
    k classes next-nearest at x by the linearised distance (dual norm; ranked by the
    untargeted run's first step), each sample keeping its minimum: the untargeted run
    settles on one class's boundary, not always the nearest one."""
    ranking = []
    best, hit = _fab(f, x, y, p, lo, hi, ranking=ranking, **params)
    if not targets:
        return best, hit
    best_norm = torch.where(hit, lp_norm(best - x, p), torch.inf)
    # the untargeted run follows the nearest class; the next ones get their own runs, for
    # the samples whose linearised distance to them is within 1.5x the best found
    classes, lin = ranking[0]
    order, lin = classes[:, 1 : 1 + targets], lin[:, 1 : 1 + targets].double()
    targeted = {**params, "steps": target_steps or params.get("steps", 15)}
    for k in range(order.shape[1]):
        rows = torch.nonzero(lin[:, k] < 1.5 * best_norm).flatten()
        if not len(rows):
            continue
        cand, ok = _fab(f, x[rows], y[rows], p, lo, hi, target=order[rows, k], **targeted)
        norm = torch.where(ok, lp_norm(cand - x[rows], p), torch.inf)
        better = norm < best_norm[rows]
        best[rows[better]] = cand[better]
        best_norm[rows[better]] = norm[better]
    return best, torch.isfinite(best_norm)


def _deepfool_attack(f, x, y, p, lo, hi, tol, **params):
    return _deepfool(f, x, y, p, lo, hi, **params)


def _bim_attack(f, x, y, p, lo, hi, tol, **params):
    return _bim_bisection(f, x, y, lo, hi, tol, **params)


def _ifgsm_attack(f, x, y, p, lo, hi, tol, **params):
    return _bim_bisection(f, x, y, lo, hi, tol, attack=lambda *a: _ifgsm(*a, **params))


def _ddn_attack(f, x, y, p, lo, hi, tol, **params):
    return _ddn(f, x, y, lo, hi, **params)


def _cw_attack(f, x, y, p, lo, hi, tol, **params):
    return _cw(f, x, y, lo, hi, **params)


# name -> attack(f, x, y, p, lo, hi, tol, **params) -> (x_adv, hit)
ATTACKS = {
    "fab": _fab_attack,
    "deepfool": _deepfool_attack,
    "bim": _bim_attack,
    "ifgsm": _ifgsm_attack,
    "ddn": _ddn_attack,
    "cw": _cw_attack,
}
# The norms each attack supports.
NORMS = {
    "fab": (np.inf, 2),
    "deepfool": (np.inf, 2),
    "bim": (np.inf,),
    "ifgsm": (np.inf,),
    "ddn": (2,),
    "cw": (2,),
}
# method="auto": (attack, params) pairs run in turn, each sample keeping its minimum.
# L∞: FAB, then FAB targeted at the second-nearest class (linearised), the minimum kept:
# measured against exact MILP minima (benchmarks/bench_exact_relu.py).
AUTO = {
    np.inf: (("fab", {"targets": 1, "target_steps": 8}),),
    2: (("fab", {"steps": 7}), ("ddn", {"steps": 30})),
}


def run_attack(method, f, x, y, p, lo, hi, tol, **params):
    """Run the attack ``method`` (an error for an unknown name or an unsupported norm)."""
    if method not in ATTACKS:
        raise ValueError(f"Unknown attack {method!r}; choose from {sorted(ATTACKS)}.")
    if p not in NORMS[method]:
        raise ValueError(f"method={method!r} does not support norm={p}.")
    return ATTACKS[method](f, x, y, p, lo, hi, tol, **params)
