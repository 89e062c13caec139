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

    def __init__(self, estimator, wrap, labels, max_queries, bar=None):
        self.estimator, self.wrap, self.labels = estimator, wrap, labels
        self.bar = bar  # a progress bar over the queries (skrob._progress)
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
        if self.bar is not None:
            self.bar.update(len(Z))
        return out

    def left(self, idx):
        return self.limit[idx] - self.queries[idx]


def distance(a, b, norm):
    diff = a - b
    if norm == np.inf:
        return np.abs(diff).max(axis=-1)
    return np.sqrt(np.einsum("...i,...i->...", diff, diff))


# Points tried per sample in each predict call of a line search: the bracket shrinks
# (POINTS + 1)-fold per call. A model's predict has a fixed cost per call (a forest's is
# about a millisecond), so fewer, larger calls win over queries spent.
POINTS = 4


def line_search(oracle, point, idx, lo, hi, tol, points=POINTS):
    """Smallest ``s`` in ``(lo, hi]`` with ``point(rows, s)`` adversarial, per row.

    ``point(rows, s)`` builds the candidates of rows ``rows`` at values ``s``; the value
    ``hi`` is adversarial (the bracket's adversarial end is kept), ``lo`` is not. Each call
    tries ``points`` evenly spaced values per row, until ``hi - lo <= tol * hi``.
    """
    lo, hi = lo.astype(float).copy(), hi.astype(float).copy()
    frac = np.arange(1, points + 1) / (points + 1)
    for _ in range(64):
        todo = np.flatnonzero(hi - lo > tol * hi)
        todo = todo[oracle.left(idx[todo]) >= points]
        if not todo.size:
            break
        vals = lo[todo, None] + (hi[todo] - lo[todo])[:, None] * frac  # (m, points)
        rows = np.repeat(todo, points)
        adv = oracle(point(rows, vals.ravel()), idx[rows]).reshape(todo.size, points)
        any_adv = adv.any(axis=1)
        first = np.argmax(adv, axis=1)  # the smallest adversarial value
        new_hi = np.where(any_adv, vals[np.arange(todo.size), first], hi[todo])
        below = np.where(any_adv, first - 1, points - 1)  # the value just under it
        new_lo = np.where(below >= 0, vals[np.arange(todo.size), np.maximum(below, 0)], lo[todo])
        hi[todo], lo[todo] = new_hi, new_lo
    return hi


def bisect(oracle, x0, xa, idx, norm, tol):
    """Boundary points between benign rows x0 and adversarial rows xa (kept adversarial).

    L2 moves along the segment; L∞ projects xa onto the L∞ ball of radius r around x0
    (HopSkipJump's L∞ bisection), which from a point inside an axis-aligned region reaches
    the region's point nearest to x0 exactly.
    """
    if norm == np.inf:

        def point(rows, r):
            return np.clip(xa[rows], x0[rows] - r[:, None], x0[rows] + r[:, None])

        r = line_search(oracle, point, idx, np.zeros(len(x0)), np.abs(xa - x0).max(axis=1), tol)
        return np.clip(xa, x0 - r[:, None], x0 + r[:, None])

    def point(rows, t):
        return x0[rows] + t[:, None] * (xa[rows] - x0[rows])

    t = line_search(oracle, point, idx, np.zeros(len(x0)), np.ones(len(x0)), tol)
    return x0 + t[:, None] * (xa - x0)


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
        # an iteration costs n_eval probes, up to 12 step halvings and two line searches
        alive &= oracle.left(idx) >= n_eval + 12 + 2 * 8 * POINTS
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
        # (1) geometric step search: from xb along v, halving until adversarial again;
        # POINTS halvings per predict call, the largest step that fools the model kept
        xi = best[act] / np.sqrt(t + 1)
        cand = xb[act].copy()
        found = np.zeros(act.size, dtype=bool)
        halve = 0.5 ** np.arange(POINTS)
        for _ in range(-(-12 // POINTS)):
            todo = np.flatnonzero(~found)
            if not todo.size:
                break
            steps = xi[todo, None] * halve  # (m, POINTS), largest first
            c = np.clip(xb[act[todo], None, :] + steps[:, :, None] * v[todo, None, :], lo, hi)
            adv = oracle(c.reshape(-1, d), np.repeat(idx[act[todo]], POINTS))
            adv = adv.reshape(todo.size, POINTS)
            hit = adv.any(axis=1)
            k = np.argmax(adv, axis=1)
            cand[todo[hit]] = c[np.flatnonzero(hit), k[hit]]
            found[todo[hit]] = True
            xi[todo[~hit]] *= 0.5**POINTS
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
        rest = act[~adv]  # this coordinate's move t·δ_i, t in (0, 1]: the smallest that fools
        ir = i[rest]
        full = xb[rest, ir] - x0[rest, ir]
        base = xb[rest]

        def point(rows, t, base=base, ir=ir, full=full, rest=rest):
            c = base[rows].copy()
            c[np.arange(rows.size), ir[rows]] = x0[rest[rows], ir[rows]] + t * full[rows]
            return c

        t = line_search(
            oracle, point, idx[rest], np.zeros(rest.size), np.ones(rest.size), 2.0**-steps
        )
        xb[rest, ir] = x0[rest, ir] + t * full
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
    position = np.empty(d, dtype=np.intp)
    position[perm] = np.arange(d)  # each feature's place in the shuffled order
    level = 0
    while True:
        n_blocks = min(2**level, d)
        block_of = position * n_blocks // d  # (d,): the block of each feature
        act = np.flatnonzero(np.isfinite(r_best) & (oracle.left(idx) >= n_blocks + 8 * POINTS))
        if not act.size:
            if level == 0:
                pts = np.clip(x0 + np.nan_to_num(r_best, posinf=0.0)[:, None] * direction, lo, hi)
                pts[~np.isfinite(r_best)] = np.nan  # no adversarial point on any ray
                return pts
            level = 0
            continue
        # every block's flip at the current radius, many rows per predict call
        wins = np.zeros((act.size, n_blocks), dtype=bool)
        per = max(1, _BLOCK // max(1, act.size * d))
        for b0 in range(0, n_blocks, per):
            blocks = np.arange(b0, min(n_blocks, b0 + per))
            flip = 1.0 - 2.0 * (block_of[None, :] == blocks[:, None])  # (nb, d)
            trial = direction[act, None, :] * flip[None]
            pts = np.clip(x0[act, None, :] + r_best[act, None, None] * trial, lo, hi)
            wins[:, blocks] = oracle(pts.reshape(-1, d), np.repeat(idx[act], blocks.size)).reshape(
                act.size, blocks.size
            )
        rows = np.flatnonzero(wins.any(axis=1))
        if rows.size:
            win = act[rows]
            flipped = wins[rows][:, block_of]  # (w, d): features in a winning block
            combined = np.where(flipped, -direction[win], direction[win])
            several = np.flatnonzero(wins[rows].sum(axis=1) > 1)
            ok = np.ones(rows.size, dtype=bool)
            if several.size:  # every winning block flipped at once, if that fools it too
                pts = np.clip(
                    x0[win[several]] + r_best[win[several], None] * combined[several], lo, hi
                )
                ok[several] = oracle(pts, idx[win[several]])
            first = np.argmax(wins[rows], axis=1)
            single = np.where(block_of[None, :] == first[:, None], -direction[win], direction[win])
            direction[win] = np.where(ok[:, None], combined, single)
            r_best[win] = _radius(
                oracle, x0[win], direction[win], idx[win], lo, hi, r_best[win], tol
            )
        level = level + 1 if n_blocks < d else 0


def _radius(oracle, x0, direction, idx, lo, hi, r_hi, tol):
    """Smallest r in (0, r_hi] with clip(x0 + r·direction) adversarial."""

    def point(rows, r):
        return np.clip(x0[rows] + r[:, None] * direction[rows], lo, hi)

    return line_search(oracle, point, idx, np.zeros(len(x0)), r_hi, tol)
