"""Decision-based minimal distortion: the smallest perturbation found from ``predict``
alone (HopSkipJump, RayS), for any classifier and Pipeline."""

from numbers import Integral, Real

import numpy as np

from skrob._compat import HasMethods, Interval, StrOptions, validate_params
from skrob._progress import progress_bar
from skrob._validation import (
    check_classifier,
    check_norm,
    entropy,
    warn_user,
)
from skrob.distortion import _attacks as attacks
from skrob.distortion._common import _check_data, _predict

_MAX = float(np.finfo(np.float64).max)  # finite parameters: Interval(..., None) admits inf


# --------------------------------------------------------------------------- classifiers
_DECISION_PARAMS = {
    "estimator": [HasMethods(["predict"])],
    "X": ["array-like", "sparse matrix"],  # sparse: check_array's own error (densify it)
    "y": ["array-like"],
    "norm": [StrOptions({"inf"}), Real],
    "method": [StrOptions({"auto", "hsj", "ray"})],
    "clip": [tuple, list, None],
    "max_queries": [Interval(Integral, 100, None, closed="left")],
    "tol": [Interval(Real, 0, 0.1, closed="neither")],
    "n_starts": [Interval(Integral, 1, None, closed="left")],
    "random_state": ["random_state"],
    "return_adversarial": ["boolean"],
    "verbose": ["verbose"],
}


@validate_params(_DECISION_PARAMS, prefer_skip_nested_validation=True)
def decision_based_distortion(
    estimator,
    X,
    y,
    *,
    norm=np.inf,
    method="auto",
    clip=None,
    max_queries=5000,
    tol=1e-4,
    n_starts=3,
    random_state=None,
    return_adversarial=False,
    verbose=0,
):
    """Smallest perturbation found that changes each correct prediction, from ``predict``.

    A decision-based attack: it needs nothing of the model but ``predict``, so it measures
    any fitted classifier (gradient boosting, forests, SVMs, k-nearest neighbours, a
    Pipeline of them) in the units of its input. Each sample starts from the nearest
    rows of X that the model predicts differently (``n_starts`` of them), bisected to the
    decision boundary; then

    - ``method="hsj"``: HopSkipJump (Chen, Jordan & Wainwright, 2020; L2 and L∞): the
      boundary's normal is estimated from the labels of random probes around the current
      boundary point, a geometric step follows it, and a bisection returns to the
      boundary;
    - ``method="ray"`` (L∞ only): RayS (Chen & Gu, 2020): the smallest radius along sign
      directions, improved by flipping blocks of signs;
    - ``method="auto"``: L∞ runs the ray search on half the budget, then HopSkipJump from
      its best point; L2 runs HopSkipJump.

    All samples advance together, so each ``predict`` call carries many rows. Every
    returned point is checked by ``predict`` (its label differs from y) and lies in the box;
    norms are computed in float64. The result is an upper bound on the true minimal
    distortion (:func:`exact_distortion` gives the minimum where it is known).

    Parameters
    ----------
    estimator : fitted classifier with ``predict``
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        True labels.
    norm : np.inf or 2, default=np.inf
    method : {"auto", "hsj", "ray"}, default="auto"
    clip : (low, high) or None, default=None
        The box the perturbed points must stay in: each side None (open), a number, or one
        number per feature. X must lie inside it.
    max_queries : int, default=5000
        Rows of ``predict`` each sample may ask (its query budget).
    tol : float, default=1e-4
        Relative precision of each bisection to the boundary.
    n_starts : int, default=3
        Differently predicted rows of X each sample starts from.
    random_state : int, RandomState instance or None, default=None
    return_adversarial : bool, default=False
        Also return the adversarial points (NaN rows where there is none) and the success
        mask, ``(distortion, X_adv, success)`` as :func:`skrob.torch.minimal_distortion`.
    verbose : int, default=0
        Show a progress bar over the queries (up to ``max_queries`` per correctly
        classified sample) when positive.

    Returns
    -------
    distortion : ndarray of shape (n_samples,)
        NaN for samples misclassified to begin with; ``inf`` where no adversarial point was
        found inside the box within the budget.
    X_adv : ndarray of shape (n_samples, n_features), only with ``return_adversarial``
    success : ndarray of shape (n_samples,), bool, only with ``return_adversarial``
        Where a verified adversarial point was found (the finite distortions).

    References
    ----------
    How Training Data Affect the Accuracy and Robustness of Neural Networks for Image
    Classification. Anonymous authors, ICLR 2019 conference submission (paper 002),
    https://openreview.net/forum?id=HklKWhC5F7

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from skrob import decision_based_distortion
    >>> X, y = load_iris(return_X_y=True)
    >>> forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    >>> d = decision_based_distortion(forest, X[:5], y[:5], max_queries=500, random_state=0)
    >>> bool((d > 0).all())
    True
    """
    owner = "decision_based_distortion"
    norm = check_norm(norm, owner)
    if method == "ray" and norm != np.inf:
        raise ValueError("method='ray' searches sign directions: it is L∞ only (norm=np.inf).")
    wrap, X, y, lo, hi = _check_data(X, y, clip, owner)
    check_classifier(estimator, owner, y)
    out = np.full(len(y), np.nan)
    X_adv = np.full(X.shape, np.nan)
    pred = _predict(estimator, wrap, X, y)
    correct = np.flatnonzero(pred == y)
    if correct.size:
        rng = np.random.default_rng(entropy(random_state))
        x0 = X[correct]
        bar = progress_bar(verbose, max_queries * correct.size, "decision-based", unit="query")
        oracle = attacks.Oracle(estimator, wrap, y[correct], max_queries, bar)
        idx = np.arange(correct.size)
        xb = _starting_points(oracle, x0, y[correct], X, pred, lo, hi, norm, rng, tol, n_starts)
        xb = _search(oracle, x0, xb, idx, lo, hi, norm, method, rng, tol)
        # the final check: every point kept is adversarial and in the box
        found = np.flatnonzero(np.isfinite(xb[:, 0]))
        ok = oracle(xb[found], idx[found]) & np.all((xb[found] >= lo) & (xb[found] <= hi), axis=1)
        if not ok.all():  # only a model whose predictions change from call to call
            warn_user(
                f"{int((~ok).sum())} adversarial points did not change "
                f"{type(estimator).__name__}'s prediction when checked again; they are "
                "dropped (inf)."
            )
        xb[found[~ok]] = np.nan
        d = np.full(correct.size, np.inf)
        good = found[ok]
        d[good] = attacks.distance(xb[good], x0[good], norm)
        out[correct] = d
        X_adv[correct] = xb
        bar.close()
    if return_adversarial:
        return out, X_adv, np.isfinite(out)
    return out


def _search(oracle, x0, xb, idx, lo, hi, norm, method, rng, tol):
    """The attack phases of ``method``, each on its share of the remaining budget."""
    if method == "ray" or method == "auto":
        # L2 too: the sign directions find the axis-aligned regions of trees and forests
        oracle.phase(1.0 if method == "ray" else 0.5 if norm == np.inf else 0.3)
        xr = attacks.ray_search(oracle, x0, _fill(xb, x0), idx, lo, hi, rng, tol)
        if norm == 2:  # the ray's point, bisected along the segment from x0
            f = np.flatnonzero(np.isfinite(xr[:, 0]))
            xr[f] = attacks.bisect(oracle, x0[f], xr[f], idx[f], 2, tol)
        xb = _closer(x0, xb, xr, norm)
    if method in ("hsj", "auto"):
        oracle.phase(0.6 if (method == "auto" and norm == 2) else 1.0)
        found = np.flatnonzero(np.isfinite(xb[:, 0]))
        xb[found], _ = attacks.hop_skip_jump(
            oracle, x0[found], xb[found], idx[found], lo, hi, norm, rng, tol
        )
    if method == "auto" and norm == 2:
        oracle.phase(1.0)
        found = np.flatnonzero(np.isfinite(xb[:, 0]))
        xb[found] = attacks.coordinate_shrink(oracle, x0[found], xb[found], idx[found], norm, tol)
    oracle.phase(1.0)
    return xb


def _fill(xb, x0):
    """Adversarial rows, or the sample itself where there is none (the search skips those)."""
    return np.where(np.isfinite(xb), xb, x0)


def _closer(x0, xa, xb, norm):
    """Per sample, the closer of two adversarial points (NaN rows: none)."""
    da, db = (
        np.where(np.isfinite(x[:, 0]), attacks.distance(np.nan_to_num(x), x0, norm), np.inf)
        for x in (xa, xb)
    )
    return np.where((db < da)[:, None], xb, xa)


def _starting_points(oracle, x0, labels, X, pred, lo, hi, norm, rng, tol, n_starts):
    """Per sample: the best boundary point among its nearest differently predicted rows of
    X (bisected to the boundary), or random points in the box; NaN rows where none."""
    m, d = x0.shape
    best = np.full((m, d), np.nan)
    best_d = np.full(m, np.inf)
    chunk = max(1, 2**22 // max(1, len(X) * d))
    starts, owners = [], []
    classes = np.unique(pred)
    for s in range(0, m, chunk):
        dist = attacks.distance(x0[s : s + chunk, None, :], X[None, :, :], norm)
        # the nearest row of each other predicted class, the n_starts nearest of them:
        # starting towards several classes keeps the search off one class's boundary
        near_d = np.full((dist.shape[0], classes.size), np.inf)
        near_i = np.zeros((dist.shape[0], classes.size), dtype=np.intp)
        for c, cls in enumerate(classes):
            cols = np.flatnonzero(pred == cls)
            dc = dist[:, cols]
            dc[labels[s : s + chunk] == cls] = np.inf
            j = np.argmin(dc, axis=1)
            near_i[:, c], near_d[:, c] = cols[j], dc[np.arange(len(j)), j]
        k = min(n_starts, classes.size)
        pick = np.argsort(near_d, axis=1)[:, :k]
        for j in range(k):
            col = pick[:, j]
            rows = near_i[np.arange(col.size), col]
            keep = np.isfinite(near_d[np.arange(col.size), col])
            starts.append(X[rows[keep]])
            owners.append(s + np.flatnonzero(keep))
    if starts:
        owner = np.concatenate(owners)
        start = np.concatenate(starts)
        if owner.size:
            b = attacks.bisect(oracle, x0[owner], start, owner, norm, tol)
            bd = attacks.distance(b, x0[owner], norm)
            order = np.lexsort((bd, owner))  # per owner, its closest first
            first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
            best[owner[first]], best_d[owner[first]] = b[first], bd[first]
    # Samples with no differently predicted row: random points, wider and wider
    std = X.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    for k in range(12):
        none = np.flatnonzero(~np.isfinite(best_d))
        if not none.size:
            break
        if np.all(np.isfinite(hi - lo)):
            cand = rng.uniform(lo, hi, (none.size, d))
        else:
            cand = x0[none] + rng.standard_normal((none.size, d)) * std * 2.0**k
            cand = np.clip(cand, lo, hi)
        adv = oracle(cand, none)
        hit = none[adv]
        if hit.size:
            b = attacks.bisect(oracle, x0[hit], cand[adv], hit, norm, tol)
            best[hit], best_d[hit] = b, attacks.distance(b, x0[hit], norm)
    return best
