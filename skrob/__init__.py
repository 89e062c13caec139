"""skrob: robustness of data and models, the scikit-learn way."""

from skrob.sample_robustness import SampleRobustnessTransformer, sample_robustness
from skrob.selection import RobustSubsetEstimator, RobustSubsetSelector

__version__ = "0.1.0"

__all__ = [
    "RobustSubsetEstimator",
    "RobustSubsetSelector",
    "SampleRobustnessTransformer",
    "__version__",
    "sample_robustness",
]
