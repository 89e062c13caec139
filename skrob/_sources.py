"""The robustness source contract, written down once.

A *robustness source* is what ``RobustSubsetSelector(robustness=)``,
``RobustnessSubsetSplit(robustness=)`` and ``subset_scorer(robustness=)`` take: an
estimator with

- ``fit(X, y)``, after which ``robustness_`` holds one value per training row in
  [0, 1], greater meaning more robust;
- ``robustness(X, y)``: the same measure for other labelled rows, against what ``fit``
  saw (``R_x(t)`` of paper 000, or RPR under the fitted model);
- ``task``: "auto", "classification" or "regression" (the labels it accepts); a source
  without it takes class labels.

skrob ships two: :class:`~skrob.SampleRobustnessTransformer` (sample robustness, the
default) and :class:`~skrob.RPRScorer` (RPR, ``steps / max_steps``, classification).
"""

from sklearn.base import clone

from skrob._validation import resolve_task


def robustness_source(robustness):
    """A fresh clone of a robustness source (``SampleRobustnessTransformer()`` for None)."""
    if robustness is None:
        from skrob.sample_robustness import SampleRobustnessTransformer

        return SampleRobustnessTransformer()
    missing = [m for m in ("fit", "robustness") if not callable(getattr(robustness, m, None))]
    if missing:
        raise TypeError(
            f"robustness={robustness!r} is no robustness source: it lacks {missing}. Pass a "
            "SampleRobustnessTransformer or an RPRScorer (see skrob._sources)."
        )
    return clone(robustness)


def source_task(source, y):
    """The task of ``y`` for this source: its ``task`` parameter, class labels without one."""
    return resolve_task(y, getattr(source, "task", "classification"))


def is_rpr(source):
    """Whether the source is RPR (steps / max_steps), not sample robustness."""
    from skrob.rpr import RPRScorer

    return isinstance(source, RPRScorer)
