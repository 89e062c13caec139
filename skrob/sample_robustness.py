"""Sample robustness: the point-wise Lipschitz constant of the label map (paper 000)."""

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_array, check_consistent_length, check_random_state
from sklearn.utils.validation import check_is_fitted

from skrob._compat import (
    Interval,
    StrOptions,
    _check_feature_names_in,
    _fit_context,
    validate_params,
)
from skrob._device import resolve_device
from skrob._search.approximate import approximate_nearest_other_label
from skrob._search.cdist import resolve_metric
from skrob._search.ivf import ivf_nearest_other_label
from skrob._search.lipschitz import (
    lipschitz_max,
    lipschitz_max_query,
    regression_targets,
    robustness_from_q,
)
from skrob._search.neighbors import nearest_in_groups, nearest_other_label, reach_to_robustness
from skrob._validation import (
    check_label_kinds,
    check_numeric_columns,
    encode_classes,
    numeric_table,
    resolve_task,
    warn_on_scales,
)

_COMMON_CONSTRAINTS = {
    "task": [StrOptions({"auto", "classification", "regression"})],
    "metric": [str, callable],
    "metric_params": [dict, None],
    "algorithm": [StrOptions({"auto", "exact", "approximate", "nndescent"})],
    "n_neighbors": [Interval(Integral, 1, None, closed="left")],
    "nprobe": [Interval(Integral, 1, None, closed="left")],
    "device": "no_validation",
    "batch_size": [Interval(Integral, 1, None, closed="left"), None],
    "n_jobs": [Integral, None],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


# At and above this many samples, algorithm="auto" takes the inverted lists for Euclidean
# classification: measured faster than exact there with recall@1 >= 0.99
# (benchmarks/bench_sample_robustness.py --approximate, docs/benchmarks.md).
AUTO_APPROXIMATE_MIN_SAMPLES = 200_000


def _resolve_algorithm(algorithm, task, metric="euclidean", X=None, device=None):
    """The backend behind ``algorithm``: "exact", "ivf" or "nndescent".

    "approximate" is the inverted lists for the Euclidean metric and pynndescent for
    any other; "auto" is exact below ``AUTO_APPROXIMATE_MIN_SAMPLES`` samples and on a
    device (the device runs the exact kernel).
    """
    if algorithm in ("approximate", "nndescent") and task != "classification":
        raise ValueError(
            f"algorithm={algorithm!r} supports classification only; regression needs the "
            "maximum of |y - y'| / d(x, x') over all pairs, which a neighbour index cannot "
            "bound. Use algorithm='exact'."
        )
    if algorithm == "auto":
        dense_and_large = (
            X is not None and not sp.issparse(X) and X.shape[0] >= AUTO_APPROXIMATE_MIN_SAMPLES
        )
        euclidean = isinstance(metric, str) and metric == "euclidean"
        exact = device is not None or not (dense_and_large and euclidean)
        return "exact" if exact or task != "classification" else "ivf"
    if algorithm == "approximate":
        return "ivf" if isinstance(metric, str) and metric == "euclidean" else "nndescent"
    return algorithm


def _check_sparse(X, task, algorithm):
    """Sparse X: classification with the exact search (euclidean, cosine, cityblock)."""
    if not sp.issparse(X):
        return
    if task != "classification":
        raise ValueError(
            "Sparse X is supported for classification; regression needs every pair's "
            "|y - y'| / d(x, x'): pass X.toarray()."
        )
    if algorithm != "exact":
        raise ValueError(
            "algorithm='approximate' does not take sparse X; use 'exact' (the default below "
            f"{AUTO_APPROXIMATE_MIN_SAMPLES:,} samples)."
        )


def _check_targets(y, task, n_samples):
    """Validate ``y`` for the task; return (task, classes, codes) or (task, Y, norm_inf)."""
    y = np.asarray(y)
    if y.shape[0] != n_samples:
        check_consistent_length(np.empty(n_samples), y)
    if y.dtype.kind in "fc" and not np.all(np.isfinite(y)):
        missing = int(np.isnan(y).sum())
        if missing:
            raise ValueError(
                f"{missing} labels of y are missing (NaN); every sample needs a label: drop "
                "those rows (e.g. df.dropna(subset=[target]))."
            )
        raise ValueError("Input y contains infinity.")
    task = resolve_task(y, task)
    if task == "classification":
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        classes, codes = encode_classes(y)
        return task, classes, codes
    Y, norm_inf = regression_targets(y)
    return task, Y, norm_inf


def _exact(X, codes, *, metric, batch_size, n_jobs, verbose, device=None, **unused):
    return nearest_other_label(
        X,
        codes,
        metric=metric,
        batch_size=batch_size,
        n_jobs=n_jobs,
        verbose=verbose,
        device=device,
    )


# The tuning parameters each backend reads; one it does not read is refused when the
# backend was asked for by name (with algorithm="auto" the data choose it).
_TUNING_DEFAULTS = {"n_neighbors": 30, "nprobe": 48, "batch_size": None}
_TUNING_USED = {
    "exact": {"batch_size"},
    "ivf": {"nprobe"},
    "nndescent": {"n_neighbors"},
    "regression": {"batch_size"},
}


def _refuse_unused(requested, algorithm, task, owner, **tuning):
    """An error naming the tuning parameters set for a backend that ignores them."""
    if requested == "auto":
        return
    backend = algorithm if task == "classification" else "regression"
    unused = sorted(
        k for k, v in tuning.items() if k not in _TUNING_USED[backend] and v != _TUNING_DEFAULTS[k]
    )
    if unused:
        what = {
            "n_neighbors": "the pynndescent graph degree (algorithm='nndescent')",
            "nprobe": "the inverted lists scanned (algorithm='approximate', Euclidean)",
            "batch_size": "the exact kernel's block size",
        }
        raise ValueError(
            f"{owner}: algorithm={requested!r} ({backend} search) does not use "
            + "; ".join(f"{k}={tuning[k]!r}, {what[k]}" for k in unused)
            + ". Leave them at their defaults, or choose the algorithm that reads them."
        )


def _check_device(device, X, task, metric, algorithm):
    """``torch.device`` for ``device`` (None stays None) where the GPU kernel applies."""
    if device is None:
        return None
    if task != "classification" or sp.issparse(X) or metric != "euclidean":
        raise ValueError(
            f"device={device!r} runs the exact Euclidean kernel for class labels on dense X; "
            f"here task={task!r}, metric={metric!r}, sparse X: {sp.issparse(X)}. "
            "Use device=None."
        )
    if algorithm != "exact":
        raise ValueError(f"device={device!r} takes algorithm='exact', not {algorithm!r}.")
    return resolve_device(device)


def _nndescent(X, codes, *, metric, n_neighbors, random_state, n_jobs, verbose, **unused):
    return approximate_nearest_other_label(
        X,
        codes,
        metric=metric,
        n_neighbors=n_neighbors,
        random_state=check_random_state(random_state),
        n_jobs=n_jobs,
        verbose=verbose,
    )


def _ivf(X, codes, *, nprobe, random_state, n_jobs, verbose, **unused):
    return ivf_nearest_other_label(
        X, codes, nprobe=nprobe, random_state=random_state, n_jobs=n_jobs, verbose=verbose
    )


# The neighbour searches behind algorithm=: one signature, (X, codes, **params) -> (reach,
# partner); the metric's backend is chosen inside (skrob._search.neighbors.BACKENDS).
ALGORITHMS = {"exact": _exact, "ivf": _ivf, "nndescent": _nndescent}


def _compute(X, target, task, *, algorithm, **params):
    """Robustness of every sample of a validated (X, target) against itself."""
    if task == "classification":
        _, codes = target
        reach, _ = ALGORITHMS[algorithm](X, codes, **params)
        return reach_to_robustness(reach), reach
    Y, _ = target
    kernel = {k: params[k] for k in ("metric", "batch_size", "n_jobs", "verbose")}
    return robustness_from_q(lipschitz_max(X, Y, **kernel)), None


@validate_params(
    {"X": ["array-like", "sparse matrix"], "y": ["array-like"], **_COMMON_CONSTRAINTS},
    prefer_skip_nested_validation=True,
)
def sample_robustness(
    X,
    y,
    *,
    task="auto",
    metric="euclidean",
    algorithm="auto",
    n_neighbors=30,
    nprobe=48,
    batch_size=None,
    n_jobs=None,
    random_state=None,
    verbose=0,
    metric_params=None,
    device=None,
):
    """Sample robustness of every sample of ``(X, y)`` with respect to ``(X, y)`` itself.

    ``R(z) = 1 / (1 + Q(z) / ||y||_inf)`` with ``Q(z)`` the largest ratio
    ``||y(z) - y(z')|| / d(z, z')`` over the samples ``z'`` labelled differently from
    ``z``. For class labels this is ``r / (r + 1)``, ``r`` the distance from ``z`` to
    the nearest differently labelled sample.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite feature values.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Class labels, or real targets (regression, possibly multi-output).
    task : {"auto", "classification", "regression"}, default="auto"
        "auto" follows :func:`sklearn.utils.multiclass.type_of_target`.
    metric : str or callable, default="euclidean"
        "euclidean" takes the fast float32 GEMM kernel (exact to float64 rounding); any
        other name of :func:`sklearn.metrics.pairwise_distances` that scipy computes
        ("manhattan", "l1", "l2" too) or a callable a blocked float64 ``cdist`` path.
        "seuclidean" and "mahalanobis" take their ``V``/``VI`` from ``X`` when
        ``metric_params`` does not give them.
    algorithm : {"auto", "exact", "approximate", "nndescent"}, default="auto"
        Classification only, for the last three. "approximate": for the Euclidean metric,
        class-pure inverted lists (k-means lists of each class, probed by the other
        classes' samples, on the leading principal components where a quarter of them
        hold 95 % of the variance; ``nprobe`` trades time for recall; the kernels
        compile with numba on the first use in a process, about a second); for another
        metric, pynndescent. "nndescent": pynndescent, one index per class (the first call in a
        process compiles with numba, 1-3 minutes). Approximate reaches are distances to
        real differently labelled samples, re-scored in float64: never below the exact
        reach, so a sample's robustness may be overstated where its nearest differently
        labelled sample is missed (recall@1 measured >= 0.99 at the default ``nprobe``),
        never understated. "auto" is exact below 200,000 samples, and the inverted lists
        (Euclidean classification) from there, where they measured 8x faster on images
        (docs/benchmarks.md); pass "exact" for exact results at any size.
    n_neighbors : int, default=30
        Graph degree of the pynndescent indexes ("nndescent", or "approximate" with a
        non-Euclidean metric).
    nprobe : int, default=48
        Inverted lists of the other classes that each sample scans ("approximate" with
        the Euclidean metric): more is slower and closer to exact.
    batch_size : int, default=None
        Rows per block of the exact kernels (2048 when None); columns per block are twice
        that. Memory is O(batch_size^2), never O(n_samples^2).
    n_jobs : int, default=None
        Blocks run through :class:`joblib.Parallel`: threads with one BLAS thread each, or
        the active joblib backend (e.g. ``joblib.parallel_config(backend="dask")``; the
        data travel to each worker once). None uses every core (or, inside
        ``joblib.parallel_config(n_jobs=...)``, that number); 1 runs the blocks one after
        another with a multi-threaded BLAS.
    random_state : int, RandomState instance or None, default=None
        Seeds the approximate backend.
    verbose : int, default=0
        Show a tqdm progress bar over blocks when positive.
    metric_params : dict, default=None
        Keyword arguments of the metric (e.g. ``{"p": 3}`` for "minkowski").
    device : str or torch.device, default=None
        Run the exact Euclidean kernel (class labels, dense X) through torch on this
        device, e.g. "cuda": the float32 GEMMs and the choice of candidates there, the
        float64 re-scoring on the host, so results equal the CPU kernel's. None: the
        CPU kernel. Needs torch.

    Returns
    -------
    robustness : ndarray of shape (n_samples,)
        Values in [0, 1); 0 for a sample with a differently labelled exact duplicate.

    References
    ----------
    Introducing Sample Robustness. Anonymous authors, ICLR 2021 conference submission
    (paper 000), https://openreview.net/forum?id=8-sxWOto_iI

    Examples
    --------
    >>> from skrob import sample_robustness
    >>> X = [[0.0], [1.0], [3.0], [6.0]]
    >>> y = [0, 0, 1, 1]
    >>> sample_robustness(X, y).round(3)  # reaches 3, 2, 2, 5
    array([0.75 , 0.667, 0.667, 0.833])
    """
    X = check_array(
        check_numeric_columns(X),
        accept_sparse="csr",
        dtype=[np.float64, np.float32],
        ensure_all_finite=True,
        input_name="X",
    )
    task, first, second = _check_targets(y, task, X.shape[0])
    warn_on_scales(X, metric, "sample_robustness")
    metric = resolve_metric(metric, metric_params, X)
    requested, algorithm = algorithm, _resolve_algorithm(algorithm, task, metric, X, device)
    _refuse_unused(
        requested,
        algorithm,
        task,
        "sample_robustness",
        n_neighbors=n_neighbors,
        nprobe=nprobe,
        batch_size=batch_size,
    )
    _check_sparse(X, task, algorithm)
    device = _check_device(device, X, task, metric, algorithm)
    R, _ = _compute(
        X,
        (first, second),
        task,
        metric=metric,
        algorithm=algorithm,
        n_neighbors=n_neighbors,
        nprobe=nprobe,
        batch_size=batch_size,
        n_jobs=n_jobs,
        random_state=random_state,
        verbose=verbose,
        device=device,
    )
    return R


class SampleRobustnessTransformer(TransformerMixin, BaseEstimator):
    """Sample robustness as a scikit-learn transformer.

    ``fit(X, y)`` makes ``(X, y)`` the reference set and stores the robustness of its
    samples in ``robustness_``. ``transform(X)`` gives unlabelled samples the label of
    their nearest reference sample as a pseudo-label and returns their robustness (for
    classification, the largest robustness over the candidate labels), so
    ``fit(X, y).transform(X)`` reproduces ``robustness_``. ``robustness(X, y)`` scores
    labelled samples against the reference set (``R_x(t)`` in paper 000).

    Parameters
    ----------
    task : {"auto", "classification", "regression"}, default="auto"
        See :func:`sample_robustness`.
    metric : str or callable, default="euclidean"
        See :func:`sample_robustness`.
    algorithm : {"auto", "exact", "approximate", "nndescent"}, default="auto"
        Backend for ``fit`` (see :func:`sample_robustness`); ``transform`` and
        ``robustness`` always search exactly.
    n_neighbors : int, default=30
        Graph degree of the pynndescent indexes (see :func:`sample_robustness`).
    nprobe : int, default=48
        Inverted lists scanned per sample (see :func:`sample_robustness`).
    per_class : bool, default=False
        Classification only: ``transform`` returns one column per class,
        ``robustness_<class>``, the robustness a sample would have if labelled that class.
    batch_size : int, default=None
        Rows per block of the exact kernels (2048 when None).
    n_jobs : int, default=None
        joblib parallelism over blocks; None uses every core (see
        :func:`sample_robustness`).
    random_state : int, RandomState instance or None, default=None
        Seeds the approximate backend.
    verbose : int, default=0
        Show a tqdm progress bar when positive.
    metric_params : dict, default=None
        Keyword arguments of the metric; see :func:`sample_robustness`.
    device : str or torch.device, default=None
        Run the exact Euclidean kernel of ``fit``, ``transform`` and ``robustness``
        (class labels) on this torch device; see :func:`sample_robustness`.

    Attributes
    ----------
    robustness_ : ndarray of shape (n_samples,)
        Robustness of the reference samples.
    reach_ : ndarray of shape (n_samples,)
        Distance to the nearest differently labelled sample (classification only).
    classes_ : ndarray of shape (n_classes,)
        Class labels (classification only).
    task_ : str
        "classification" or "regression".
    y_norm_inf_ : float
        ``||y||_inf`` of the reference targets (1.0 for classification).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape ``(n_features_in_,)``
        Feature names seen during fit, when X had string column names.

    References
    ----------
    Introducing Sample Robustness. Anonymous authors, ICLR 2021 conference submission
    (paper 000), https://openreview.net/forum?id=8-sxWOto_iI

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skrob import SampleRobustnessTransformer
    >>> X, y = load_iris(return_X_y=True)
    >>> srt = SampleRobustnessTransformer().fit(X, y)
    >>> srt.robustness_.shape
    (150,)
    >>> bool((srt.transform(X)[:, 0] == srt.robustness_).all())
    True
    """

    _parameter_constraints = {**_COMMON_CONSTRAINTS, "per_class": ["boolean"]}

    def __init__(
        self,
        *,
        task="auto",
        metric="euclidean",
        algorithm="auto",
        n_neighbors=30,
        nprobe=48,
        per_class=False,
        batch_size=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
        metric_params=None,
        device=None,
    ):
        self.task = task
        self.metric = metric
        self.metric_params = metric_params
        self.algorithm = algorithm
        self.n_neighbors = n_neighbors
        self.nprobe = nprobe
        self.per_class = per_class
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Make ``(X, y)`` the reference set and compute its robustness.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self : object
        """
        X, y = numeric_table(self, X, y)
        task, first, second = _check_targets(y, self.task, X.shape[0])
        warn_on_scales(X, self.metric, type(self).__name__)
        if self.per_class and task != "classification":
            raise ValueError("per_class=True is only defined for classification.")
        self._metric = resolve_metric(self.metric, self.metric_params, X)
        algorithm = _resolve_algorithm(self.algorithm, task, self._metric, X, self.device)
        _refuse_unused(
            self.algorithm,
            algorithm,
            task,
            type(self).__name__,
            n_neighbors=self.n_neighbors,
            nprobe=self.nprobe,
            batch_size=self.batch_size,
        )
        _check_sparse(X, task, algorithm)
        self._device = _check_device(self.device, X, task, self._metric, algorithm)
        self.robustness_, reach = _compute(
            X,
            (first, second),
            task,
            metric=self._metric,
            algorithm=algorithm,
            n_neighbors=self.n_neighbors,
            nprobe=self.nprobe,
            batch_size=self.batch_size,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            verbose=self.verbose,
            device=self._device,
        )
        self.task_ = task
        self._fit_X = X
        if task == "classification":
            self.classes_, self._fit_codes = first, second
            self.reach_ = reach
            self.y_norm_inf_ = 1.0
        else:
            self._fit_Y, self.y_norm_inf_ = first, second
        return self

    def _kernel_params(self):
        return dict(
            metric=self._metric,
            batch_size=self.batch_size,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )

    def _class_distances(self, X, exclude=None):
        """(n_queries, n_classes) distance to the nearest reference sample of each class."""
        dist, _ = nearest_in_groups(
            X,
            self._fit_X,
            self._fit_codes,
            len(self.classes_),
            exclude=exclude,
            device=self._device,
            **self._kernel_params(),
        )
        return dist

    def transform(self, X):
        """Robustness of unlabelled samples, pseudo-labelled by their nearest reference.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        R : ndarray of shape (n_samples, 1), or (n_samples, n_classes) with per_class.
        """
        X = self._fitted_input(X)
        return self._transform(X)

    def _fitted_input(self, X):
        """X checked against the fit: numbers only, the fitted number of features."""
        check_is_fitted(self)
        return numeric_table(self, X, reset=False)

    def _transform(self, X, exclude=None):
        if self.task_ == "classification":
            dist = self._class_distances(X, exclude)
            # r_k = min over classes j != k of dist_j: the smallest, or the second
            # smallest for the class that attains the smallest.
            two = np.partition(dist, 1, axis=1)[:, :2]  # fit ensured >= 2 classes
            if not self.per_class:
                return reach_to_robustness(two[:, 1].copy())[:, None]
            nearest = dist.argmin(axis=1)
            reach = np.repeat(two[:, [0]], dist.shape[1], axis=1)
            reach[np.arange(X.shape[0]), nearest] = two[:, 1]
            return reach_to_robustness(reach)
        _, nearest = nearest_in_groups(
            X,
            self._fit_X,
            np.zeros(self._fit_X.shape[0], dtype=np.intp),
            1,
            exclude=exclude,
            **self._kernel_params(),
        )
        q = lipschitz_max_query(
            X,
            self._fit_Y[nearest[:, 0]],
            self._fit_X,
            self._fit_Y,
            exclude=exclude,
            **self._kernel_params(),
        )
        return robustness_from_q(q)[:, None]

    def fit_transform(self, X, y=None, **fit_params):
        """Fit to ``(X, y)``, then give every training row its leave-one-out transform.

        A training row gets what :meth:`transform` would give it if it were not in the
        reference set: its pseudo-label and its distances come from the *other*
        reference samples. Without this, a row would find itself at distance 0 (its own
        label as pseudo-label, and with ``per_class=True`` a distance of 0 to itself
        for every other class): a feature that leaks the label and does not exist at
        predict time. As with scikit-learn's ``TargetEncoder``, ``fit(X, y).transform(X)``
        therefore differs from ``fit_transform(X, y)``; the robustness of the training
        samples themselves is ``robustness_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The reference samples.
        y : array-like of shape (n_samples,)
            Their labels or targets.
        **fit_params : dict
            Passed to :meth:`fit`.

        Returns
        -------
        R : ndarray of shape (n_samples, 1), or (n_samples, n_classes) with per_class.
        """
        self.fit(X, y, **fit_params)
        n = self._fit_X.shape[0]
        return self._transform(self._fit_X, exclude=np.arange(n))

    def robustness(self, X, y):
        """Robustness of labelled samples against the reference set, ``R_x(t)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Labels of ``X``; classes unseen in fit count as different from every class.

        Returns
        -------
        R : ndarray of shape (n_samples,)
        """
        X = self._fitted_input(X)
        y = np.asarray(y)
        check_consistent_length(X, y)
        if y.dtype.kind in "fc" and not np.all(np.isfinite(y)):
            raise ValueError("Input y contains NaN or infinity.")
        if self.task_ == "classification":
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]
            if y.ndim != 1:
                raise ValueError(
                    f"y must be one class label per sample (1-D), got shape {y.shape}."
                )
            y = check_label_kinds(y)
            dist = self._class_distances(X)
            code = np.searchsorted(self.classes_, y)
            code = np.minimum(code, len(self.classes_) - 1)
            known = self.classes_[code] == y
            own = np.arange(X.shape[0])[known], code[known]
            dist[own] = np.inf
            return reach_to_robustness(dist.min(axis=1))
        Y = np.asarray(y, dtype=np.float64).reshape(X.shape[0], -1)
        if Y.shape[1] != self._fit_Y.shape[1]:
            raise ValueError(
                f"y has {Y.shape[1]} outputs, but the reference set was fitted with "
                f"{self._fit_Y.shape[1]}."
            )
        q = lipschitz_max_query(X, Y, self._fit_X, self._fit_Y, **self._kernel_params())
        return robustness_from_q(q)

    def get_feature_names_out(self, input_features=None):
        """Output feature names: "robustness", or "robustness_<class>" per class.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Checked against ``feature_names_in_`` when given; not otherwise used.

        Returns
        -------
        names : ndarray of str
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features, generate_names=False)
        if self.per_class:
            return np.asarray([f"robustness_{c}" for c in self.classes_], dtype=object)
        return np.asarray(["robustness"], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = self.task != "regression"  # CSR: classification only
        return tags
