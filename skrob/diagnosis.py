"""One row per sample: what the features alone say about each label (paper 000, paper 004)."""

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.utils import check_array

from skrob._compat import Interval, StrOptions, validate_params
from skrob._search.cdist import resolve_metric
from skrob._search.neighbors import (
    nearest_in_groups,
    nearest_in_groups_and_order,
    reach_to_robustness,
)
from skrob._subsets import extreme_indices
from skrob._validation import check_numeric_columns, resolve_task, warn_on_scales
from skrob.label_uncertainty import label_uncertainty
from skrob.sample_robustness import _check_targets

COLUMNS = [
    "label",
    "robustness",
    "reach",
    "nearest_other",
    "nearest_other_label",
    "suggested_label",
    "suggested_robustness",
    "relabel",
    "label_issue",
    "label_quality",
    "conflicting_duplicate",
    "label_uncertainty",
    "least_robust",
]


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        "y": ["array-like"],
        "metric": [str, callable],
        "metric_params": [dict, None],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "least_robust": [Interval(Real, 0, 1, closed="both")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=True,
)
def diagnose(
    X,
    y,
    *,
    metric="euclidean",
    metric_params=None,
    n_neighbors=10,
    least_robust=0.1,
    batch_size=None,
    n_jobs=None,
    verbose=0,
):
    """Per-sample diagnosis of a labelled dataset, from its features alone.

    For every sample ``x`` with label ``c`` the exact search finds the nearest sample of
    each class (``x`` itself excluded). From these distances ``d_k(x)``:

    - the **reach** ``r = min_{k != c} d_k(x)``, the distance to the nearest differently
      labelled sample, and the **robustness** ``R = r / (r + 1)`` (paper 000), equal to
      :func:`sample_robustness`;
    - the **suggested label**, the label under which ``x`` would be most robust: ``R``
      under label ``c'`` is ``min_{k != c'} d_k(x) / (1 + ...)``, largest for the class of
      the nearest other sample. It is the given label unless a sample of another class is
      strictly nearer than every sample of ``x``'s own class, i.e. the leave-one-out
      1-nearest-neighbour label, ties resolved in favour of the given label;
    - a **conflicting duplicate**: a differently labelled sample with the same features
      (``r = 0``, so ``R = 0``);
    - the **label uncertainty** ``LU = 1 - eta_c + max_{k != c} eta_k`` (paper 004) with
      ``eta`` estimated by the labels of the ``n_neighbors`` nearest other samples
      (:func:`knn_soft_labels`), in [0, 2]; above 1 the neighbours mostly disagree.

    It is what a label-issue finder reports, computed without a model: a sample whose
    suggested label differs from its label, or that is a conflicting duplicate, is worth
    a second look.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Finite feature values. Distances depend on the features' scales: standardise
        features in different units first (e.g. with
        :class:`sklearn.preprocessing.StandardScaler`).
    y : array-like of shape (n_samples,)
        Class labels, at least two classes.
    metric : str or callable, default="euclidean"
        As in :func:`sample_robustness`.
    metric_params : dict, default=None
        Keyword arguments of the metric.
    n_neighbors : int, default=10
        Neighbours behind the label uncertainty; fewer than ``n_samples``.
    least_robust : float in [0, 1], default=0.1
        Fraction of samples flagged in the ``least_robust`` column: the
        ``round(least_robust * n_samples)`` with the smallest robustness (ties in sample
        order).
    batch_size : int, default=None
        Rows per block of the exact kernel (see :func:`sample_robustness`).
    n_jobs : int, default=None
        As in :func:`sample_robustness`.
    verbose : int, default=0
        Show a progress bar over the kernel's blocks when positive.

    Returns
    -------
    diagnosis : pandas.DataFrame of shape (n_samples, 13)
        Indexed like ``X`` when ``X`` is a DataFrame, else by sample position
        (index name "sample"). Columns:

        - ``label``: the given label;
        - ``robustness``, ``reach``: R and r above;
        - ``nearest_other``, ``nearest_other_label``: the nearest differently labelled
          sample, in the terms of the table's index (X's index label for a DataFrame,
          else its 0-based position), and its label;
        - ``suggested_label``, ``suggested_robustness``: the label under which the sample
          is most robust, and R under it (>= ``robustness``);
        - ``relabel``: the suggested label differs from the given one;
        - ``label_issue``, ``label_quality``: the likely label errors and the ranking
          score of :func:`label_issues` (confident learning on kNN probabilities: the
          flag to act on; ``relabel`` says only that the nearest neighbour disagrees);
        - ``conflicting_duplicate``: a differently labelled sample has the same features;
        - ``label_uncertainty``: kNN label uncertainty in [0, 2];
        - ``least_robust``: among the ``least_robust`` fraction of smallest R.

    References
    ----------
    Introducing Sample Robustness. Anonymous authors, ICLR 2021 conference submission
    (paper 000), https://openreview.net/forum?id=8-sxWOto_iI

    X. Zhang, D. Evans. Understanding Intrinsic Robustness Using Label Uncertainty.
    ICLR 2022 (paper 004).

    Examples
    --------
    >>> from skrob import diagnose
    >>> X = [[0.0], [0.1], [0.2], [1.0], [1.1], [1.2]]
    >>> y = [0, 0, 1, 1, 1, 1]  # sample 2 sits among the 0s
    >>> d = diagnose(X, y, n_neighbors=2)
    >>> d[["label", "reach", "nearest_other", "suggested_label", "relabel"]].round(3)
    ... # doctest: +NORMALIZE_WHITESPACE
            label  reach  nearest_other  suggested_label  relabel
    sample
    0           0    0.2              2                0    False
    1           0    0.1              2                0    False
    2           1    0.1              1                0     True
    3           1    0.9              1                1    False
    4           1    1.0              1                1    False
    5           1    1.1              1                1    False

    Sample 1 is as near to sample 2 (label 1) as to sample 0 (label 0): a tie keeps
    its label. Sample 2 would be most robust labelled 0.
    """
    frame, _ = _diagnose(
        X,
        y,
        metric=metric,
        metric_params=metric_params,
        n_neighbors=n_neighbors,
        least_robust=least_robust,
        batch_size=batch_size,
        n_jobs=n_jobs,
        verbose=verbose,
        warn=True,
    )
    if isinstance(X, pd.DataFrame):  # the nearest other in X's own terms: its index
        frame["nearest_other"] = frame.index[frame["nearest_other"].to_numpy()]
    return frame


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        "y": ["array-like"],
        "n_neighbors": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "metric": [str, callable],
        "metric_params": [dict, None],
        "n_jobs": [Integral, None],
    },
    prefer_skip_nested_validation=True,
)
def label_issues(X, y, *, n_neighbors="auto", metric="euclidean", metric_params=None, n_jobs=None):
    """Samples whose label is likely wrong, from the features alone: confident learning on
    leave-one-out kNN probabilities.

    1. **Out-of-sample probabilities without a model.** For every sample, the labels of
       its ``k`` nearest *other* samples estimate the class probabilities ``p(x)``
       (one pseudo-count spread as the class prior, so no class gets 0). The sample never
       votes for itself, so these are out-of-sample estimates, as cleanlab asks of a
       model's cross-validated ``predict_proba``, with no folds and no training.
       Exact copies of a sample (same features, same label) are the same observation:
       they vote only after every other neighbour (duplicates counted once).
    2. **No single k.** ``n_neighbors="auto"`` averages the probabilities of k = 5, 10,
       20, 30 and 50 neighbours (those below the sample count): small k see the local
       mix of classes, large k the neighbourhood around it, so the estimate does not
       hinge on one choice of k.
    3. **Confident learning** (Northcutt, Jiang & Chuang, 2021), as cleanlab's
       ``find_label_issues`` does by default (``filter_by="prune_by_noise_rate"``): each
       class j gets the threshold ``t_j``, the mean ``p_j`` of the samples labelled j; a
       sample labelled i counts as "truly j" when ``p_j >= t_j`` (the most probable class
       if several pass), which estimates the joint of given and true labels, calibrated to
       the class counts. For every pair (i, j) the ``C[i, j]`` samples labelled i with the
       largest margin ``p_j − p_i`` are flagged, except those whose most probable class
       is their label. Per-class thresholds make the flag robust to classes that are
       harder than others, and the count ``C[i, j]`` stops it from flagging every
       ambiguous sample.

    The score ``label_quality = p_label(x)`` ranks samples (low first: cleanlab's
    self-confidence). ``benchmarks/bench_label_issues.py`` compares the flag and the
    ranking with cleanlab on kNN and logistic-regression probabilities.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Features in comparable units (standardise features in different units first).
    y : array-like of shape (n_samples,)
        Class labels, at least two classes.
    n_neighbors : int or "auto", default="auto"
        Neighbours behind the probabilities; "auto" chooses them as above.
    metric : str or callable, default="euclidean"
        As in :class:`sklearn.neighbors.NearestNeighbors`.
    metric_params : dict, default=None
    n_jobs : int, default=None

    Returns
    -------
    issues : pandas.DataFrame of shape (n_samples, 4)
        Indexed like ``X`` (a DataFrame) or by position. Columns ``label``,
        ``label_quality`` (in (0, 1); low: likely wrong), ``label_issue`` (the flag) and
        ``likely_label`` (the most probable class). ``issues.attrs["n_neighbors"]`` lists
        the k averaged.

    References
    ----------
    C. Northcutt, L. Jiang, I. Chuang. Confident Learning: Estimating Uncertainty in
    Dataset Labels. Journal of Artificial Intelligence Research 70, 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from skrob import label_issues
    >>> X, y = load_iris(return_X_y=True)
    >>> y_noisy = y.copy()
    >>> y_noisy[[0, 60, 120]] = [2, 0, 1]  # three wrong labels
    >>> found = label_issues(X, y_noisy)
    >>> np.flatnonzero(found.label_issue).tolist()
    [0, 60, 120]
    """
    index = X.index if isinstance(X, pd.DataFrame) else None
    X = check_array(check_numeric_columns(X), accept_sparse="csr", dtype=np.float64, input_name="X")
    _, classes, codes = _check_targets(y, "classification", X.shape[0])
    warn_on_scales(X, metric, "label_issues")
    issues, quality, likely, ks = _label_issues(
        X, codes, classes.size, n_neighbors, metric, metric_params, n_jobs
    )
    frame = pd.DataFrame(
        {
            "label": classes[codes],
            "label_quality": quality,
            "label_issue": issues,
            "likely_label": classes[likely],
        },
        index=index if index is not None else pd.RangeIndex(X.shape[0], name="sample"),
    )
    frame.attrs["n_neighbors"] = list(ks)
    return frame


def _label_issues(X, codes, n_classes, n_neighbors, metric, metric_params, n_jobs):
    """(flag, label quality, most probable class, k) of every sample."""
    from skrob import _label_issues as cl

    n = X.shape[0]
    if n < 3:
        raise ValueError(f"label_issues needs at least 3 samples; got {n}.")
    auto = isinstance(n_neighbors, str)
    k_max = min(max(cl.K_GRID) if auto else n_neighbors, n - 1)
    if not auto and n_neighbors >= n:
        raise ValueError(f"n_neighbors={n_neighbors} must be below the number of samples ({n}).")
    idx, copies = cl.nearest_neighbours(
        X,
        k_max,
        metric=metric,
        metric_params=metric_params,
        cuts=cl.K_GRID if auto else (k_max,),  # the votes read these sets only
        n_jobs=n_jobs,
    )
    return _issues_from_neighbours(copies, idx, codes, n_classes, auto)


def _issues_from_neighbours(copies, idx, codes, n_classes, auto=True):
    """:func:`_label_issues` from the neighbour lists (all of them: ``auto``, or the
    first ``idx.shape[1]``)."""
    from skrob import _label_issues as cl

    n = len(codes)
    neighbours = cl.copies_last(copies, idx, codes)
    k_max = idx.shape[1]
    prior = np.bincount(codes, minlength=n_classes) / n
    if auto:
        probs, ks = cl.multiscale_soft_labels(neighbours, n_classes, prior)
    else:
        probs, ks = cl.soft_labels(neighbours, k_max, n_classes, prior), [k_max]
    issues = cl.prune_by_noise_rate(probs, codes, n_classes)
    return issues, probs[np.arange(n), codes], probs.argmax(axis=1), ks


def neighbour_request(n, n_neighbors):
    """``(k, cuts)``: the neighbour lists :func:`diagnose` reads, one search for the
    label uncertainty (the first ``n_neighbors``) and the label issues (up to 50); the
    votes read the sets at ``cuts`` only."""
    from skrob._label_issues import K_GRID

    return min(max(n_neighbors, max(K_GRID)), n - 1), (*K_GRID, n_neighbors)


def fusable(X, kernel_metric):
    """Whether :func:`nearest_in_groups_and_order` serves both of diagnose's searches:
    dense Euclidean data with the features for which the neighbour lists take skrob's
    own kernel."""
    import scipy.sparse as sp

    from skrob._label_issues import _OWN_KERNEL_MIN_FEATURES

    return (
        not sp.issparse(X)
        and isinstance(kernel_metric, str)
        and kernel_metric == "euclidean"
        and X.shape[1] >= _OWN_KERNEL_MIN_FEATURES
    )


def _diagnose(
    X,
    y,
    *,
    metric,
    metric_params,
    n_neighbors,
    least_robust,
    batch_size,
    n_jobs,
    verbose,
    warn=False,
    nearest=None,
    neighbours=None,
):
    """:func:`diagnose`, and the (n_samples, n_classes) distance from every sample to the
    nearest other sample of each class (columns in the order of ``np.unique(y)``).
    ``warn``: warn about features in different units (the report says it on its page).
    ``nearest``: that distance and the sample attaining it, ``nearest_in_groups``'s
    leave-one-out result for these ``X`` and ``metric``, and ``neighbours`` the
    neighbour lists and copies (:func:`neighbour_request`), when the caller has them."""
    index = X.index if isinstance(X, pd.DataFrame) else None
    X = check_array(
        check_numeric_columns(X),
        accept_sparse="csr",
        dtype=[np.float64, np.float32],
        ensure_all_finite=True,
        input_name="X",
    )
    if np.ndim(y) > 1 and np.shape(y)[1:] != (1,):  # no multi-output labels here
        raise ValueError(
            f"y must be one label per sample, shape ({X.shape[0]},); got shape {np.shape(y)}."
        )
    _, classes, codes = _check_targets(y, "classification", X.shape[0])  # length, NaN
    if resolve_task(y, "auto", warn=False) != "classification":
        raise ValueError(
            "diagnose needs class labels; y looks continuous (regression). Use "
            "sample_robustness(X, y) for the robustness of real-valued targets, or pass "
            "integer class labels."
        )
    y = classes[codes]  # one label per sample, 1-D
    if warn:
        warn_on_scales(X, metric, "diagnose")
    if n_neighbors >= X.shape[0]:
        raise ValueError(
            f"n_neighbors={n_neighbors} must be below the number of samples ({X.shape[0]})."
        )
    n, n_classes = X.shape[0], classes.size
    kernel_metric = resolve_metric(metric, metric_params, X)
    k_lists, cuts = neighbour_request(n, n_neighbors)
    if nearest is None and neighbours is None and fusable(X, kernel_metric):
        # one pass over the pairs for both searches
        fused = nearest_in_groups_and_order(
            X,
            codes,
            n_classes,
            k_lists,
            cuts=cuts,
            batch_size=batch_size,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        if fused is not None:
            nearest, neighbours = fused
    if nearest is None:
        nearest = nearest_in_groups(
            X,
            X,
            codes,
            n_classes,
            metric=kernel_metric,
            batch_size=batch_size,
            n_jobs=n_jobs,
            verbose=verbose,
            exclude=np.arange(n),
        )
    dist, arg = nearest
    rows = np.arange(n)
    other = dist.copy()
    other[rows, codes] = np.inf
    nearest_class = other.argmin(axis=1)
    reach = other[rows, nearest_class]
    partner = arg[rows, nearest_class]
    # R under label k is the distance to the nearest sample of any class but k: largest
    # for the class of the nearest other sample, k1. Relabel only where that is strictly
    # more robust (ties keep the given label).
    under_k1 = dist.copy()
    under_k1[rows, nearest_class] = np.inf
    reach_k1 = under_k1.min(axis=1)
    relabel = reach_k1 > reach
    best = np.where(relabel, nearest_class, codes)
    suggested_reach = np.where(relabel, reach_k1, reach)

    from skrob._label_issues import nearest_neighbours, vote_counts

    if neighbours is None:
        knn_metric, knn_params = "euclidean", None
        if kernel_metric != "euclidean":  # the parameters the kernel used (V, VI filled in)
            knn_metric, knn_params = kernel_metric.metric, kernel_metric.params or None
        neighbours = nearest_neighbours(
            X, k_lists, metric=knn_metric, metric_params=knn_params, cuts=cuts, n_jobs=n_jobs
        )
    neighbours, copies = neighbours
    soft = vote_counts(codes[neighbours[:, :n_neighbors]], n_classes) / n_neighbors
    issue, quality, _, _ = _issues_from_neighbours(copies, neighbours, codes, n_classes)
    R = reach_to_robustness(reach)
    flagged = np.zeros(n, dtype=bool)
    flagged[extreme_indices(R, int(round(float(least_robust) * n)), "least")] = True
    frame = pd.DataFrame(
        {
            "label": y,
            "robustness": R,
            "reach": reach,
            "nearest_other": partner,
            "nearest_other_label": classes[codes[partner]],
            "suggested_label": classes[best],
            "suggested_robustness": reach_to_robustness(suggested_reach),
            "relabel": relabel,
            "label_issue": issue,
            "label_quality": quality,
            "conflicting_duplicate": reach == 0,
            "label_uncertainty": label_uncertainty(soft, y),
            "least_robust": flagged,
        },
        index=index if index is not None else pd.RangeIndex(n, name="sample"),
    )
    return frame, dist


def register_datalab_issue_type(issue_name="sample_robustness"):
    """Register skrob's diagnosis as an issue type of cleanlab's ``Datalab``.

    After ``register_datalab_issue_type()``, ``Datalab.find_issues`` takes
    ``issue_types={"sample_robustness": {"features": X}}``. For every example it reports:

    - ``is_sample_robustness_issue``: a conflicting duplicate, or a likely label error
      (:func:`diagnose`'s ``conflicting_duplicate | label_issue``, confident learning on
      kNN probabilities, :func:`label_issues`);
    - ``sample_robustness_score``: the label quality in (0, 1), the kNN probability of the
      given label, low meaning severe (cleanlab's convention for scores);

    and ``Datalab.get_info("sample_robustness")`` holds the whole :func:`diagnose` table.
    The features must be numeric and in comparable units (standardise them first).
    Needs ``pip install "cleanlab[datalab]"``.

    Parameters
    ----------
    issue_name : str, default="sample_robustness"
        The key of the issue type in ``Datalab``.

    Returns
    -------
    manager : type
        The registered ``cleanlab`` ``IssueManager`` subclass.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from cleanlab import Datalab  # doctest: +SKIP
    >>> from skrob.diagnosis import register_datalab_issue_type
    >>> X, y = load_iris(return_X_y=True)
    >>> manager = register_datalab_issue_type()  # doctest: +SKIP
    >>> lab = Datalab({"label": y}, label_name="label")  # doctest: +SKIP
    >>> lab.find_issues(issue_types={"sample_robustness": {"features": X}})  # doctest: +SKIP
    >>> lab.get_issues("sample_robustness").columns.tolist()  # doctest: +SKIP
    ['is_sample_robustness_issue', 'sample_robustness_score']
    """
    try:
        from cleanlab.datalab.internal.issue_manager import IssueManager
        from cleanlab.datalab.internal.issue_manager_factory import register
    except ImportError as exc:
        raise ImportError(
            'register_datalab_issue_type needs cleanlab: pip install "cleanlab[datalab]".'
        ) from exc

    def find_issues(self, features=None, **kwargs):
        if features is None:
            raise ValueError(
                f"The {issue_name!r} issue type computes distances between examples: pass "
                f'Datalab.find_issues(issue_types={{"{issue_name}": {{"features": X}}}}).'
            )
        labels = np.asarray(self.datalab.labels)
        # Datalab holds integer codes; the table speaks the dataset's own labels
        label_map = getattr(self.datalab, "_label_map", None) or {}
        if label_map:
            labels = np.array([label_map[int(c)] for c in labels])
        table = diagnose(features, labels, **kwargs)
        score = table["label_quality"].to_numpy()
        self.issues = pd.DataFrame(
            {
                f"is_{self.issue_name}_issue": (
                    table["label_issue"] | table["conflicting_duplicate"]
                ).to_numpy(),
                self.issue_score_key: score,
            }
        )
        self.summary = self.make_summary(score=float(score.mean()))
        self.info = self.collect_info(table)

    def collect_info(self, table):
        return {
            "diagnosis": table,
            "suggested_label": table["suggested_label"].to_numpy(),
            "nearest_other": table["nearest_other"].to_numpy(),
        }

    manager = type(
        "SampleRobustnessIssueManager",
        (IssueManager,),
        {
            "issue_name": issue_name,
            "description": (
                "Examples whose neighbours' labels say their own is likely wrong "
                "(confident learning on kNN probabilities), or that duplicate a "
                "differently labelled example; the score is the kNN probability of the "
                "given label (low: severe)."
            ),
            "verbosity_levels": {0: [], 1: [], 2: [], 3: []},
            "find_issues": find_issues,
            "collect_info": collect_info,
            "__module__": __name__,
        },
    )
    return register(manager)
