"""skrob's torch part: robustness measures that need gradients (extra ``skrob[torch]``).

Importing ``skrob`` never imports torch; importing ``skrob.torch`` does.
"""

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "skrob.torch needs torch (and skorch for skorch nets): "
        "pip install torch==2.13.0 'skrob[torch]'."
    ) from exc

from skrob.torch.adversarial import (
    AdversarialDistortionScorer,
    certified_radius,
    common_correct_mask,
    minimal_distortion,
)
from skrob.torch.laplacian import LaplacianScorer, expected_probability_change, laplacian

__all__ = [
    "AdversarialDistortionScorer",
    "LaplacianScorer",
    "certified_radius",
    "common_correct_mask",
    "expected_probability_change",
    "laplacian",
    "minimal_distortion",
]
