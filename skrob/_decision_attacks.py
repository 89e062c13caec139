"""Decision-based minimal-distortion attacks: only ``predict`` is called, many rows at once.

- :func:`hop_skip_jump`: HopSkipJump (Chen, Jordan & Wainwright, 2020) for L2 and L∞: a
  Monte-Carlo estimate of the boundary's normal from the labels of random probes around a
  boundary point, a geometric step along it, and a bisection back to the boundary.
- :func:`ray_search`: RayS (Chen & Gu, 2020) for L∞: the smallest radius along sign
  directions ``x + r·d``, ``d ∈ {-1, 1}^d``, improved by flipping blocks of signs at
  halving block sizes; a flip is kept when the current radius already fools the model.

All samples advance together: each ``predict`` call carries the probes of every active
sample. Every point kept is adversarial (checked by a ``predict`` call) and in the box,
so each result is an upper bound on the true minimal distortion.
"""

import numpy as np

# Floats per probe block (rows × features) handed to one predict call.
_BLOCK = 2**22


class Oracle:
    """``predict(Z) != label`` for rows Z, with the number of rows each sample has asked."""

    def __init__(self, estimator, wrap, labels, max_queries):
        self.estimator, self.wrap, self.labels = estimator, wrap, labels
        self.queries = np.zeros(len(labels), dtype=np.int64)
        self.max_queries = max_queries
        self.limit = np.full(len(labels), float(max_queries))

    def phase(self, share):
        """Let each sample spend ``share`` of what it has left, until the next phase."""
        left = self.max_queries - self.queries
        self.limit = self.queries + np.floor(share * left)

    def __call__(self, Z, owner):
        """Z: (m, d) rows; owner: (m,) sample index of each row."""
        if not len(Z):
            return np.zeros(0, dtype=bool)
        step = max(1, _BLOCK // max(1, Z.shape[1]))
        out = np.empty(len(Z), dtype=bool)
        for s in range(0, len(Z), step):
            pred = np.asarray(self.estimator.predict(self.wrap(Z[s : s + step])))
            if pred.shape != (min(step, len(Z) - s),):
                raise ValueError(
                    f"{type(self.estimator).__name__}.predict returned shape {pred.shape}; "
                    "one label per row is needed."
                )
            out[s : s + step] = pred != self.labels[owner[s : s + step]]
        np.add.at(self.queries, owner, 1)
        return out

    def left(self, idx):
        return self.limit[idx] - self.queries[idx]


def distance(a, b, norm):
    diff = a - b
    if norm == np.inf:
        return np.abs(diff).max(axis=-1)
    return np.sqrt(np.einsum("...i,...i->...", diff, diff))


def bisect(oracle, x0, xa, idx, norm, tol):
    """Boundary points between benign rows x0 and adversarial rows xa (kept adversarial).

    L2 moves along the segment; L∞ projects xa onto the L∞ ball of radius r around x0
    (HopSkipJump's L∞ bisection), which from a point inside an axis-aligned region reaches
    the region's point nearest to x0 exactly.
    """
    xa = xa.copy()
    if norm == np.inf:
        lo = np.zeros(len(x0))
        hi = np.abs(xa - x0).max(axis=1)
    else:
        lo, hi = np.zeros(len(x0)), np.ones(len(x0))
    for _ in range(64):
        todo = np.flatnonzero(hi - lo > tol * hi)  # relative to the distance in both norms
        todo = todo[oracle.left(idx[todo]) > 0]
        if not todo.size:
            break
        mid = 0.5 * (lo[todo] + hi[todo])
        if norm == np.inf:
            cand = np.clip(xa[todo], x0[todo] - mid[:, None], x0[todo] + mid[:, None])
        else:
            cand = x0[todo] + mid[:, None] * (xa[todo] - x0[todo])
        adv = oracle(cand, idx[todo])
        hi[todo[adv]] = mid[adv]
        lo[todo[~adv]] = mid[~adv]
    if norm == np.inf:
        return np.clip(xa, x0 - hi[:, None], x0 + hi[:, None])
    return x0 + hi[:, None] * (xa - x0)


def hop_skip_jump(oracle, x0, xb, idx, lo, hi, norm, rng, tol, init_eval=100, max_eval=1000):
    """Improve the boundary points xb of samples ``idx`` until their budgets are spent.

    Each iteration estimates the boundary's normal at the current point from ``n_eval``
    random probes (HopSkipJump's estimate), then tries two moves and keeps the closer
    adversarial result: HopSkipJump's geometric step along the normal followed by a
    bisection back towards x0, and a ray from x0 along a running average of the normals
    (GeoDA's move: on a flat boundary it lands on the nearest point as the average
    converges; for L∞ along its signs).
    """
    m, d = x0.shape
    xb = xb.copy()
    best = distance(xb, x0, norm)
    avg = np.zeros((m, d))
    t = 0
    alive = np.isfinite(best)
    while True:
        n_eval = int(min(max_eval, init_eval * np.sqrt(t + 1)))
        # an iteration costs n_eval probes, up to 12 step halvings and two bisections
        alive &= oracle.left(idx) >= n_eval + 12 + 2 * 20
        act = np.flatnonzero(alive)
        if not act.size:
            break
        grad = np.empty((act.size, d))
        delta = np.maximum(best[act] / d, 10 * tol * best[act])
        per = max(1, _BLOCK // (n_eval * d))
        for s in range(0, act.size, per):
            a = act[s : s + per]
            u = (
                rng.standard_normal((a.size, n_eval, d))
                if norm == 2
                else rng.uniform(-1.0, 1.0, (a.size, n_eval, d))
            )
            u /= np.linalg.norm(u, axis=2, keepdims=True)
            dl = delta[s : s + per, None, None]
            probes = np.clip(xb[a, None, :] + dl * u, lo, hi)
            u = (probes - xb[a, None, :]) / dl  # the directions actually probed
            phi = oracle(probes.reshape(-1, d), np.repeat(idx[a], n_eval)).reshape(a.size, n_eval)
            phi = 2.0 * phi - 1.0
            mean = phi.mean(axis=1, keepdims=True)
            weight = np.where(np.abs(mean) == 1.0, phi, phi - mean)
            grad[s : s + per] = np.einsum("ab,abd->ad", weight, u)
        norms = np.linalg.norm(grad, axis=1, keepdims=True)
        unit = np.divide(grad, norms, out=np.zeros_like(grad), where=norms > 0)
        avg[act] = 0.8 * avg[act] + unit
        v = unit if norm == 2 else np.sign(grad)
        # (1) geometric step search: from xb along v, halving until adversarial again
        xi = best[act] / np.sqrt(t + 1)
        cand = xb[act].copy()
        found = np.zeros(act.size, dtype=bool)
        for _ in range(12):
            todo = np.flatnonzero(~found)
            if not todo.size:
                break
            c = np.clip(xb[act[todo]] + xi[todo, None] * v[todo], lo, hi)
            adv = oracle(c, idx[act[todo]])
            cand[todo[adv]] = c[adv]
            found[todo[adv]] = True
            xi[todo[~adv]] /= 2.0
        ok = act[found]
        if ok.size:
            new = bisect(oracle, x0[ok], cand[found], idx[ok], norm, tol)
            _keep_closer(xb, best, ok, new, x0, norm)
        # (2) the ray from x0 along the averaged normal, checked a little beyond the best
        ray = avg[act] if norm == 2 else np.sign(avg[act])
        rn = distance(ray, 0.0, norm)
        ray = np.divide(ray, rn[:, None], out=np.zeros_like(ray), where=rn[:, None] > 0)
        far = np.clip(x0[act] + 1.05 * best[act, None] * ray, lo, hi)
        hit = oracle(far, idx[act])
        ok2 = act[hit]
        if ok2.size:
            new = bisect(oracle, x0[ok2], far[hit], idx[ok2], 2, tol)  # along the segment
            _keep_closer(xb, best, ok2, new, x0, norm)
        alive[act[~found & ~hit]] &= t < 3  # a sample whose moves never land again is done
        t += 1
    return xb, best


def _keep_closer(xb, best, rows, new, x0, norm):
    nd = distance(new, x0[rows], norm)
    better = nd < best[rows]
    xb[rows[better]], best[rows[better]] = new[better], nd[better]


def coordinate_shrink(oracle, x0, xb, idx, norm, tol, steps=8):
    """Move each coordinate of the adversarial points xb back towards x0 as far as they stay
    adversarial, largest moves first, while the budget lasts.

    Piecewise-constant models (trees, their ensembles, k-nearest neighbours near a vote's
    edge) have axis-aligned decision regions, where a gradient estimate says little: from a
    point inside a leaf box this pass reaches the box's point nearest to x0.
    """
    xb = xb.copy()
    order = np.argsort(-np.abs(xb - x0), axis=1, kind="stable")
    rows = np.arange(len(xb))
    for k in range(x0.shape[1]):
        i = order[:, k]
        act = rows[(np.abs(xb[rows, i] - x0[rows, i]) > 0) & (oracle.left(idx) > steps + 1)]
        if not act.size:
            break
        ia = i[act]
        c = xb[act].copy()
        c[np.arange(act.size), ia] = x0[act, ia]
        adv = oracle(c, idx[act])
        xb[act[adv]] = c[adv]
        rest = act[~adv]  # bisect this coordinate's move: t·δ_i, t in (0, 1]
        ir = i[rest]
        t_lo, t_hi = np.zeros(rest.size), np.ones(rest.size)
        full = xb[rest, ir] - x0[rest, ir]
        for _ in range(steps):
            mid = 0.5 * (t_lo + t_hi)
            c = xb[rest].copy()
            c[np.arange(rest.size), ir] = x0[rest, ir] + mid * full
            adv = oracle(c, idx[rest])
            t_hi = np.where(adv, mid, t_hi)
            t_lo = np.where(adv, t_lo, mid)
        xb[rest, ir] = x0[rest, ir] + t_hi * full
    return xb


def ray_search(oracle, x0, xstart, idx, lo, hi, rng, tol):
    """RayS (L∞) for samples ``idx`` whose search starts towards xstart; adversarial points
    (NaN rows where no ray reached one) once the budget is spent."""
    m, d = x0.shape
    direction = np.sign(xstart - x0)
    direction[direction == 0] = 1.0
    r_best = np.abs(xstart - x0).max(axis=1)
    # the radius along the sign direction itself: grow until adversarial, then bisect
    width = np.where(np.isfinite(hi - lo), hi - lo, np.inf)
    top = np.max(np.where(np.isfinite(width), width, 0.0)) if np.isfinite(width).any() else 0.0
    found = np.zeros(m, dtype=bool)
    r_try = r_best.copy()
    for _ in range(12):
        todo = np.flatnonzero(~found)
        if not todo.size:
            break
        pts = np.clip(x0[todo] + r_try[todo, None] * direction[todo], lo, hi)
        adv = oracle(pts, idx[todo])
        found[todo[adv]] = True
        grow = todo[~adv]
        if top and np.all(r_try[grow] >= top):
            break
        r_try[grow] *= 2.0
    r_best = np.where(found, r_try, np.inf)
    f = np.flatnonzero(found)
    r_best[f] = _radius(oracle, x0[f], direction[f], idx[f], lo, hi, r_best[f], tol)
    perm = rng.permutation(d)
    level = 0
    while True:
        n_blocks = min(2**level, d)
        edges = np.linspace(0, d, n_blocks + 1).astype(int)
        for b in range(n_blocks):
            act = np.flatnonzero(np.isfinite(r_best) & (oracle.left(idx) > 22))
            if not act.size:
                pts = np.clip(x0 + np.nan_to_num(r_best, posinf=0.0)[:, None] * direction, lo, hi)
                pts[~np.isfinite(r_best)] = np.nan  # no adversarial point on any ray
                return pts
            block = perm[edges[b] : edges[b + 1]]
            trial = direction[act].copy()
            trial[:, block] *= -1.0
            pts = np.clip(x0[act] + r_best[act, None] * trial, lo, hi)
            adv = oracle(pts, idx[act])
            win = act[adv]
            if win.size:
                direction[win] = trial[adv]
                r_best[win] = _radius(
                    oracle, x0[win], direction[win], idx[win], lo, hi, r_best[win], tol
                )
        level = level + 1 if n_blocks < d else 0


def _radius(oracle, x0, direction, idx, lo, hi, r_hi, tol):
    """Smallest r in (0, r_hi] with clip(x0 + r·direction) adversarial, by bisection."""
    r_lo = np.zeros(len(x0))
    r_hi = r_hi.copy()
    for _ in range(64):
        todo = np.flatnonzero(r_hi - r_lo > tol * r_hi)
        todo = todo[oracle.left(idx[todo]) > 0]
        if not todo.size:
            break
        mid = 0.5 * (r_lo[todo] + r_hi[todo])
        pts = np.clip(x0[todo] + mid[:, None] * direction[todo], lo, hi)
        adv = oracle(pts, idx[todo])
        r_hi[todo[adv]] = mid[adv]
        r_lo[todo[~adv]] = mid[~adv]
    return r_hi
