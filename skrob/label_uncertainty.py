"""Label uncertainty and intrinsic robustness under a label-uncertainty constraint (paper 004).

Label uncertainty ``LU = 1 - η_y + max_{y' != y} η_{y'}`` (in [0, 2]) measures how much the
people (or neighbours) labelling an input disagree with its dataset label ``y``. Zhang &
Evans (ICLR 2022) estimate intrinsic robustness by concentration of measure -- the smallest
ε-expansion of a region of measure ``alpha`` -- with the region restricted to inputs of high
label uncertainty, as real classifiers' errors are.
"""

import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_consistent_length, validate_data

from skrob._compat import Interval, StrOptions, _fit_context, validate_params
from skrob._concentration import measure, place_regions
from skrob._search.exact import centred_unit
from skrob._validation import (
    check_label_kinds,
    check_numeric_columns,
    warn_on_scales,
    warn_user,
)

# Held-out rows centred and measured at once.
_MEASURE_CHUNK = 4096


@validate_params(
    {
        "soft_labels": ["array-like", "sparse matrix"],
        "y": ["array-like"],
        "classes": ["array-like", None],
        "normalize": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def label_uncertainty(soft_labels, y, *, classes=None, normalize=False):
    """Label uncertainty ``LU = 1 - η_y + max_{y' != y} η_{y'}`` of every sample.

    ``y`` is the dataset's label, not the argmax of η: a sample whose annotators mostly
    chose another class has ``LU > 1``.

    Parameters
    ----------
    soft_labels : array-like of shape (n_samples, n_classes)
        η: per sample, a probability distribution over the classes (human soft labels,
        :func:`knn_soft_labels`, or a model's ``predict_proba``, which gives an
        "estimated" LU).
    y : array-like of shape (n_samples,)
        Dataset labels: column indices of ``soft_labels``, or entries of ``classes``.
    classes : array-like of shape (n_classes,), default=None
        The class of each column (e.g. a model's ``classes_``). None: ``y`` holds column
        indices, or else labels of every class, the columns being in ``np.unique(y)``
        order (as :func:`knn_soft_labels` gives them), so that
        ``label_uncertainty(knn_soft_labels(X, y), y)`` works for any labels.
    normalize : bool, default=False
        Accept non-negative counts (e.g. annotator votes) and divide every row by its sum.

    Returns
    -------
    lu : ndarray of shape (n_samples,), values in [0, 2]

    References
    ----------
    X. Zhang, D. Evans. Understanding Intrinsic Robustness Using Label Uncertainty.
    ICLR 2022 (paper 004).

    Examples
    --------
    >>> from skrob.label_uncertainty import label_uncertainty
    >>> label_uncertainty([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3]], [0, 2]).round(2).tolist()
    [0.2, 1.2]
    >>> label_uncertainty([[8, 2], [5, 5]], [0, 1], normalize=True).round(2).tolist()
    [0.4, 1.0]
    """
    eta = check_array(
        check_numeric_columns(soft_labels, "soft_labels"),
        dtype=np.float64,
        input_name="soft_labels",
    )
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be one label per sample, got shape {y.shape}.")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError("Input y contains NaN or infinity.")
    check_consistent_length(eta, y)
    n, k = eta.shape
    if k < 2:
        raise ValueError(f"soft_labels needs at least two classes (columns), got {k}.")
    if (eta < 0).any():
        raise ValueError("soft_labels must be non-negative.")
    sums = eta.sum(axis=1)
    if normalize:
        if (sums == 0).any():
            raise ValueError("A row of soft_labels sums to 0: it cannot be normalised.")
        eta = eta / sums[:, None]
    elif not np.allclose(sums, 1.0, rtol=0, atol=1e-6):
        worst = int(np.argmax(np.abs(sums - 1)))
        raise ValueError(
            f"Every row of soft_labels must sum to 1 (row {worst} sums to {sums[worst]:.6g}); "
            "pass normalize=True for counts."
        )
    if classes is None:
        indices = y.dtype.kind in "iu" and y.size and y.min() >= 0 and y.max() < k
        if not indices:
            present = np.unique(check_label_kinds(y))
            if present.size != k:
                raise ValueError(
                    f"Without classes, y must hold column indices in [0, {k}), or labels of "
                    f"all {k} classes (the columns in np.unique(y) order, as knn_soft_labels "
                    f"gives them); y has {present.size} distinct labels. Pass classes= "
                    "(e.g. model.classes_)."
                )
            classes = present
    if classes is None:
        column = y.astype(np.intp)
    else:
        classes = np.asarray(classes)
        if classes.shape != (k,):
            raise ValueError(f"classes must have one entry per column ({k}), got {classes.shape}.")
        if np.unique(classes).size != k:
            raise ValueError(f"classes must be distinct; got {classes.tolist()}.")
        order = np.argsort(classes, kind="stable")
        pos = np.searchsorted(classes[order], y)
        pos = np.minimum(pos, k - 1)
        unknown = classes[order][pos] != y
        if unknown.any():
            raise ValueError(f"Labels not in classes: {np.unique(y[unknown])[:10].tolist()}.")
        column = order[pos]
    rows = np.arange(n)
    own = eta[rows, column]
    others = eta.copy()
    others[rows, column] = -np.inf
    return 1.0 - own + others.max(axis=1)


def _check_labels(y):
    """Class labels: one per sample, finite, of one kind (numbers or strings)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be one label per sample (1-D), got shape {y.shape}.")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError("Input y contains NaN or infinity.")
    return check_label_kinds(y)


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        "y": ["array-like"],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "metric": [str, callable],
        "n_jobs": [Integral, None],
        "metric_params": [dict, None],
    },
    prefer_skip_nested_validation=True,
)
def knn_soft_labels(X, y, n_neighbors=10, *, metric="euclidean", n_jobs=None, metric_params=None):
    """Estimate η(x) by the labels of the ``n_neighbors`` nearest other samples.

    Use it when no human soft labels exist; the LU computed from it is an estimate that
    reflects how mixed the classes are around each sample in input space.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    n_neighbors : int, default=10
        Neighbours per sample, the sample itself excluded.
    metric : str or callable, default="euclidean"
        As in :class:`sklearn.neighbors.NearestNeighbors`.
    n_jobs : int, default=None
    metric_params : dict, default=None
        Keyword arguments of the metric, as in :class:`sklearn.neighbors.NearestNeighbors`.

    Returns
    -------
    soft_labels : ndarray of shape (n_samples, n_classes)
        Columns in the order of ``np.unique(y)``; rows sum to 1.

    References
    ----------
    X. Zhang, D. Evans. Understanding Intrinsic Robustness Using Label Uncertainty.
    ICLR 2022 (paper 004).

    Examples
    --------
    >>> import numpy as np
    >>> from skrob.label_uncertainty import knn_soft_labels, label_uncertainty
    >>> X = np.array([[0.0], [0.1], [0.2], [1.0], [1.1], [1.2]])
    >>> y = np.array([0, 0, 1, 1, 1, 1])
    >>> eta = knn_soft_labels(X, y, n_neighbors=2)
    >>> eta[2].tolist(), float(label_uncertainty(eta, y)[2])
    ([1.0, 0.0], 2.0)
    """
    X = check_array(check_numeric_columns(X), accept_sparse="csr", input_name="X")
    y = _check_labels(y)
    check_consistent_length(X, y)
    warn_on_scales(X, metric, "knn_soft_labels")
    if n_neighbors >= X.shape[0]:
        raise ValueError(f"n_neighbors={n_neighbors} needs more than {n_neighbors} samples.")
    from skrob._label_issues import nearest_neighbours, vote_counts

    classes, codes = np.unique(y, return_inverse=True)
    neighbors, _ = nearest_neighbours(
        X,
        n_neighbors,
        metric=metric,
        metric_params=metric_params,
        cuts=(n_neighbors,),  # the vote reads the set only
        n_jobs=n_jobs,
    )
    return vote_counts(codes[neighbors], classes.size) / n_neighbors


class IntrinsicRobustnessEstimator(BaseEstimator):
    """Intrinsic robustness by concentration of measure, with a label-uncertainty constraint.

    The greedy union-of-regions estimate of Zhang & Evans (ICLR 2022), as their reference
    code computes it, made fast:

    - the data are split in halves (``random_state``); on the first half, ``n_regions``
      regions are placed one at a time to cover ``⌈n α (1 + δ)⌉`` samples;
    - in round t every sample is tried as a centre; the region covers the s nearest
      still-uncovered samples, s from ``⌈remaining / (T - t)⌉`` up to ``remaining``, with
      its radius just below the distance to the (s+1)-th (by the relative
      ``RADIUS_MARGIN``, so that the estimate is unit-free); among the
      candidates whose newly covered samples have mean LU >= ``gamma``, the one with the
      fewest newly reached samples (within radius + ε, not reached before) minus newly
      covered ones wins (ties: the lowest centre index, then the smallest s);
    - ``norm=2``: balls; ``norm=np.inf``: cubes (Chebyshev distance), one half-width per
      region;
    - the other half measures ``risk_`` (the share inside a region),
      ``adversarial_risk_`` (within radius + ε of a region) and
      ``intrinsic_robustness_ = 1 - adversarial_risk_``.

    The reference code recomputes every centre's distances for every candidate size;
    here each centre's ⌈n α (1 + δ)⌉ + 17 nearest samples are sorted once (memory
    O(n · n α), not O(n²): up to 65,536 samples, 7 bytes a listed pair for L2 and 8 for
    L∞, each distance a fixed-point code whose rounding the bounds carry), and each
    round is one compiled pass of cumulative counts over each list, with a full distance
    row only for the few centres whose counts the lists and a distance profile cannot
    settle. The neighbour lists of the last data are cached, so an ε or γ grid on the
    same data computes them once. When no candidate meets ``gamma`` in a round, a
    warning says so and the round is recorded as infeasible; placement stops there, as
    later rounds would try a subset of the same candidates (the reference code would
    silently repeat the previous region).

    Parameters
    ----------
    epsilon : float >= 0
        Perturbation budget, in the norm ``norm``.
    alpha : float in (0, 1), default=0.05
        Measure of the error region (the classifier's risk).
    gamma : float in [0, 2], default=0.17
        Least mean label uncertainty of each region's covered samples; 0 means no
        constraint (standard concentration).
    norm : {2, np.inf}, default=2
    n_regions : int, default=5
    delta : float >= 0, default=0.05
        Extra coverage on the first half, against overfitting: ``⌈n α (1 + δ)⌉``.
    train_size : float in (0, 1), default=0.5
        Share of the samples on which the regions are placed.
    random_state : int, RandomState instance or None, default=None
        The split.
    verbose : int, default=0
        Show progress bars (the neighbour lists' blocks, then the regions) when positive.

    Attributes
    ----------
    centers_ : ndarray of shape (n_placed, n_features)
    radii_ : ndarray of shape (n_placed,)
    region_label_uncertainty_ : ndarray of shape (n_placed,)
        Mean LU of the samples each region newly covered on the first half.
    rounds_ : list of dict
        Per round: ``status`` ("placed", or "infeasible" for the last), sizes tried, and for placed
        regions the centre, radius, newly covered and reached counts.
    train_indices_, test_indices_ : ndarray
        The two halves.
    train_risk_, train_adversarial_risk_, train_label_uncertainty_ : float
        On the first half: covered share, reached share, mean LU of the covered.
    risk_, adversarial_risk_, intrinsic_robustness_, label_uncertainty_ : float
        The same on the other half, and ``1 - adversarial_risk_``; NaN when the regions
        cover fewer than ``⌈n α⌉`` samples of the first half (``complete_`` False).
    complete_ : bool
        Whether the regions cover at least ``⌈n α⌉`` samples of the first half.
    n_features_in_ : int

    References
    ----------
    X. Zhang, D. Evans. Understanding Intrinsic Robustness Using Label Uncertainty.
    ICLR 2022 (paper 004).

    Examples
    --------
    >>> import numpy as np
    >>> from skrob.label_uncertainty import IntrinsicRobustnessEstimator
    >>> rng = np.random.default_rng(0)
    >>> X, lu = rng.normal(size=(400, 5)), rng.uniform(0, 1, 400)
    >>> est = IntrinsicRobustnessEstimator(0.5, alpha=0.1, gamma=0.3, random_state=0)
    >>> est = est.fit(X, lu)
    >>> 0 <= est.intrinsic_robustness_ <= 1
    True
    """

    _parameter_constraints = {
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, 1, closed="neither")],
        "gamma": [Interval(Real, 0, 2, closed="both")],
        "norm": [Real, StrOptions({"inf"})],
        "n_regions": [Interval(Integral, 1, None, closed="left")],
        "delta": [Interval(Real, 0, float(np.finfo(np.float64).max), closed="both")],
        "train_size": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        epsilon,
        *,
        alpha=0.05,
        gamma=0.17,
        norm=2,
        n_regions=5,
        delta=0.05,
        train_size=0.5,
        random_state=None,
        verbose=0,
    ):
        self.epsilon = epsilon
        self.alpha = alpha
        self.gamma = gamma
        self.norm = norm
        self.n_regions = n_regions
        self.delta = delta
        self.train_size = train_size
        self.random_state = random_state
        self.verbose = verbose

    def _norm(self):
        if self.norm == "inf" or (isinstance(self.norm, Real) and np.isinf(self.norm)):
            return np.inf
        if self.norm == 2:
            return 2
        raise ValueError(f"norm must be 2 or np.inf, got {self.norm!r}.")

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Place the regions on one half of ``X`` and measure them on the other.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            The label uncertainty of every sample, in [0, 2] (see :func:`label_uncertainty`).

        Returns
        -------
        self : object
        """
        norm = self._norm()
        if np.asarray(y).dtype.kind in "USV":  # strings: not label uncertainties
            raise ValueError(
                "y must be the label uncertainty of every sample, numbers in [0, 2]; got "
                f"dtype {np.asarray(y).dtype} (compute it with label_uncertainty)."
            )
        # float32 X stays float32 (centred halves are float64 copies): no float64 copy of X
        X, lu = validate_data(
            self, check_numeric_columns(X), y, dtype=[np.float64, np.float32], y_numeric=True
        )
        lu = np.asarray(lu, dtype=np.float64)
        warn_on_scales(X, "euclidean", type(self).__name__)
        if lu.ndim != 1:
            raise ValueError("y must be one label uncertainty per sample.")
        if lu.min() < 0 or lu.max() > 2:
            raise ValueError(
                f"Label uncertainty lies in [0, 2]; got values in [{lu.min():.4g}, {lu.max():.4g}]."
            )
        n = X.shape[0]
        n_train = int(round(self.train_size * n))
        if n_train < 2 or n - n_train < 1:
            raise ValueError(f"{n} samples are too few to split into two halves.")
        perm = check_random_state(self.random_state).permutation(n)
        self.train_indices_ = np.sort(perm[:n_train])
        self.test_indices_ = np.sort(perm[n_train:])
        # Regions are placed on X centred and scaled by powers of two (distances neither
        # overflow nor underflow); radii and epsilon are converted, centres taken from X.
        # Each half centred on its own: no centred copy of the whole of X.
        Xa, scaling = centred_unit(X, self.train_indices_)
        g, _, h = scaling
        eps = self.epsilon * g * h
        lua = lu[self.train_indices_]
        placed = place_regions(
            Xa,
            lua,
            norm=norm,
            epsilon=eps,
            alpha=self.alpha,
            gamma=self.gamma,
            n_regions=self.n_regions,
            delta=self.delta,
            verbose=self.verbose,
        )
        if placed.infeasible_round is not None:
            t, n_lower, remaining = placed.infeasible_round
            warn_user(
                f"Round {t}: no centre and size in [{n_lower}, {remaining}] gives a "
                f"region whose covered samples have mean label uncertainty >= "
                f"{self.gamma}; no further region placed.",
            )
        self._record(placed, X, lua, g, h)
        centres = Xa[placed.centers]
        del Xa
        # the other half by chunks of rows: no centred copy of all of it beside the lists
        test = self.test_indices_
        inside, near = np.zeros(test.size, dtype=bool), np.zeros(test.size, dtype=bool)
        for s in range(0, test.size, _MEASURE_CHUNK):
            Xb = centred_unit(X, test[s : s + _MEASURE_CHUNK], scaling)[0]
            part = slice(s, s + Xb.shape[0])
            inside[part], near[part] = measure(Xb, centres, placed.radii, eps, norm)
        self.risk_ = float(inside.mean())
        self.adversarial_risk_ = float(near.mean())
        # Without a region of measure alpha the bound is about no classifier: say so.
        covered = placed.covered
        self.complete_ = bool(covered.sum() >= math.ceil(n_train * self.alpha))
        self.intrinsic_robustness_ = 1.0 - self.adversarial_risk_ if self.complete_ else np.nan
        if not self.complete_:
            warn_user(
                f"The regions cover {int(covered.sum())} samples of the first half, fewer "
                f"than alpha * n = {math.ceil(n_train * self.alpha)}: intrinsic_robustness_ "
                "is NaN (no error region of measure alpha meets the constraint).",
            )
        lub = lu[self.test_indices_]
        self.label_uncertainty_ = float(lub[inside].mean()) if inside.any() else np.nan
        return self

    def _record(self, placed, X, lua, g, h):
        """Fitted attributes of a placement, in X's units."""
        centers = self.train_indices_[placed.centers]
        self.centers_ = np.asarray(X[centers], dtype=np.float64).reshape(len(centers), X.shape[1])
        with np.errstate(over="ignore"):
            self.radii_ = np.asarray(placed.radii, dtype=np.float64) / h / g
        self.rounds_ = []
        for record in placed.rounds:
            record = dict(record)
            if record["status"] == "placed":
                record["center"] = int(self.train_indices_[record["center"]])
                record["radius"] = record["radius"] / h / g
            self.rounds_.append(record)
        self.region_label_uncertainty_ = np.asarray(placed.region_lu, dtype=np.float64)
        self.train_risk_ = float(placed.covered.mean())
        self.train_adversarial_risk_ = float(placed.reached.mean())
        covered = placed.covered
        self.train_label_uncertainty_ = float(lua[covered].mean()) if covered.any() else np.nan

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
