"""skrob: robustness of data and models, the scikit-learn way."""

from skrob.diagnosis import diagnose, label_issues
from skrob.distortion import (
    DecisionDistortionScorer,
    common_correct_mask,
    decision_based_distortion,
    exact_distortion,
    relative_error_distortion,
)
from skrob.label_uncertainty import (
    IntrinsicRobustnessEstimator,
    knn_soft_labels,
    label_uncertainty,
)
from skrob.model_selection import (
    RobustnessSubsetSplit,
    balanced_nested_subsets,
    robustness_learning_curve,
    subset_scorer,
)
from skrob.perturbations import GaussianNoise, PixelNoise, SphereNoise, UniformNoise
from skrob.rpr import RPRScorer, label_flip_rate, rpr_curve, rpr_steps
from skrob.sample_robustness import SampleRobustnessTransformer, sample_robustness
from skrob.selection import RobustSubsetEstimator, RobustSubsetSelector

__version__ = "0.1.0"

__all__ = [
    "DecisionDistortionScorer",
    "GaussianNoise",
    "IntrinsicRobustnessEstimator",
    "PixelNoise",
    "RPRScorer",
    "RobustSubsetEstimator",
    "RobustSubsetSelector",
    "RobustnessSubsetSplit",
    "SampleRobustnessTransformer",
    "SphereNoise",
    "UniformNoise",
    "__version__",
    "balanced_nested_subsets",
    "common_correct_mask",
    "decision_based_distortion",
    "diagnose",
    "exact_distortion",
    "knn_soft_labels",
    "label_issues",
    "label_flip_rate",
    "label_uncertainty",
    "relative_error_distortion",
    "robustness_learning_curve",
    "rpr_curve",
    "rpr_steps",
    "sample_robustness",
    "subset_scorer",
]
