"""RPR: randomized perturbation robustness of a fitted model (paper 001).

Perturb a sample again and again (always the original), and count the steps up to and
including the first perturbation the model does not classify as the true label, capped at
``max_steps``: paper 001's convention (its Figure 2: "RPR 47" when the 47th perturbation
fools the model and the 46 before did not). A sample whose RPR reaches ``max_steps`` is
RPR-robust, as in the paper (so one fooled at exactly the last step counts as robust);
the robust fraction of a test set measures the model.

The loop is vectorised: every ``predict`` call takes many perturbed copies of many samples,
samples leave as soon as one copy is misclassified, and rounds of 1, 2, 4, ... 64 steps keep
the extra copies predicted after a failure below the sample's RPR. Randomness is
keyed by (block of ``_GROUP`` consecutive samples, round), never by how rows are batched,
so the same ``random_state`` gives the same steps for every ``batch_size``.
"""

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils import check_consistent_length
from sklearn.utils.validation import check_array, check_is_fitted

from skrob._compat import HasMethods, Interval, StrOptions, validate_params
from skrob._progress import progress_bar
from skrob._scoring import RobustnessScorerMixin
from skrob._validation import (
    check_classifier,
    check_numeric_columns,
    frame_like,
    reject_metadata,
)
from skrob._validation import entropy as seed_entropy
from skrob.perturbations import GaussianNoise, Perturbation, _float_dtype

_GROUP = 16  # samples per random stream
_MAX_ROUND = 64  # steps per sample in one round, at most
_FLIP_ROUND = 128  # perturbed copies per sample and round in label_flip_rate
DEFAULT_BATCH_SIZE = 128  # samples per batch: at most 128 x 64 = 8192 rows per predict call
_ONE = np.ones(1, dtype=bool)


def _schedule(max_steps):
    """Steps per round: 1, 2, 4, ..., 64, 64, ... summing to ``max_steps``."""
    sizes, done, size = [], 0, 1
    while done < max_steps:
        sizes.append(min(size, max_steps - done))
        done += sizes[-1]
        size = min(2 * size, _MAX_ROUND)
    return sizes


def _stream(entropy, group, round_):
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(group, round_)))


class _Data:
    """Rows of X as an array (any number of dimensions); blocks go back as X's type."""

    def __init__(self, X):
        self.wrap = frame_like(X)
        check_numeric_columns(X)
        if hasattr(X, "columns"):
            X = X.to_numpy()
        self.X = check_array(
            X, allow_nd=True, dtype="numeric", ensure_all_finite=True, input_name="X"
        )


def _predict(estimator, data, rows, batch_size):
    parts = []
    for i in range(0, rows.shape[0], batch_size):
        block = rows[i : i + batch_size]
        pred = np.asarray(estimator.predict(data.wrap(block)))
        if pred.shape != (block.shape[0],):
            raise ValueError(
                f"{type(estimator).__name__}.predict returned shape {pred.shape} for "
                f"{block.shape[0]} samples; RPR needs one label per sample (a multi-output "
                "model, or one returning scores or probabilities, does not fit)."
            )
        parts.append(pred)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _check(estimator, X, y, owner="rpr_steps"):
    if not hasattr(estimator, "predict"):
        raise TypeError(f"{estimator!r} has no predict method.")
    check_classifier(estimator, owner, y)
    try:
        check_is_fitted(estimator)
    except (TypeError, AttributeError):
        pass  # duck-typed, not a scikit-learn estimator: its predict will complain
    data = _Data(X)
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be one label per sample, got shape {y.shape}.")
        check_consistent_length(data.X, y)
    return data, y


def _buffer(data, rows, largest_round):
    """One buffer for all rounds (fresh memory for every round costs page faults).

    ``rows`` perturbed rows at most (``batch_size`` samples times the largest round);
    never more than one round can need: a huge ``batch_size`` on a few samples allocates
    only those.
    """
    n = data.X.shape[0]
    rows = max(min(rows, n * largest_round), min(_GROUP, n) * largest_round)
    return np.empty((rows,) + data.X.shape[1:], dtype=_float_dtype(data.X.dtype))


def _perturbed_batches(data, perturbation, entropy, round_, size, active, buffer):
    """Yield ``(owners, rows)``: ``size`` perturbed copies of every active sample.

    Groups of ``_GROUP`` samples draw from the stream of (group, round), as if the whole
    group were perturbed, so a sample's copies never depend on which others are active or
    on the batch size. skrob's own perturbations write straight into ``buffer`` and skip
    inactive samples; any other callable perturbs the whole group, whose active rows are
    then copied in.
    """
    X = data.X
    n, shape = X.shape[0], X.shape[1:]
    in_place = isinstance(perturbation, Perturbation)
    if in_place:  # validate the parameters once, not for every group
        perturbation.check_params()
        perturbation.perturb_rows(np.zeros_like(buffer[:1]), _stream(0, 0, 0), _ONE, check=False)
    owners, filled = [], 0
    for group in np.unique(np.flatnonzero(active) // _GROUP):
        members = np.arange(group * _GROUP, min((group + 1) * _GROUP, n))
        live = active[members]
        need = int(live.sum()) * size
        if filled + need > buffer.shape[0]:
            yield np.concatenate(owners), buffer[:filled]
            owners, filled = [], 0
        rng = _stream(entropy, group, round_)
        rows = buffer[filled : filled + need]
        if in_place:
            rows.reshape((-1, size) + shape)[:] = X[members[live], None]
            perturbation.perturb_rows(rows, rng, np.repeat(live, size), check=False)
        else:
            block = np.asarray(perturbation(np.repeat(X[members], size, axis=0), rng))
            if block.shape != (members.size * size,) + shape:
                raise ValueError(
                    f"The perturbation returned shape {block.shape} for input shape "
                    f"{(members.size * size,) + shape}; it must keep the shape."
                )
            rows[:] = block.reshape((members.size, size) + shape)[live].reshape(rows.shape)
        owners.append(members[live])
        filled += need
    if owners:
        yield np.concatenate(owners), buffer[:filled]


_STEPS_PARAMS = {
    "estimator": [HasMethods(["predict"])],
    "X": ["array-like", "sparse matrix"],
    "y": ["array-like"],
    "perturbation": [callable],
    "max_steps": [Interval(Integral, 1, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left"), None],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


@validate_params(_STEPS_PARAMS, prefer_skip_nested_validation=True)
def rpr_steps(
    estimator,
    X,
    y,
    *,
    perturbation,
    max_steps=250,
    batch_size=None,
    random_state=None,
    verbose=0,
):
    """Each sample's RPR: the step that first fools the model, capped at ``max_steps``.

    Parameters
    ----------
    estimator : fitted estimator with ``predict``
        Any model: scikit-learn estimators, pipelines, skorch nets.
    X : array-like of shape (n_samples, ...)
        Samples, as ``estimator.predict`` takes them (a DataFrame stays one).
    y : array-like of shape (n_samples,)
        True labels.
    perturbation : callable
        ``perturbation(X, rng) -> X_perturbed``, e.g. :class:`skrob.perturbations.PixelNoise`.
    max_steps : int, default=250
    batch_size : int, default=None
        Samples per batch (128 when None): each ``predict`` call carries at most
        ``batch_size`` samples times 64 perturbed copies, and memory is one buffer of
        that many rows. Results do not depend on it.
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
        Show a progress bar over the steps when positive (samples still robust as its
        postfix).

    Returns
    -------
    steps : ndarray of shape (n_samples,), int
        Paper 001's RPR: the (1-based) index of the first of consecutive independent
        perturbations not predicted as ``y``, capped at ``max_steps`` (``max_steps``: the
        sample is RPR-robust, including one first fooled at exactly the last step, as in
        the paper); 0 for samples misclassified without perturbation.

    References
    ----------
    A. Ilie, M. Popescu, A. Stefanescu. Robustness as Inherent Property of Datapoints.
    AISafety workshop at IJCAI-PRICAI 2020, CEUR Workshop Proceedings (paper 001).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skrob.perturbations import PixelNoise
    >>> from skrob.rpr import rpr_steps
    >>> X, y = load_digits(return_X_y=True)
    >>> model = LogisticRegression(max_iter=2000).fit(X / 16, y)
    >>> steps = rpr_steps(model, X[:100] / 16, y[:100], perturbation=PixelNoise(),
    ...                   max_steps=50, random_state=0)
    >>> steps.shape, int(steps.max()) <= 50
    ((100,), True)
    """
    data, y = _check(estimator, X, y)
    entropy = seed_entropy(random_state)
    schedule = _schedule(max_steps)
    per_call = (DEFAULT_BATCH_SIZE if batch_size is None else batch_size) * max(schedule)
    alive = _predict(estimator, data, data.X, per_call) == y
    steps = np.zeros(data.X.shape[0], dtype=np.int64)
    done = 0
    buffer = _buffer(data, per_call, max(schedule))
    bar = progress_bar(verbose, max_steps, "RPR", unit="step")
    for round_, size in enumerate(schedule):
        if not alive.any():
            bar.update(max_steps - done)
            break
        batches = _perturbed_batches(data, perturbation, entropy, round_, size, alive, buffer)
        for owners, rows in batches:
            pred = _predict(estimator, data, rows, per_call).reshape(owners.size, size)
            correct = pred == y[owners][:, None]
            failed = ~correct.all(axis=1)
            # paper 001 counts the step that fools the model: the k-th perturbation -> k
            steps[owners[failed]] = done + np.argmin(correct[failed], axis=1) + 1
            alive[owners[failed]] = False
        done += size
        bar.update(size)
        bar.set_postfix(robust=int(alive.sum()))
    bar.close()
    steps[alive] = max_steps
    return steps


@validate_params(
    {"steps": ["array-like"], "max_steps": [Interval(Integral, 1, None, closed="left")]},
    prefer_skip_nested_validation=True,
)
def rpr_curve(steps, max_steps):
    """Fraction of samples robust with ``MAX_STEPS = s``, for every ``s`` from 1 to ``max_steps``.

    Parameters
    ----------
    steps : array-like of shape (n_samples,)
        Output of :func:`rpr_steps`.
    max_steps : int

    Returns
    -------
    curve : ndarray of shape (max_steps,)
        ``curve[s - 1]`` is the fraction of samples with ``steps >= s`` (those paper 001
        would deem robust with ``MAX_STEPS = s``: its Figure 3); the last value is the
        RPR-robust fraction.

    References
    ----------
    A. Ilie, M. Popescu, A. Stefanescu. Robustness as Inherent Property of Datapoints.
    AISafety workshop at IJCAI-PRICAI 2020, CEUR Workshop Proceedings (paper 001).

    Examples
    --------
    >>> from skrob.rpr import rpr_curve
    >>> rpr_curve([0, 1, 3, 3], max_steps=3).tolist()
    [0.75, 0.5, 0.5]
    """
    steps = np.asarray(steps)
    if steps.ndim != 1 or steps.size == 0:
        raise ValueError("steps must be a non-empty 1-D array.")
    if steps.dtype.kind not in "iu" or steps.min() < 0 or steps.max() > max_steps:
        raise ValueError(f"steps must be integers in [0, max_steps={max_steps}].")
    counts = np.bincount(steps, minlength=max_steps + 1)
    at_least = counts[::-1].cumsum()[::-1]  # at_least[s] = #(steps >= s)
    return at_least[1:] / steps.size


@validate_params(
    {
        "estimator": [HasMethods(["predict"])],
        "X": ["array-like", "sparse matrix"],
        "perturbation": [callable],
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=True,
)
def label_flip_rate(
    estimator, X, *, perturbation, n_samples=1000, batch_size=None, random_state=None, verbose=0
):
    """Per sample, the fraction of perturbed copies predicted differently (paper 003, §4.2).

    Parameters
    ----------
    estimator : fitted estimator with ``predict``
    X : array-like of shape (n_samples, ...)
    perturbation : callable
        ``perturbation(X, rng) -> X_perturbed``.
    n_samples : int, default=1000
        Perturbed copies per sample.
    batch_size : int, default=None
        Samples per batch (128 when None): at most ``batch_size`` times 128 perturbed
        rows per ``predict`` call; results do not depend on it.
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
        Show a progress bar over the perturbed copies when positive.

    Returns
    -------
    rate : ndarray of shape (n_samples_X,)
        Fraction of the copies whose predicted label differs from the prediction for the
        unperturbed sample.

    References
    ----------
    R. Yang, P. Liu, M. Bilgic. The Analysis of the Expected Change in the Classification
    Probability of the Predicted Label. Transactions on Machine Learning Research
    (paper 003), https://openreview.net/forum?id=guqzvUVPiQ

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from skrob.perturbations import GaussianNoise
    >>> from skrob.rpr import label_flip_rate
    >>> X, y = load_iris(return_X_y=True)
    >>> tree = DecisionTreeClassifier(random_state=0).fit(X, y)
    >>> rate = label_flip_rate(tree, X, perturbation=GaussianNoise(0.3), n_samples=200,
    ...                        random_state=0)
    >>> bool(((rate >= 0) & (rate <= 1)).all())
    True
    """
    data, _ = _check(estimator, X, None, "label_flip_rate")
    entropy = seed_entropy(random_state)
    largest = min(_FLIP_ROUND, n_samples)
    per_call = (DEFAULT_BATCH_SIZE if batch_size is None else batch_size) * largest
    reference = _predict(estimator, data, data.X, per_call)
    flips = np.zeros(data.X.shape[0], dtype=np.int64)
    everyone = np.ones(data.X.shape[0], dtype=bool)
    done, round_ = 0, 0
    buffer = _buffer(data, per_call, largest)
    bar = progress_bar(verbose, n_samples, "label flips", unit="copy")
    while done < n_samples:
        size = min(_FLIP_ROUND, n_samples - done)
        batches = _perturbed_batches(data, perturbation, entropy, round_, size, everyone, buffer)
        for owners, rows in batches:
            pred = _predict(estimator, data, rows, per_call).reshape(owners.size, size)
            flips[owners] += (pred != reference[owners][:, None]).sum(axis=1)
        done += size
        round_ += 1
        bar.update(size)
    bar.close()
    return flips / n_samples


class RPRScorer(RobustnessScorerMixin, BaseEstimator):
    """RPR of a model as a scorer, ``scorer(estimator, X, y) -> float`` (greater is better).

    The perturbations act on the *raw* input of ``estimator``: for a Pipeline, before its
    transformers. Choose them in those units. In particular, ``PixelNoise`` on images in
    [0, 1] is meaningless in front of a ``StandardScaler``: nearly constant border pixels
    have a tiny scale, so a replaced pixel becomes a huge scaled value, and on digits the
    robust fraction drops to 0.0. Fit the model on the raw pixels instead (or perturb
    with noise of the features' own scale).

    Parameters
    ----------
    perturbation : callable, default=None
        ``perturbation(X, rng) -> X_perturbed``, e.g. ``PixelNoise()``; None is
        ``GaussianNoise(0.1)``, for features of unit scale.
    max_steps : int, default=250
    statistic : {"robust_fraction", "mean_steps"}, default="robust_fraction"
        The fraction of samples whose RPR reaches ``max_steps`` (misclassified samples
        count as not robust), or the mean number of steps.
    batch_size : int, default=None
        Samples per batch, as in :func:`rpr_steps`.
    random_state : int, RandomState instance or None, default=None
        The perturbations. None and an int give the same perturbations on every call
        (None is the stream of seed 0): every candidate of a GridSearchCV, every fold,
        is scored on the same random draws (common random numbers), so scores differ
        only where the models do. A RandomState instance draws new perturbations on
        every call.
    estimator : estimator, default=None
        Only for :meth:`fit` (and ``RobustSubsetSelector(strategy="rpr")``): the model that
        is fitted on the training data and then perturbed; None is
        ``LogisticRegression()``. Wrap an already fitted model in
        :class:`sklearn.frozen.FrozenEstimator` to use it as it is.
    verbose : int, default=0
        Show a progress bar over the steps of every call when positive.

    Attributes
    ----------
    estimator_ : estimator
        The fitted clone of ``estimator`` (after :meth:`fit`).
    steps_ : ndarray of shape (n_samples,)
        Steps of the training samples (after :meth:`fit`).
    robustness_ : ndarray of shape (n_samples,)
        ``steps_ / max_steps``: 1 for the RPR-robust training samples.

    References
    ----------
    A. Ilie, M. Popescu, A. Stefanescu. Robustness as Inherent Property of Datapoints.
    AISafety workshop at IJCAI-PRICAI 2020, CEUR Workshop Proceedings (paper 001).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import cross_val_score
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from skrob.perturbations import PixelNoise
    >>> from skrob.rpr import RPRScorer
    >>> X, y = load_digits(return_X_y=True)
    >>> scorer = RPRScorer(PixelNoise(), max_steps=20, random_state=0)
    >>> scores = cross_val_score(DecisionTreeClassifier(random_state=0), X / 16, y,
    ...                          scoring=scorer, cv=3)
    >>> bool(((scores >= 0) & (scores <= 1)).all())
    True
    """

    _parameter_constraints = {
        "perturbation": [callable, None],
        "max_steps": [Interval(Integral, 1, None, closed="left")],
        "statistic": [StrOptions({"robust_fraction", "mean_steps"})],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "estimator": [HasMethods(["fit", "predict"]), None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        perturbation=None,
        *,
        max_steps=250,
        statistic="robust_fraction",
        batch_size=None,
        random_state=None,
        estimator=None,
        verbose=0,
    ):
        self.perturbation = perturbation
        self.max_steps = max_steps
        self.statistic = statistic
        self.batch_size = batch_size
        self.random_state = random_state
        self.estimator = estimator
        self.verbose = verbose

    def rpr_steps(self, estimator, X, y):
        """:func:`rpr_steps` with this scorer's settings.

        Parameters
        ----------
        estimator : fitted classifier
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            True labels.

        Returns
        -------
        steps : ndarray of shape (n_samples,)
        """
        self._validate_params()
        return rpr_steps(
            estimator,
            X,
            y,
            perturbation=GaussianNoise(0.1) if self.perturbation is None else self.perturbation,
            max_steps=self.max_steps,
            batch_size=self.batch_size,
            random_state=0 if self.random_state is None else self.random_state,
            verbose=self.verbose,
        )

    def __call__(self, estimator, X, y, **kwargs):
        """Robust fraction (or mean steps) of ``estimator`` on ``(X, y)``.

        Metadata (``sample_weight``, ...) has no meaning here: it is an error, never
        silently dropped.
        """
        reject_metadata(self, kwargs)
        steps = self.rpr_steps(estimator, X, y)
        if self.statistic == "mean_steps":
            return float(steps.mean())
        return float(np.mean(steps == self.max_steps))

    def robustness(self, X, y):
        """RPR robustness (``steps / max_steps``) of labelled rows under the fitted model.

        The robustness-source method (skrob._sources): with
        ``RobustnessSubsetSplit(reference="train", robustness=RPRScorer(...))`` the model
        fitted on the training fold is perturbed on the validation fold.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            True labels.

        Returns
        -------
        robustness : ndarray of shape (n_samples,)
            In [0, 1].
        """
        check_is_fitted(self, "estimator_")
        return self.rpr_steps(self.estimator_, X, y) / self.max_steps

    def fit(self, X, y):
        """Fit a clone of ``estimator`` on ``(X, y)``, then the RPR steps of ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : object
        """
        self._validate_params()
        estimator = LogisticRegression() if self.estimator is None else self.estimator
        self.estimator_ = clone(estimator).fit(X, y)
        self.steps_ = self.rpr_steps(self.estimator_, X, y)
        self.n_features_in_ = getattr(self.estimator_, "n_features_in_", _Data(X).X.shape[1])
        self.robustness_ = self.steps_ / self.max_steps
        return self
