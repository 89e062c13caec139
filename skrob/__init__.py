"""skrob: robustness of data and models, the scikit-learn way."""

from skrob.sample_robustness import SampleRobustnessTransformer, sample_robustness

__version__ = "0.1.0"

__all__ = [
    "SampleRobustnessTransformer",
    "__version__",
    "sample_robustness",
]
