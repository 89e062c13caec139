"""Minimal distortion of any fitted model (paper 002), one contract for both families.

- :func:`decision_based_distortion`: the smallest perturbation found that changes a
  classifier's correct prediction, from ``predict`` alone (HopSkipJump, RayS), for any
  classifier and Pipeline; :class:`DecisionDistortionScorer` makes it a scorer.
- :func:`exact_distortion`: the exact minimum, where the model's decision regions are known
  (linear models, decision trees, tree ensembles by mixed-integer programming).
- :func:`relative_error_distortion`: the smallest input change that breaks a regressor's
  prediction (paper 002, §2).
- :func:`common_correct_mask`: the samples every given model classifies correctly.

The contract, shared with :func:`skrob.torch.minimal_distortion` (DESIGN §10): per
sample, NaN = misclassified at the start, ``inf`` = not flipped within the box / budget,
a finite value = the norm of a verified adversarial point (attacks) or the proven minimum
(exact; where a time limit struck, the best verified point with a warning, and the bracket
with ``return_bounds=True``). ``return_adversarial=True`` returns
``(distances, X_adv, success)``. ``clip`` is None (no box), or ``(low, high)`` with each
side None (open), a number, or one number per feature. The scorers share one base
(:class:`skrob.distortion._scorers.DistortionScorer`): ``statistic`` in ``{"mean",
"robust_accuracy", "certified_accuracy"}``, ``epsilon``, common random numbers when
``random_state=None``.
"""

from skrob.distortion._common import common_correct_mask
from skrob.distortion._decision import decision_based_distortion
from skrob.distortion._exact import exact_distortion
from skrob.distortion._regression import relative_error_distortion
from skrob.distortion._scorers import DecisionDistortionScorer

__all__ = [
    "DecisionDistortionScorer",
    "common_correct_mask",
    "decision_based_distortion",
    "exact_distortion",
    "relative_error_distortion",
]
