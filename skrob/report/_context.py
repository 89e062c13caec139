"""What every section reads: the data and options (:class:`ReportContext`), a section's
result, citations and number formatting."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

# Full references of the papers behind each section (docs/references.rst, CITATION.cff).
PAPERS = {
    "000": (
        "Introducing Sample Robustness. Anonymous authors, ICLR 2021 conference "
        "submission (OpenReview 8-sxWOto_iI)",
        "https://openreview.net/forum?id=8-sxWOto_iI",
    ),
    "001": (
        "A. Ilie, M. Popescu, A. Stefanescu. Robustness as Inherent Property of "
        "Datapoints. AISafety workshop at IJCAI-PRICAI 2020, CEUR Workshop Proceedings",
        None,
    ),
    "002": (
        "How Training Data Affect the Accuracy and Robustness of Neural Networks for Image "
        "Classification. Anonymous authors, ICLR 2019 conference submission "
        "(OpenReview HklKWhC5F7)",
        "https://openreview.net/forum?id=HklKWhC5F7",
    ),
    "003": (
        "R. Yang, P. Liu, M. Bilgic. The Analysis of the Expected Change in the "
        "Classification Probability of the Predicted Label. Transactions on Machine "
        "Learning Research (OpenReview guqzvUVPiQ)",
        "https://openreview.net/forum?id=guqzvUVPiQ",
    ),
    "004": (
        "X. Zhang, D. Evans. Understanding Intrinsic Robustness Using Label Uncertainty. ICLR 2022",
        None,
    ),
}

# Feature scales that differ by more than this factor make raw Euclidean distances
# follow the largest features only: the report warns when it does not scale.
SCALE_RATIO_WARNING = 100.0


@dataclass
class ReportContext:
    """The data and options every section reads.

    ``scale``: "standard" standardises every feature (mean 0, standard deviation 1)
    before distances, noise and models; "none" keeps the raw values; "auto" (default) is
    "none" for images with pixel values in [0, 1] and "standard" otherwise. ``X_raw``
    keeps the values as given, for display.
    """

    X: np.ndarray
    y: np.ndarray
    dataset_name: str
    out_dir: Path
    image_shape: tuple | None = None
    label_names: list | None = None
    metric: str = "euclidean"
    algorithm: str = "auto"
    task: str = "auto"
    n_show: int = 16
    random_state: int | None = 0
    verbose: int = 0
    scale: str = "auto"
    feature_names: list | None = None
    progress: bool = False
    row_ids: pd.Index | None = None
    data_notes: list = field(default_factory=list)
    cache: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def __post_init__(self):
        if self.task == "auto":
            from skrob._validation import resolve_task

            self.task = resolve_task(self.y, warn=False)
        self.out_dir = Path(self.out_dir)
        self.X_raw = np.asarray(self.X, dtype=np.float64)
        if self.row_ids is None:
            self.row_ids = pd.RangeIndex(self.X_raw.shape[0], name="sample")
        self.row_ids = pd.Index(self.row_ids)
        if len(self.row_ids) != self.X_raw.shape[0]:
            raise ValueError("row_ids must name every row of X.")
        if self.feature_names is None:
            self.feature_names = [f"x{j}" for j in range(self.X_raw.shape[1])]
        images = _unit_images(self.image_shape, self.X_raw)
        if self.scale not in ("auto", "standard", "none"):
            raise ValueError(f"scale must be 'auto', 'standard' or 'none', got {self.scale!r}.")
        if self.scale == "auto":
            self.scale = "none" if images else "standard"
        if not np.isfinite(self.X_raw).all():
            bad = np.flatnonzero(~np.isfinite(self.X_raw).all(axis=0))
            names = [self.feature_names[j] for j in bad[:10]]
            raise ValueError(
                f"{bad.size} feature columns hold NaN or infinite values: {names}. Replace "
                "or drop them first."
            )
        if self.scale == "standard":
            self.X, _ = standardise(self.X_raw)
            self.space = (
                "standardised features (each feature's mean subtracted and divided by its "
                "standard deviation, as scikit-learn's StandardScaler does): distances are in "
                "standard deviations"
            )
        else:
            self.X = self.X_raw
            self.space = "pixel values in [0, 1], unscaled" if images else "the raw feature values"
            ratio = 1.0 if images else _scale_ratio(self.X_raw)  # images share one unit
            if ratio > SCALE_RATIO_WARNING:
                message = (
                    f"feature standard deviations differ by a factor of {ratio:.3g}: raw "
                    "distances follow the largest features almost alone. Scale the features "
                    "(--scale standard) unless their units are comparable."
                )
                self.notes.append(message)


def standardise(X):
    """``(Z, std)``: each feature's mean subtracted and divided by its standard deviation,
    as scikit-learn's StandardScaler does, at any finite magnitude: each column is first
    divided by its largest absolute value, so that neither values near 1e300 (whose
    squares overflow) nor near 1e-200 (whose variance underflows, which StandardScaler
    then takes for a constant feature) lose the data. Constant columns become 0."""
    from skrob._validation import unit_columns

    Z, top = unit_columns(X)
    mean = Z.mean(axis=0)
    sd = Z.std(axis=0)
    constant = ~(sd > 0)
    sd[constant] = 1.0
    Z = (Z - mean) / sd
    with np.errstate(over="ignore"):
        std = np.where(constant, 0.0, sd * top)
    return Z, std


def _scale_ratio(X):
    """The largest feature standard deviation over the smallest positive one."""
    from skrob._validation import column_std

    std = column_std(X)
    spread = std[std > 0]
    with np.errstate(over="ignore"):
        return float(spread.max() / spread.min()) if spread.size else 1.0


def _unit_images(image_shape, X):
    """Whether the rows of X are images (``image_shape`` given) with values in [0, 1]."""
    return image_shape is not None and X.min() >= 0 and X.max() <= 1


class SectionSkipped(Exception):
    """A section that cannot be computed on this data; its message says why."""


@dataclass
class Section:
    title: str
    html: str
    summary: dict = field(default_factory=dict)
    anchor: str = ""


def cite(key):
    """An HTML link to paper ``key``'s full reference in the report's references list."""
    return f'<a href="#paper-{key}">[{key}]</a>'


def significant(value, digits=4):
    """A number rounded for people: ``digits`` significant digits (ints unchanged)."""
    if isinstance(value, (bool, np.bool_)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    if not np.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{digits}g}")


def _text(value):
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) >= 1e4 else f"{value:.4g}"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
