"""matplotlib Displays, scikit-learn's pattern: ``from_*`` class methods, then ``.plot``.

matplotlib is the optional extra ``skrob[plot]``; it is imported only when plotting.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Plotting needs matplotlib: pip install 'skrob[plot]' (or matplotlib)."
        ) from exc
    return plt


def _robustness_and_labels(robustness, labels, r_name, l_name):
    """1-D finite robustness values in [0, 1] and one label for each."""
    R = np.asarray(robustness, dtype=np.float64)
    y = np.asarray(labels)
    if R.ndim != 1 or y.ndim != 1:
        raise ValueError(f"{r_name} and {l_name} must be 1-D, got shapes {R.shape} and {y.shape}.")
    if R.shape != y.shape:
        raise ValueError(
            f"{r_name} and {l_name} must have one entry per sample; got {R.size} and {y.size}."
        )
    if R.size == 0:
        raise ValueError(f"{r_name} is empty.")
    if not np.isfinite(R).all():
        raise ValueError(f"{r_name} contains NaN or infinity.")
    if R.min() < 0 or R.max() > 1:
        raise ValueError(
            f"{r_name} must lie in [0, 1] (sample robustness); got [{R.min():.4g}, {R.max():.4g}]."
        )
    return R, y


class RobustnessDistributionDisplay:
    """Per-class relative distribution of sample robustness (paper 000, Fig. 4).

    One histogram per class, as fractions of that class's samples, over shared bins;
    with ``robustness_ref`` a second set (e.g. the test set) is drawn over it.

    Parameters
    ----------
    robustness : ndarray of shape (n_samples,)
    labels : ndarray of shape (n_samples,)
    robustness_ref, labels_ref : ndarray, optional
        A second set, drawn as a line over the first.
    names : tuple of str, default=("x", "t")
        Legend names of the two sets.

    Attributes
    ----------
    figure_, axes_ : matplotlib Figure and array of Axes, after ``plot``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skrob import SampleRobustnessTransformer
    >>> from skrob.plotting import RobustnessDistributionDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> srt = SampleRobustnessTransformer().fit(X, y)
    >>> disp = RobustnessDistributionDisplay.from_estimator(srt, X, y)
    >>> len(disp.axes_), disp.figure_.get_supxlabel()
    (10, 'sample robustness R')
    """

    def __init__(
        self, robustness, labels, *, robustness_ref=None, labels_ref=None, names=("x", "t")
    ):
        self.robustness = robustness
        self.labels = labels
        self.robustness_ref = robustness_ref
        self.labels_ref = labels_ref
        self.names = names

    def _checked(self):
        """The inputs as arrays, validated (in ``plot``: ``__init__`` only stores them)."""
        R, y = _robustness_and_labels(self.robustness, self.labels, "robustness", "labels")
        if (self.robustness_ref is None) != (self.labels_ref is None):
            raise ValueError("robustness_ref and labels_ref go together.")
        if self.robustness_ref is None:
            return R, y, None, None
        R_ref, y_ref = _robustness_and_labels(
            self.robustness_ref, self.labels_ref, "robustness_ref", "labels_ref"
        )
        return R, y, R_ref, y_ref

    @classmethod
    def from_estimator(
        cls, estimator, X, y, *, X_ref=None, y_ref=None, label_names=None, ax=None, n_bins=30
    ):
        """Plot the robustness of ``(X, y)`` under a fitted SampleRobustnessTransformer,
        ``estimator.robustness(X, y)``: for its own reference set, ``robustness_``.

        With ``X_ref, y_ref``, their robustness computed on themselves is drawn over it
        (as paper 000 computes R_t on t alone).

        Parameters
        ----------
        estimator : fitted SampleRobustnessTransformer
        X : array-like of shape (n_samples, n_features)
            The samples to plot (its reference set, or new labelled rows).
        y : array-like of shape (n_samples,)
            Their labels.
        X_ref, y_ref : array-like, default=None
            A second set (e.g. the test set), its robustness computed on itself.
        label_names : list of str, default=None
            Panel titles, one per class in sorted order.
        ax : array of matplotlib Axes, default=None
            One per class; a new figure when None.
        n_bins : int, default=30
            Histogram bins, shared by the panels.

        Returns
        -------
        display : RobustnessDistributionDisplay
        """
        from skrob.sample_robustness import sample_robustness

        check_is_fitted(estimator)
        ref = None if X_ref is None else sample_robustness(X_ref, y_ref)
        disp = cls(estimator.robustness(X, y), y, robustness_ref=ref, labels_ref=y_ref)
        return disp.plot(label_names=label_names, ax=ax, n_bins=n_bins)

    @classmethod
    def from_robustness(
        cls,
        robustness,
        labels,
        *,
        robustness_ref=None,
        labels_ref=None,
        names=("x", "t"),
        label_names=None,
        ax=None,
        n_bins=30,
    ):
        """Plot precomputed robustness values.

        Parameters
        ----------
        robustness, labels : array-like of shape (n_samples,)
            The values and their classes.
        robustness_ref, labels_ref : array-like, default=None
            A second set, drawn as a line over the first.
        names : tuple of str, default=("x", "t")
            Legend names of the two sets.
        label_names : list of str, default=None
            Panel titles, one per class in sorted order.
        ax : array of matplotlib Axes, default=None
            One per class; a new figure when None.
        n_bins : int, default=30
            Histogram bins, shared by the panels.

        Returns
        -------
        display : RobustnessDistributionDisplay
        """
        disp = cls(
            robustness, labels, robustness_ref=robustness_ref, labels_ref=labels_ref, names=names
        )
        return disp.plot(label_names=label_names, ax=ax, n_bins=n_bins)

    def plot(self, *, label_names=None, ax=None, n_bins=30):
        """Draw one panel per class.

        Parameters
        ----------
        label_names : list of str, default=None
            Panel titles, one per class in sorted order.
        ax : array of matplotlib Axes, default=None
            One per class; a new figure when None.
        n_bins : int, default=30
            Histogram bins, shared by the panels.

        Returns
        -------
        self : RobustnessDistributionDisplay
        """
        if not isinstance(n_bins, int | np.integer) or n_bins < 1:
            raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
        R, labels, R_ref, labels_ref = self._checked()
        plt = _pyplot()
        classes = np.unique(labels)
        if ax is None:
            n_cols = min(5, classes.size)
            n_rows = int(np.ceil(classes.size / n_cols))
            fig, ax = plt.subplots(
                n_rows,
                n_cols,
                figsize=(3.0 * n_cols, 2.4 * n_rows),
                sharex=True,
                sharey=True,
                squeeze=False,
            )
        axes = np.asarray(ax).ravel()
        values = R if R_ref is None else np.concatenate([R, R_ref])
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
        bins = np.linspace(lo, hi if hi > lo else lo + 1.0, n_bins + 1)
        for k, (c, a) in enumerate(zip(classes, axes, strict=False)):
            r = R[labels == c]
            a.hist(
                r,
                bins=bins,
                weights=np.full(r.size, 1.0 / max(r.size, 1)),
                color="C0",
                alpha=0.6,
                label=self.names[0],
            )
            if R_ref is not None:
                rt = R_ref[labels_ref == c]
                h, _ = np.histogram(rt, bins=bins)
                a.step(
                    bins[:-1], h / max(rt.size, 1), where="post", color="C3", label=self.names[1]
                )
            name = label_names[k] if label_names is not None else c
            a.set_title(f"{name} (n={r.size})", fontsize=9)
        for a in axes[classes.size :]:
            a.set_visible(False)
        if R_ref is not None:  # one set needs no legend
            axes[0].legend(fontsize=8)
        for a in axes:
            a.tick_params(labelsize=7)
        fig = axes[0].figure
        fig.supxlabel("sample robustness R")
        fig.supylabel("fraction of the class")
        fig.tight_layout()
        self.figure_, self.axes_ = fig, axes
        return self


def plot_image_grid(images, titles, *, n_cols=8, cmap="gray_r", figsize=None):
    """Show images in a grid with a title each.

    Parameters
    ----------
    images : array-like of shape (n, h, w)
    titles : list of str
        One per image.
    n_cols : int, default=8
        Images per row.
    cmap : str, default="gray_r"
        A matplotlib colour map.
    figsize : tuple, default=None
        Inches; about 1.4 x 1.9 per image when None.

    Returns
    -------
    figure : matplotlib Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skrob.plotting import plot_image_grid
    >>> fig = plot_image_grid(np.zeros((3, 8, 8)), ["a", "b", "c"], n_cols=3)
    >>> len(fig.axes)
    3
    """
    plt = _pyplot()
    n = len(images)
    n_rows = max(1, int(np.ceil(n / n_cols)))
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=figsize or (1.4 * n_cols, 1.9 * n_rows), squeeze=False
    )
    for a in axes.ravel():
        a.axis("off")
    for img, title, a in zip(images, titles, axes.ravel(), strict=False):
        a.imshow(img, cmap=cmap, interpolation="nearest")
        a.set_title(title, fontsize=7)
    fig.tight_layout()
    return fig


class RPRCurveDisplay:
    """Fraction of samples still robust after each perturbation step (paper 001, Fig. 3).

    Parameters
    ----------
    steps : ndarray of shape (n_samples,)
        Output of :func:`skrob.rpr_steps`.
    max_steps : int
    name : str, default=None
        Legend label of the curve.

    Attributes
    ----------
    curve_ : ndarray of shape (max_steps,)
        ``rpr_curve(steps, max_steps)``.
    robust_fraction_ : float
        The last value of the curve.
    line_, ax_, figure_ : matplotlib objects, after ``plot``.

    Examples
    --------
    >>> from skrob.plotting import RPRCurveDisplay
    >>> disp = RPRCurveDisplay.from_steps([0, 3, 10, 10], 10, name="model")
    >>> disp.robust_fraction_
    0.5
    """

    def __init__(self, steps, max_steps, *, name=None):
        self.steps = steps
        self.max_steps = max_steps
        self.name = name

    @classmethod
    def from_steps(cls, steps, max_steps, *, name=None, ax=None):
        """Plot the curve of precomputed steps.

        Parameters
        ----------
        steps : array-like of shape (n_samples,)
            Output of :func:`skrob.rpr_steps`.
        max_steps : int
            The cap the steps were computed with.
        name : str, default=None
            Legend label of the curve.
        ax : matplotlib Axes, default=None
            A new figure when None.

        Returns
        -------
        display : RPRCurveDisplay
        """
        return cls(steps, max_steps, name=name).plot(ax=ax)

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y,
        *,
        perturbation,
        max_steps=250,
        batch_size=None,
        random_state=None,
        name=None,
        ax=None,
    ):
        """Run :func:`skrob.rpr_steps` on ``(X, y)`` and plot the curve.

        Parameters
        ----------
        estimator : fitted classifier
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            True labels.
        perturbation : callable
            ``perturbation(X, rng) -> X'``, e.g. :class:`skrob.GaussianNoise`.
        max_steps : int, default=250
            Steps per sample.
        batch_size : int, default=None
            Samples per batch (128 when None).
        random_state : int, RandomState instance or None, default=None
            The perturbations' random draws.
        name : str, default=None
            Legend label; the estimator's class name when None.
        ax : matplotlib Axes, default=None
            A new figure when None.

        Returns
        -------
        display : RPRCurveDisplay
        """
        from skrob.rpr import rpr_steps

        steps = rpr_steps(
            estimator,
            X,
            y,
            perturbation=perturbation,
            max_steps=max_steps,
            batch_size=batch_size,
            random_state=random_state,
        )
        name = type(estimator).__name__ if name is None else name
        return cls(steps, max_steps, name=name).plot(ax=ax)

    def plot(self, ax=None):
        """Draw the curve.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            A new figure when None.

        Returns
        -------
        self : RPRCurveDisplay
        """
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        from skrob.rpr import rpr_curve

        self.curve_ = rpr_curve(self.steps, self.max_steps)
        self.robust_fraction_ = float(self.curve_[-1])
        label = self.name if self.name is not None else None
        if label is not None:
            label = f"{label} (robust: {self.robust_fraction_:.3f})"
        (self.line_,) = ax.plot(np.arange(1, self.max_steps + 1), self.curve_, label=label)
        ax.set_xlabel("perturbation steps")
        ax.set_ylabel("fraction still robust")
        ax.set_ylim(0, 1.02)
        if label is not None:
            ax.legend()
        self.ax_, self.figure_ = ax, ax.figure
        return self


class LaplacianDisplay:
    """Box plots of ``|LO|`` (or LO) for several groups: models, or clean vs corrupted inputs.

    Parameters
    ----------
    values : dict of str to ndarray
        One array of Laplacians per group.
    absolute : bool, default=True
        Plot ``|LO|`` (paper 003, Figs. 5-6) rather than the signed values.

    Attributes
    ----------
    means_ : dict of str to float
        Mean of the plotted values per group.
    ax_, figure_ : matplotlib objects, after ``plot``.

    Examples
    --------
    >>> import numpy as np
    >>> from skrob.plotting import LaplacianDisplay
    >>> disp = LaplacianDisplay.from_values({"a": np.ones(5), "b": -np.ones(5)})
    >>> disp.means_
    {'a': 1.0, 'b': 1.0}
    """

    def __init__(self, values, *, absolute=True):
        self.values = values
        self.absolute = absolute

    @classmethod
    def from_values(cls, values, *, absolute=True, ax=None):
        """Plot precomputed Laplacians, one group per dict entry.

        Parameters
        ----------
        values : dict of str to array-like
            One array of Laplacians per group.
        absolute : bool, default=True
            Plot ``|LO|`` rather than the signed values.
        ax : matplotlib Axes, default=None
            A new figure when None.

        Returns
        -------
        display : LaplacianDisplay
        """
        return cls(values, absolute=absolute).plot(ax=ax)

    @classmethod
    def from_estimator(cls, estimator, X, *, absolute=True, ax=None, **laplacian_params):
        """Compute :func:`skrob.torch.laplacian` of ``estimator`` on X, one box per group.

        Parameters
        ----------
        estimator : fitted skorch net, torch.nn.Module or Pipeline ending in one
        X : array-like or dict of str to array-like
            The inputs: one set, or one per group (e.g. clean and corrupted images).
        absolute : bool, default=True
            Plot ``|LO|`` rather than the signed values.
        ax : matplotlib Axes, default=None
            A new figure when None.
        **laplacian_params : dict
            Passed to :func:`skrob.torch.laplacian`.

        Returns
        -------
        display : LaplacianDisplay
        """
        from skrob.torch import laplacian

        groups = X if isinstance(X, dict) else {"X": X}
        values = {k: laplacian(estimator, v, **laplacian_params) for k, v in groups.items()}
        return cls(values, absolute=absolute).plot(ax=ax)

    def plot(self, ax=None):
        """Draw the box plots (means as white diamonds).

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            A new figure when None.

        Returns
        -------
        self : LaplacianDisplay
        """
        if not isinstance(self.values, dict) or not self.values:
            raise TypeError("values must be a non-empty dict of group name to array.")
        values = {k: np.asarray(v, dtype=float).ravel() for k, v in self.values.items()}
        for k, v in values.items():
            if v.size == 0 or not np.isfinite(v).all():
                raise ValueError(f"values[{k!r}] must be non-empty and finite.")
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(1.6 * len(values) + 2, 4))
        data = [np.abs(v) if self.absolute else v for v in values.values()]
        self.means_ = {k: float(v.mean()) for k, v in zip(values, data, strict=True)}
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(data) + 1), list(values))
        ax.plot(range(1, len(data) + 1), list(self.means_.values()), "wD", mec="k")
        ax.set_ylabel("|LO|" if self.absolute else "LO")
        self.ax_, self.figure_ = ax, ax.figure
        return self
