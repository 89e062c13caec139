"""The distortion scorers of both families: one base, one set of statistics."""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator

from skrob._compat import Interval, StrOptions
from skrob._scoring import RobustnessScorerMixin
from skrob._validation import reject_metadata, warn_user
from skrob.distortion._decision import _DECISION_PARAMS, decision_based_distortion
from skrob.distortion._exact import exact_distortion

STATISTICS = ("mean", "robust_accuracy", "certified_accuracy")


def distortion_statistic(distortion, statistic, epsilon, owner):
    """``statistic`` of per-sample distortions under the contract (NaN: misclassified,
    inf: not flipped within the box / budget).

    "mean": over the correctly classified samples that were flipped (a warning counts the
    unflipped, left out); "robust_accuracy": the share of all samples correct and not
    flipped within ``epsilon``.
    """
    d = np.asarray(distortion, dtype=float)
    correct = ~np.isnan(d)
    if statistic == "robust_accuracy":
        with np.errstate(invalid="ignore"):
            return float(np.mean(correct & (d > epsilon)))
    unbroken = int(np.isinf(d).sum())
    if unbroken:
        warn_user(
            f"{owner}: {unbroken} of {int(correct.sum())} correctly classified samples were "
            "not flipped inside the box within the budget; they are left out of the mean "
            "distortion, which therefore understates the model's robustness."
        )
    finite = d[np.isfinite(d)]
    return float(finite.mean()) if finite.size else float("nan")


class DistortionScorer(RobustnessScorerMixin, BaseEstimator):
    """The base of :class:`skrob.DecisionDistortionScorer` and
    :class:`skrob.torch.AdversarialDistortionScorer` (greater is more robust).

    A subclass gives ``_distortions(estimator, X, y)`` (per-sample distortions under the
    contract) and ``_certified(estimator, X, y)`` (a bool mask of the samples proven
    robust at ``epsilon``: correct, and no adversarial point within it); the statistics
    are computed here, the same for both families:

    - ``"mean"``: the mean distortion over the correctly classified samples;
    - ``"robust_accuracy"``: the share of all samples correct and not flipped within
      ``epsilon`` (attacks give upper bounds on the minimum: an upper bound);
    - ``"certified_accuracy"``: the share of all samples proven robust at ``epsilon``
      (a lower bound; equal to the true robust accuracy for exact minima).
    """

    def __call__(self, estimator, X, y, **kwargs):
        """The statistic of ``estimator``'s distortions on (X, y).

        Metadata (``sample_weight``, ...) has no meaning here: it is an error, never
        silently dropped.
        """
        reject_metadata(self, kwargs)
        self._validate_params()
        owner = type(self).__name__
        if self.statistic != "mean" and self.epsilon is None:
            raise ValueError(
                f"{owner}(statistic={self.statistic!r}) needs epsilon=, the perturbation "
                "budget in the norm's units."
            )
        if self.statistic == "certified_accuracy":
            return float(np.mean(self._certified(estimator, X, y)))
        return distortion_statistic(
            self._distortions(estimator, X, y), self.statistic, self.epsilon, owner
        )


class DecisionDistortionScorer(DistortionScorer):
    """Decision-based minimal distortion as a scorer for any classifier (greater is more robust).

    ``statistic="mean"``: the mean of :func:`decision_based_distortion` over the correctly
    classified samples (samples no point was found for are left out, with a warning).
    ``statistic="robust_accuracy"``: the share of *all* samples classified correctly and
    not flipped within ``epsilon``; the attack gives upper bounds on the minimal distortion,
    so this is an upper bound on the true robust accuracy. ``statistic=
    "certified_accuracy"``: the share of all samples whose *exact* minimal distortion
    (:func:`exact_distortion`, its proven lower bound where a time limit struck) exceeds
    ``epsilon``: a lower bound, for the models :func:`exact_distortion` takes. Distances are
    in the units of X: scale features comparably (or pass per-feature ``clip``) for tabular
    data. The statistics are those of :class:`~skrob.distortion._scorers.DistortionScorer`,
    shared with :class:`skrob.torch.AdversarialDistortionScorer`.

    ``random_state=None`` means seed 0: every candidate of a search is attacked with the
    same random draws (common random numbers), so scores differ only through the models.

    Parameters
    ----------
    norm : np.inf or 2, default=np.inf
        The norm distances are measured in.
    method : {"auto", "hsj", "ray"}, default="auto"
        The search, as in :func:`decision_based_distortion`.
    clip : (low, high) or None, default=None
        The box the perturbed points must stay in: each side None (open), a number, or one
        number per feature.
    max_queries : int, default=5000
        Rows of ``predict`` each sample may ask (the default of
        :func:`decision_based_distortion`).
    tol : float, default=1e-4
        Relative precision of each bisection to the boundary.
    n_starts : int, default=3
        Differently predicted rows of X each sample starts from.
    random_state : int, RandomState instance or None, default=None
        The search's random draws; None is seed 0 (common random numbers).
    statistic : {"mean", "robust_accuracy", "certified_accuracy"}, default="mean"
        What the scorer returns, as above.
    epsilon : float, default=None
        The radius of the two accuracies (required there).
    time_limit : float, default=10.0
        Seconds per sample of the exact programs of ``"certified_accuracy"`` (tree
        ensembles).
    verbose : int, default=0
        Show a progress bar when positive.

    References
    ----------
    How Training Data Affect the Accuracy and Robustness of Neural Networks for Image
    Classification. Anonymous authors, ICLR 2019 conference submission (paper 002),
    https://openreview.net/forum?id=HklKWhC5F7

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import GradientBoostingClassifier
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skrob import DecisionDistortionScorer
    >>> X, y = load_iris(return_X_y=True)
    >>> search = GridSearchCV(GradientBoostingClassifier(n_estimators=10, random_state=0),
    ...                       {"max_depth": [1, 2]}, cv=3,
    ...                       scoring=DecisionDistortionScorer(max_queries=300)).fit(X, y)
    >>> search.best_params_["max_depth"] in (1, 2)
    True
    """

    _parameter_constraints = {
        **{
            k: v
            for k, v in _DECISION_PARAMS.items()
            if k not in ("estimator", "X", "y", "return_adversarial")
        },
        "statistic": [StrOptions(set(STATISTICS))],
        "epsilon": [Interval(Real, 0, float(np.finfo(np.float64).max), closed="neither"), None],
        "time_limit": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        *,
        norm=np.inf,
        method="auto",
        clip=None,
        max_queries=5000,
        tol=1e-4,
        n_starts=3,
        random_state=None,
        statistic="mean",
        epsilon=None,
        time_limit=10.0,
        verbose=0,
    ):
        self.norm = norm
        self.method = method
        self.clip = clip
        self.max_queries = max_queries
        self.tol = tol
        self.n_starts = n_starts
        self.random_state = random_state
        self.statistic = statistic
        self.epsilon = epsilon
        self.time_limit = time_limit
        self.verbose = verbose

    def _distortions(self, estimator, X, y):
        p = self.get_params()
        for k in ("statistic", "epsilon", "time_limit"):
            p.pop(k)
        p["random_state"] = 0 if self.random_state is None else self.random_state
        return decision_based_distortion(estimator, X, y, **p)

    def _certified(self, estimator, X, y):
        lower, _ = exact_distortion(
            estimator,
            X,
            y,
            norm=self.norm,
            clip=self.clip,
            time_limit=self.time_limit,
            return_bounds=True,
        )
        with np.errstate(invalid="ignore"):
            return lower > self.epsilon  # NaN (misclassified): False
