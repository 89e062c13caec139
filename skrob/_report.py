"""``skrob report``: an HTML page with tables and PNG plots about a labelled dataset.

Each capability adds a section: a function ``(context) -> Section``. Sections share the
loaded data through :class:`ReportContext`; the first, :func:`overview_section`, gives
the verdict a reader sees first.
"""

import html
import re
import sys
import time
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
        standardised, std = standardise(self.X_raw)
        spread = std[std > 0]
        with np.errstate(over="ignore"):
            ratio = float(spread.max() / spread.min()) if spread.size else 1.0
        if self.scale == "standard":
            self.X = standardised
            self.space = (
                "standardised features (each feature's mean subtracted and divided by its "
                "standard deviation, as scikit-learn's StandardScaler does): distances are in "
                "standard deviations"
            )
        else:
            self.X = self.X_raw
            self.space = "pixel values in [0, 1], unscaled" if images else "the raw feature values"
            if ratio > SCALE_RATIO_WARNING and not images:
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


def _header(path, sep):
    """The column names of a CSV file as written (pandas renames duplicates to 'a.1')."""
    import csv
    import gzip

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", newline="", encoding="utf-8-sig") as f:
        return next(csv.reader(f, delimiter=sep), [])


@dataclass
class Table:
    """A data file made ready for the report: numeric features ``X``, labels ``y``, the
    feature names, the file's row identity of every kept row, and one note per thing
    done to the data (for the page)."""

    X: np.ndarray
    y: np.ndarray
    feature_names: list
    row_ids: pd.Index
    notes: list


# A column of strings with more distinct values than this share of the rows (and than
# _MAX_CATEGORIES) is free text or an identifier, not a category.
_MAX_CATEGORIES = 50
_ID_NAME = re.compile(r"(^|[^a-z])(id|uuid|guid|key)$", re.IGNORECASE)


def _column_kind(series):
    """'numeric', 'id', 'text' or 'categorical'."""
    values = series.dropna()
    n_unique = values.nunique()
    all_unique = len(values) >= 20 and n_unique == len(values)
    if pd.api.types.is_bool_dtype(series):
        return "categorical"
    if pd.api.types.is_numeric_dtype(series):
        integral = pd.api.types.is_integer_dtype(series) or (
            len(values) and np.all(np.mod(values.to_numpy(dtype=float), 1) == 0)
        )
        if integral and all_unique and _ID_NAME.search(str(series.name)):
            return "id"
        if pd.api.types.is_integer_dtype(series) and all_unique:
            sorted_values = np.sort(values.to_numpy())
            if np.all(np.diff(sorted_values) == 1):  # 1, 2, 3, ...: a row number
                return "id"
        return "numeric"
    if all_unique:
        return "id" if values.astype(str).str.len().mean() <= 40 else "text"
    if n_unique > _MAX_CATEGORIES and n_unique > 0.5 * len(values):
        return "text"
    if values.astype(str).str.len().mean() > 60:
        return "text"
    return "categorical"


def load_table(path, target, *, drop=(), index=None, impute="auto"):
    """Read a CSV or Parquet file and make it ready for distances: a :class:`Table`.

    Rows with a missing label are dropped (counted). Columns: ``drop`` and the ``index``
    column (the rows' identity) are removed; identifier-like columns (all values distinct:
    strings, row numbers, integer columns named like ``id``) and free text are dropped
    with a note; categorical columns are one-hot encoded (one 0/1 column per category, a
    missing value its own category); missing numeric values are imputed with the column
    median (``impute="auto"``) or refused (``impute="none"``) naming the columns. Infinite
    values are refused.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such data file: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            df = pd.read_parquet(path)
        except ImportError as exc:
            raise ValueError(
                f"reading Parquet needs pyarrow ({exc}); install it with "
                "pip install pyarrow, or pass a CSV file."
            ) from None
        names = [str(c) for c in df.columns]
    elif path.suffix.lower() in (".csv", ".gz", ".txt", ".tsv"):
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        try:
            names = _header(path, sep)
            df = pd.read_csv(path, sep=sep)
        except (UnicodeDecodeError, pd.errors.ParserError, OSError) as exc:
            raise ValueError(f"{path} could not be read as a table: {exc}") from None
    else:
        raise ValueError(f"Unknown data format {path.suffix!r}: use .csv or .parquet.")
    if target is None:
        raise ValueError("--data needs --target, the name of the label column.")
    duplicates = sorted({c for c in names if names.count(c) > 1})
    if duplicates:
        which = (
            f"the target {target!r} names {names.count(target)} columns"
            if target in duplicates
            else f"duplicate column names {duplicates[:10]}"
        )
        raise ValueError(
            f"{path}: {which}; every column needs its own name. Rename them in the file."
        )
    df.columns = [str(c) for c in df.columns]
    for option, columns in (("--target", [target]), ("--drop", list(drop)), ("--index", [index])):
        missing = [c for c in columns if c is not None and c not in df.columns]
        if missing:
            raise ValueError(
                f"{option}: no column {missing[0]!r} in {path.name}; its columns are "
                f"{list(df.columns)[:20]}{' ...' if df.shape[1] > 20 else ''}."
            )
    if target in drop or target == index:
        raise ValueError(f"The target {target!r} cannot be dropped or be the index.")
    if len(df) == 0:
        raise ValueError(f"{path} has a header but no rows.")
    notes = []
    row_ids = df[index] if index is not None else pd.RangeIndex(len(df), name="row")
    row_ids = pd.Index(row_ids, name=index or "row")
    if index is not None and not row_ids.is_unique:
        notes.append(f"the index column {index!r} repeats values; rows keep them as given")
    labels = df[target]
    missing = labels.isna().to_numpy()
    if missing.all():
        raise ValueError(f"Every label of {target!r} is missing.")
    if missing.any():
        notes.append(
            f"{int(missing.sum()):,} rows without a label ({target!r} missing) were left out"
        )
        df, row_ids = df.loc[~missing], row_ids[~missing]
    y = df[target].to_numpy()
    features = df.drop(columns=[target, *drop, *([index] if index is not None else [])])
    if drop:
        notes.append(f"dropped as asked (--drop): {', '.join(map(str, drop))}")
    kinds = {c: _column_kind(features[c]) for c in features.columns}
    for kind, words in (
        ("id", "identifier-like (every value distinct), not a feature"),
        ("text", "free text, not a feature"),
    ):
        cols = [c for c, k in kinds.items() if k == kind]
        if cols:
            notes.append(f"dropped as {words}: {', '.join(cols[:10])}")
    numeric = [c for c, k in kinds.items() if k == "numeric"]
    categorical = [c for c, k in kinds.items() if k == "categorical"]
    if not numeric and not categorical:
        raise ValueError(
            f"{path} has no feature column left besides the target {target!r} "
            "(identifier and text columns are dropped)."
        )
    num = features[numeric].astype(np.float64)
    values = num.to_numpy()
    finite_or_gap = (np.isfinite(values) | np.isnan(values)).all(axis=0)
    infinite = [c for c, ok in zip(numeric, finite_or_gap, strict=True) if not ok]
    if infinite:
        raise ValueError(
            f"Feature columns hold infinite values: {infinite[:10]}. Replace or drop them."
        )
    gaps = num.isna().sum()
    gaps = gaps[gaps > 0]
    if len(gaps):
        if impute == "none":
            raise ValueError(
                f"Feature columns hold missing values: {list(gaps.index[:10])} "
                f"({int(gaps.sum()):,} values). Drop or fill them, or leave --impute at "
                "its default (the column median)."
            )
        num = num.fillna(num.median())
        notes.append(
            f"{int(gaps.sum()):,} missing values in {len(gaps)} numeric columns "
            f"({', '.join(list(gaps.index[:5]))}{', ...' if len(gaps) > 5 else ''}) were "
            "replaced by the column median"
        )
    parts, names_out = [num.to_numpy()], list(numeric)
    if categorical:
        cat = features[categorical].astype("object").where(features[categorical].notna(), "missing")
        dummies = pd.get_dummies(cat.astype(str), prefix=categorical, prefix_sep="=")
        parts.append(dummies.to_numpy(dtype=np.float64))
        names_out += [str(c) for c in dummies.columns]
        notes.append(
            f"categorical columns one-hot encoded (one 0/1 column per category, a missing "
            f"value its own category): {', '.join(categorical[:10])}"
        )
    X = np.hstack(parts)
    return Table(X, y, names_out, row_ids, notes)


def _fig_to_png(fig, ctx, name, alt):
    path = ctx.out_dir / name
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img src="{html.escape(name)}" alt="{html.escape(alt)}">'


def _table(df, index=True):
    return df.to_html(
        classes="table", float_format=lambda v: f"{v:.4g}", border=0, index=index, na_rep="—"
    )


def _names(ctx, classes):
    """Display names of ``classes`` (the sorted unique labels)."""
    if ctx.label_names is not None:
        return [str(ctx.label_names[int(c)]) for c in classes]
    return [str(c) for c in classes]


def _name_map(ctx, classes):
    """{label: display name} for ``classes``."""
    return dict(zip(classes, _names(ctx, classes), strict=True))


def _write_csv(ctx, frame):
    """``diagnosis.csv``: one row per sample, named by the data's own row identity (the
    file's row number or its --index column), the nearest other sample too; numbers with
    10 significant digits."""
    out = frame.copy()
    out.index = ctx.row_ids
    if "nearest_other" in out:
        out["nearest_other"] = ctx.row_ids[out["nearest_other"].to_numpy()]
    out.to_csv(ctx.out_dir / "diagnosis.csv", float_format="%.10g")


def _data_notes(ctx):
    """What was done to the data before any distance, as a list for the page."""
    if not ctx.data_notes:
        return ""
    items = "".join(f"<li>{html.escape(n)}</li>" for n in ctx.data_notes)
    return f"<p><b>How the data were prepared.</b></p><ul class='prep'>{items}</ul>"


def _diagnosis(ctx):
    """:func:`skrob.diagnosis._diagnose` on the report's space, computed once."""
    if "diagnosis" not in ctx.cache:
        from skrob.diagnosis import _diagnose

        t = time.perf_counter()
        frame, dist = _diagnose(
            ctx.X,
            ctx.y,
            metric=ctx.metric,
            metric_params=None,
            n_neighbors=min(10, ctx.X.shape[0] - 1),
            least_robust=0.1,
            batch_size=None,
            n_jobs=None,
            verbose=ctx.verbose,
        )
        ctx.cache["diagnosis"] = frame, dist, time.perf_counter() - t
    return ctx.cache["diagnosis"]


_LEVELS = (
    (0.0, "perfectly separated"),
    (0.02, "well separated"),
    (0.10, "mostly separated"),
    (0.30, "overlapping"),
    (1.01, "heavily overlapping"),
)


# the regression verdict: R² of the leave-one-out 5-nearest-neighbour prediction
_REGRESSION_LEVELS = (
    (0.9, "smooth in the features: nearby samples have nearly the same target"),
    (0.7, "mostly predictable from nearby samples"),
    (0.4, "noisy: nearby samples often have quite different targets"),
    (-np.inf, "hard to predict from nearby samples"),
)
_KNN_K = 5


def _regression_level(r2):
    for bound, words in _REGRESSION_LEVELS:
        if r2 >= bound:
            return words
    return _REGRESSION_LEVELS[-1][1]


def _loo_knn_prediction(ctx):
    """Each sample's target predicted by the mean of its 5 nearest *other* samples, and
    the R² of those predictions (uniform over outputs)."""
    from sklearn.metrics import r2_score
    from sklearn.neighbors import NearestNeighbors

    k = min(_KNN_K, ctx.X.shape[0] - 1)
    _, idx = NearestNeighbors(n_neighbors=k, metric=ctx.metric).fit(ctx.X).kneighbors()
    y = np.asarray(ctx.y, dtype=float)
    prediction = y[idx].mean(axis=1)
    return prediction, float(r2_score(y, prediction)), k


def _level(share):
    for bound, words in _LEVELS:
        if share <= bound:
            return words
    return _LEVELS[-1][1]


def _class_pairs(ctx, frame, dist, classes):
    """The closest distance between every two classes, and the pairs ranked by it."""
    codes = np.searchsorted(classes, ctx.y)
    K = classes.size
    closest = np.full((K, K), np.inf)
    np.minimum.at(closest, codes, dist)  # row a: min over samples of class a
    closest = np.minimum(closest, closest.T)
    np.fill_diagonal(closest, np.nan)
    nearest_code = np.searchsorted(classes, frame["nearest_other_label"].to_numpy())
    counts = np.zeros((K, K), dtype=int)
    np.add.at(counts, (codes, nearest_code), 1)
    relabel = frame["relabel"].to_numpy()
    moves = np.zeros((K, K), dtype=int)
    suggested = np.searchsorted(classes, frame["suggested_label"].to_numpy())
    np.add.at(moves, (codes[relabel], suggested[relabel]), 1)
    a, b = np.triu_indices(K, 1)
    pairs = pd.DataFrame(
        {
            "class A": np.array(_names(ctx, classes))[a],
            "class B": np.array(_names(ctx, classes))[b],
            "closest distance": closest[a, b],
            "samples whose nearest other class is the other": counts[a, b] + counts[b, a],
            "relabel suggestions between them": moves[a, b] + moves[b, a],
        }
    ).sort_values(["closest distance", "relabel suggestions between them"], ascending=[True, False])
    return closest, pairs.reset_index(drop=True)


def _pairs(frame, idx):
    """(sample, its nearest differently labelled sample) for ``idx``, a mutual pair once."""
    partner_of = frame["nearest_other"].to_numpy()
    pairs, seen = [], set()
    for i in idx:
        j = int(partner_of[i])
        if (j, int(i)) not in seen:
            seen.add((int(i), j))
            pairs.append((int(i), j))
    return pairs


def _pair_figure(ctx, frame, idx, classes):
    """Each sample beside its nearest differently labelled sample, as images."""
    from skrob.plotting import plot_image_grid

    names = _name_map(ctx, classes)
    images, titles = [], []
    for i, j in _pairs(frame, idx):
        images += [ctx.X_raw[i], ctx.X_raw[j]]
        titles += [
            f"#{i} {names[ctx.y[i]]}\nR={frame['robustness'].iloc[i]:.3f}",
            f"nearest other: #{j}\n{names[ctx.y[j]]}, d={frame['reach'].iloc[i]:.3g}",
        ]
    fig = plot_image_grid(np.asarray(images).reshape(-1, *ctx.image_shape), titles, n_cols=8)
    return _fig_to_png(
        fig,
        ctx,
        "least_robust_pairs.png",
        "the least robust samples beside their nearest differently labelled samples",
    )


def _pair_table(ctx, frame, idx, classes):
    """Each sample above its nearest differently labelled sample, in the raw features."""
    names = _name_map(ctx, classes)
    pairs = _pairs(frame, idx)[:8]
    left = np.array([i for i, _ in pairs])
    right = np.array([j for _, j in pairs])
    diff = np.abs(ctx.X[left] - ctx.X[right]).sum(axis=0)
    shown = np.sort(np.argsort(-diff, kind="stable")[:8])
    rows = []
    for i, j in pairs:
        for role, k in (("sample", i), ("its nearest other", j)):
            row = {"row": ctx.row_ids[k], "": role, "label": names[ctx.y[k]]}
            row["R" if role == "sample" else "distance"] = None
            rows.append(row)
            row["R / distance"] = (
                frame["robustness"].iloc[i] if role == "sample" else frame["reach"].iloc[i]
            )
            del row["R" if role == "sample" else "distance"]
            row.update({ctx.feature_names[f]: ctx.X_raw[k, f] for f in shown})
    note = (
        f"<p>The {len(pairs)} least robust samples (a mutual pair once), each above its nearest "
        "differently labelled sample, with R for the sample and the distance between the two "
        "for its neighbour"
    )
    if shown.size < ctx.X.shape[1]:
        note += (
            f"; the {shown.size} of {ctx.X.shape[1]} features in which these pairs differ "
            "most (in the report's feature space), with values as given in the data"
        )
    return note + ".</p><div class='wide'>" + _table(pd.DataFrame(rows), index=False) + "</div>"


def overview_section(ctx):
    """What the report found, in a few sentences: robustness, duplicates, close classes."""
    if ctx.task != "classification":
        return _regression_overview(ctx)
    frame, dist, elapsed = _diagnosis(ctx)
    classes = np.unique(ctx.y)
    R = frame["robustness"].to_numpy()
    n = R.size
    relabel = frame["relabel"].to_numpy()
    duplicates = frame["conflicting_duplicate"].to_numpy()
    share = relabel.mean()
    closest, pairs = _class_pairs(ctx, frame, dist, classes)
    _write_csv(ctx, frame)
    reach = frame["reach"].to_numpy()
    top = pairs.head(3)
    pair_words = ", ".join(
        f"{html.escape(a)} and {html.escape(b)} ({d:.3g})"
        for a, b, d in zip(top["class A"], top["class B"], top["closest distance"], strict=True)
    )
    verdict = [
        f"<p class='verdict'><b>The classes are {_level(share)}.</b> "
        f"{relabel.sum():,} of {n:,} samples ({100 * share:.3g} %) lie closer to a sample of "
        "another class than to any sample of their own: their nearest neighbour disagrees "
        "with their label (leave-one-out 1-nearest-neighbour error).</p>",
        "<ul>",
        f"<li><b>Robustness.</b> Median sample robustness R = {np.median(R):.3g} "
        f"(median reach r = {np.median(reach):.3g}). R = r / (r + 1), r the distance from a "
        f"sample to the nearest differently labelled sample {cite('000')}: 0 means a "
        "differently labelled copy exists, values near 1 that other classes are far away. "
        "Compare values within this dataset; they depend on the feature space.</li>",
        f"<li><b>Conflicting duplicates.</b> {int(duplicates.sum()):,} samples have a copy "
        "with the same features and another label"
        + (": no model can classify both; fix or remove them." if duplicates.any() else ".")
        + "</li>",
        f"<li><b>Closest classes.</b> {pair_words}: the classes whose samples come nearest "
        "to each other (distance in brackets), where a model will confuse most.</li>",
        "</ul>",
        "<p><b>What to do.</b></p><ul>",
    ]
    issues = frame["label_issue"].to_numpy()
    quality = frame["label_quality"].to_numpy()
    if duplicates.any() or issues.any():
        verdict.append(
            f"<li>Look at the samples in <i>Samples to look at first</i> below: "
            f"{int(duplicates.sum()):,} conflicting duplicates and {int(issues.sum()):,} "
            "likely label errors (confident learning on the labels of each sample's "
            "nearest neighbours, as cleanlab finds label issues, without a model). Each is "
            "mislabelled, ambiguous, or a sign that the features cannot tell these classes "
            "apart.</li>"
        )
    verdict += [
        f"<li>Download the per-sample table, <a href='diagnosis.csv' download>diagnosis.csv</a> "
        "(<code>skrob.diagnose</code>): robustness, reach, nearest differently labelled "
        "sample, suggested label, conflicting-duplicate flag and kNN label uncertainty "
        f"{cite('004')} of every sample.</li>",
        "<li>Train on the robust part and test on the hard part: <i>Training and testing on "
        "robust subsets</i> below shows what a model gains; "
        "<code>RobustSubsetSelector</code> and <code>subset_scorer</code> do it in a "
        "Pipeline or GridSearchCV.</li>",
        "</ul>",
        f"<p class='space'>Distances are computed on {html.escape(ctx.space)}.</p>",
        _data_notes(ctx),
    ]
    verdict += [f"<p class='warning'>Warning: {html.escape(n_)}</p>" for n_ in ctx.notes]

    # Samples to look at first: conflicting duplicates, then likely label errors, each
    # group by label quality (lowest first)
    order = np.lexsort((quality, ~duplicates, ~(duplicates | issues)))
    look = order[: max(ctx.n_show, 1)]
    look = look[duplicates[look] | issues[look]]
    names = _name_map(ctx, classes)
    parts = ["\n".join(verdict)]
    if look.size:
        table = pd.DataFrame(
            {
                "sample": ctx.row_ids[look],
                "label": [names[v] for v in ctx.y[look]],
                "suggested label": [names[v] for v in frame["suggested_label"].to_numpy()[look]],
                "label quality": quality[look],
                "conflicting duplicate": np.where(duplicates[look], "yes", ""),
                "R": R[look],
                "R if relabelled": frame["suggested_robustness"].to_numpy()[look],
                "nearest other": ctx.row_ids[frame["nearest_other"].to_numpy()[look]],
                "label uncertainty": frame["label_uncertainty"].to_numpy()[look],
            }
        )
        parts.append(
            "<h3 id='look-first'>Samples to look at first</h3><p>Order: conflicting "
            "duplicates first, then likely label errors; within each, lowest label quality "
            f"first. Showing {look.size:,} of {int((duplicates | issues).sum()):,}; "
            "<code>diagnosis.csv</code> has all (columns <code>label_issue</code>, "
            "<code>label_quality</code>). Label quality: the probability of the given label "
            "estimated from the labels of the sample's nearest other samples (averaged over "
            "5 to 50 neighbours), low meaning likely wrong. R if relabelled: the robustness "
            "under the suggested label. Label uncertainty "
            f"{cite('004')}: 1 − (share of the 10 nearest samples with the sample's label) + "
            "(largest share of another label), from 0 (all agree) to 2 (all carry one other "
            "label).</p>" + _table(table, index=False)
        )
    least = np.argsort(R, kind="stable")[: ctx.n_show]
    if least.size:
        body = (
            _pair_figure(ctx, frame, least, classes)
            if ctx.image_shape is not None
            else _pair_table(ctx, frame, least, classes)
        )
        parts.append(
            "<h3 id='least-robust'>The least robust samples and their nearest differently "
            "labelled samples</h3>"
            + (
                "<p>Each sample beside the sample of another class nearest to it (a mutual "
                "pair once); d is their distance, the sample's reach.</p>"
                if ctx.image_shape is not None
                else ""
            )
            + body
        )
    parts.append(_pair_matrix(ctx, closest, pairs, classes))
    summary = {
        "median robustness R": significant(np.median(R)),
        "mean robustness R": significant(R.mean()),
        "samples nearer another class than their own": int(relabel.sum()),
        "likely label errors": int(frame["label_issue"].sum()),
        "conflicting duplicates": int(duplicates.sum()),
        "closest classes": "; ".join(
            f"{a} & {b}" for a, b in zip(top["class A"], top["class B"], strict=True)
        ),
        "robustness time (s)": significant(elapsed, 3),
    }
    return Section("Verdict", "\n".join(parts), summary, "verdict")


def _pair_matrix(ctx, closest, pairs, classes):
    """The class-pair matrix of closest distances, as a heat map and a ranked table."""
    import matplotlib.pyplot as plt

    K = classes.size
    names = _names(ctx, classes)
    parts = [
        "<h3 id='class-pairs'>How close the classes come</h3><p>The smallest distance between "
        "a sample of one class and a sample of the other, for every pair of classes; small "
        "means the classes touch somewhere.</p>"
    ]
    if 2 < K <= 40:
        fig, ax = plt.subplots(figsize=(1.2 + 0.45 * K, 0.9 + 0.4 * K))
        cmap = plt.get_cmap("viridis").copy()
        cmap.set_bad("white")  # the diagonal: a class and itself
        im = ax.imshow(np.ma.masked_invalid(closest), cmap=cmap)
        ax.set_xticks(range(K), names, rotation=90, fontsize=8)
        ax.set_yticks(range(K), names, fontsize=8)
        if K <= 15:
            for a in range(K):
                for b in range(K):
                    if a != b:
                        ax.text(
                            b,
                            a,
                            f"{closest[a, b]:.2g}",
                            ha="center",
                            va="center",
                            fontsize=7,
                            color="w",
                        )
        fig.colorbar(im, ax=ax, label="closest distance")
        fig.tight_layout()
        parts.append(_fig_to_png(fig, ctx, "class_pairs.png", "closest distance between classes"))
    parts.append("<p>The closest pairs:</p>" + _table(pairs.head(10), index=False))
    return "\n".join(parts)


def _regression_robustness(ctx):
    """R of every sample for a real-valued target, computed once; and its time."""
    if "robustness" not in ctx.cache:
        from skrob.sample_robustness import sample_robustness

        t = time.perf_counter()
        R = sample_robustness(
            ctx.X, ctx.y, task="regression", metric=ctx.metric, verbose=ctx.verbose
        )
        ctx.cache["robustness"] = R, time.perf_counter() - t
    return ctx.cache["robustness"]


def _regression_overview(ctx):
    """Verdict for real-valued targets: how steep the target is between near samples."""
    R, elapsed = _regression_robustness(ctx)
    prediction, r2, k = _loo_knn_prediction(ctx)
    zero = int((R == 0).sum())
    order = np.argsort(R, kind="stable")[: ctx.n_show]
    rows = pd.DataFrame({"sample": ctx.row_ids[order], "R": R[order]})
    table = {"robustness": R}
    if ctx.y.ndim == 1:
        rows["target"] = ctx.y[order]
        rows[f"mean target of the {k} nearest others"] = prediction[order]
        table[f"knn{k}_target"] = prediction
    _write_csv(ctx, pd.DataFrame(table))
    text = (
        f"<p class='verdict'><b>The target is {_regression_level(r2)}.</b> Predicting each "
        f"sample's target by the mean target of its {k} nearest other samples explains "
        f"R² = {r2:.3g} of the target's variance (1: all of it; 0: no better than the "
        "mean). A model that uses these features can be expected to do about as well, or "
        "better where it learns more than nearness.</p>"
        f"<ul><li><b>Robustness.</b> Median sample robustness R = {np.median(R):.3g}. For a "
        f"real-valued target {cite('000')}, R = 1 / (1 + Q / max|y|), Q the largest "
        "|y − y'| / d(x, x') over the other samples: the steepest change of the target "
        "around the sample, relative to the target's size. Near 1: the target changes "
        "slowly around the sample; near 0: a nearby sample has a very different target.</li>"
        f"<li>{zero:,} samples have R = 0: another sample with the same features has "
        "a different target (fix or average them).</li>"
        "<li>The least robust samples below sit where the target jumps: check them for "
        "errors, or expect models to be least accurate there.</li>"
        "<li>Per-sample values: <a href='diagnosis.csv' download>diagnosis.csv</a> "
        f"(robustness, and the mean target of the {k} nearest other samples).</li></ul>"
        f"<p class='space'>Distances are computed on {html.escape(ctx.space)}.</p>"
        + _data_notes(ctx)
        + "".join(f"<p class='warning'>Warning: {html.escape(n_)}</p>" for n_ in ctx.notes)
        + "<h3 id='least-robust'>The least robust samples</h3><p>Lowest R first.</p>"
        + _table(rows, index=False)
    )
    summary = {
        f"R² of the leave-one-out {k}-nearest-neighbour prediction": significant(r2),
        "median robustness R": significant(np.median(R)),
        "mean robustness R": significant(R.mean()),
        "samples with R = 0 (same features, different target)": zero,
        "robustness time (s)": significant(elapsed, 3),
    }
    return Section("Verdict", text, summary, "verdict")


def _per_class_part(ctx, R):
    """The per-class table and distributions."""
    from skrob.plotting import RobustnessDistributionDisplay

    classes = np.unique(ctx.y)
    names = _names(ctx, classes)
    per_class = pd.DataFrame({"class": names}).set_index("class")
    per_class["samples"] = [int((ctx.y == c).sum()) for c in classes]
    for stat, f in (("mean R", np.mean), ("median R", np.median), ("min R", np.min)):
        per_class[stat] = [f(R[ctx.y == c]) for c in classes]
    least = np.argsort(R, kind="stable")[: R.size // 2]
    per_class["share of the least robust half"] = [
        float(np.mean(ctx.y[least] == c)) for c in classes
    ]
    disp = RobustnessDistributionDisplay.from_robustness(R, ctx.y, label_names=names)
    return (
        "<h3>Per class</h3><p>Share of the least robust half: the fraction of the dataset's "
        "least robust half that belongs to the class (equal shares would be "
        f"{1 / classes.size:.3g}): the classes that need the most attention.</p>"
        + _table(per_class)
        + "<h3>Distribution of R in each class</h3>"
        + _fig_to_png(disp.figure_, ctx, "robustness_per_class.png", "histogram of R in each class")
    )


def sample_robustness_section(ctx):
    """Robustness per class, and the most robust samples."""
    from skrob.plotting import plot_image_grid

    if ctx.task != "classification":
        import matplotlib.pyplot as plt

        R, _ = _regression_robustness(ctx)
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        axes[0].hist(R, bins=40, color="C0")
        axes[0].set_xlabel("sample robustness R")
        axes[0].set_ylabel("samples")
        yv = ctx.y if ctx.y.ndim == 1 else np.linalg.norm(ctx.y, axis=1)
        axes[1].scatter(yv, R, s=3, alpha=0.4)
        axes[1].set_xlabel("target" if ctx.y.ndim == 1 else "|target|")
        axes[1].set_ylabel("R")
        fig.tight_layout()
        html_ = "<h3>Distribution of R, and R against the target</h3>" + _fig_to_png(
            fig, ctx, "robustness_distribution.png", "distribution of R"
        )
        return Section("Sample robustness", html_, anchor="sample-robustness")
    frame, _, _ = _diagnosis(ctx)
    R = frame["robustness"].to_numpy()
    parts = [_per_class_part(ctx, R)]
    if ctx.image_shape is not None and ctx.n_show:
        classes = np.unique(ctx.y)
        names = _name_map(ctx, classes)
        most = np.argsort(-R, kind="stable")[: ctx.n_show]
        fig = plot_image_grid(
            ctx.X_raw[most].reshape(-1, *ctx.image_shape),
            [f"#{i} {names[ctx.y[i]]}\nR={R[i]:.3f}" for i in most],
        )
        parts.append(
            "<h3>The most robust samples</h3><p>Far from every other class: the "
            "prototypes of their class.</p>"
            + _fig_to_png(fig, ctx, "most_robust.png", "the most robust samples")
        )
    return Section(
        f"Sample robustness per class {cite('000')}", "\n".join(parts), anchor="sample-robustness"
    )


# Training subsets (rows) and test subsets (columns) of the performance matrix, as
# (subset, fraction): paper 000's xL/xM and tL/tM.
_TRAIN_SUBSETS = {
    "x": ("all", 1.0),
    "xL80": ("least", 0.8),
    "xM80": ("most", 0.8),
    "xL50": ("least", 0.5),
    "xM50": ("most", 0.5),
}
_TEST_SUBSETS = {
    "t": ("all", 1.0),
    "tL50": ("least", 0.5),
    "tM50": ("most", 0.5),
    "tL20": ("least", 0.2),
    "tM20": ("most", 0.2),
}


def _split(ctx, classification):
    """The 75/25 train/test split the sections share (stratified when every class can be)."""
    key = ("split", classification)
    if key not in ctx.cache:
        from sklearn.model_selection import train_test_split

        y = ctx.y
        stratify = None
        if classification and np.unique(y, return_counts=True)[1].min() >= 2:
            stratify = y
        parts = train_test_split(
            ctx.X, y, test_size=0.25, stratify=stratify, random_state=ctx.random_state
        )
        for part, name in ((parts[2], "training"), (parts[3], "test")):
            if np.unique(part, axis=0).shape[0] < 2:
                raise SectionSkipped(
                    f"the 75/25 split of {y.shape[0]} samples leaves its {name} part "
                    f"({part.shape[0]} samples) with a single "
                    f"{'class' if classification else 'target value'}: too few samples"
                )
        ctx.cache[key] = parts
    return ctx.cache[key]


def robust_subsets_section(ctx):
    """Paper 000's performance matrix of a default model: robust subsets of train and test."""
    from sklearn.base import clone
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    from skrob._subsets import subset_indices
    from skrob.sample_robustness import SampleRobustnessTransformer
    from skrob.selection import RobustSubsetSelector

    classification = ctx.task == "classification"
    X_x, X_t, y_x, y_t = _split(ctx, classification)
    robustness = SampleRobustnessTransformer(
        task=ctx.task, metric=ctx.metric, algorithm=ctx.algorithm, random_state=ctx.random_state
    )
    R_x = clone(robustness).fit(X_x, y_x).robustness_
    R_t = clone(robustness).fit(X_t, y_t).robustness_
    if classification:
        model, score_name = KNeighborsClassifier(n_neighbors=5, metric=ctx.metric), "accuracy"
    else:
        model, score_name = KNeighborsRegressor(n_neighbors=5, metric=ctx.metric), "R²"

    train_sets = {
        name: subset_indices(R_x, subset, fraction)
        for name, (subset, fraction) in _TRAIN_SUBSETS.items()
    }
    aligned = RobustSubsetSelector(strategy="align", robustness=robustness)
    aligned.set_params(random_state=ctx.random_state)
    try:
        train_sets["x aligned to t"] = aligned.fit(X_x, y_x, target_robustness=R_t).sample_indices_
    except ValueError:  # no subset of x has t's histogram (small data): the row stays out
        pass
    test_sets = {
        name: subset_indices(R_t, subset, fraction)
        for name, (subset, fraction) in _TEST_SUBSETS.items()
    }
    matrix = pd.DataFrame(index=pd.Index(list(train_sets), name="trained on"), dtype=float)
    for name, rows in train_sets.items():
        if len(rows) < model.n_neighbors:
            continue  # too few samples for the model: the row stays empty (NaN)
        pred = clone(model).fit(X_x[rows], y_x[rows]).predict(X_t)
        for test_name, cols in test_sets.items():
            if classification:
                value = float(np.mean(pred[cols] == y_t[cols]))
            else:
                residual = ((y_t[cols] - pred[cols]) ** 2).sum()
                value = 1.0 - residual / ((y_t[cols] - y_t[cols].mean(axis=0)) ** 2).sum()
            matrix.loc[name, test_name] = value
    sizes = pd.DataFrame(
        {
            "samples": [len(v) for v in train_sets.values()],
            "mean R": [R_x[v].mean() for v in train_sets.values()],
        },
        index=pd.Index(list(train_sets), name="training subset"),
    )
    parts = [
        "<p>Does the model owe its score to the easy samples? A 75/25 split into a "
        "training set x and a test set t; the robustness of each is computed on itself "
        f"{cite('000')}. Rows: the model trained on all of x, on its least robust (xL80, "
        "xL50) or most robust (xM80, xM50) 80 % or half, or on the largest part of x whose "
        "robustness histogram is proportional to t's ('x aligned to t', "
        "<code>RobustSubsetSelector(strategy='align')</code>). Columns: the score on all of "
        "t, on its least robust (tL50, tL20) or most robust (tM50, tM20) half or fifth. A "
        "model that is much worse on tL50 than on tM50 fails where the classes meet; "
        "compare rows to see which training data help there.</p>",
        f"<h3>{html.escape(type(model).__name__)}(n_neighbors=5): {score_name} of every "
        "training subset (rows) on every test subset (columns)</h3>"
        + _table(matrix)
        + (
            "<p>Empty rows: subsets with fewer samples than the model's neighbours.</p>"
            if matrix.isna().any(axis=None)
            else ""
        ),
        "<h3>Training subsets</h3>" + _table(sizes),
    ]
    summary = {
        f"kNN {score_name}, all test samples": significant(matrix.loc["x", "t"]),
        f"kNN {score_name}, least robust half of the test set": significant(
            matrix.loc["x", "tL50"]
        ),
        f"kNN {score_name}, most robust half of the test set": significant(matrix.loc["x", "tM50"]),
    }
    return Section(
        f"Training and testing on robust subsets {cite('000')}",
        "\n".join(parts),
        summary,
        "robust-subsets",
    )


def rpr_section(ctx):
    """Paper 001's RPR of a default model on a held-out quarter: curve and per-class fractions."""
    from skrob.perturbations import GaussianNoise, PixelNoise
    from skrob.plotting import RPRCurveDisplay
    from skrob.rpr import rpr_steps

    if ctx.task != "classification":
        return Section(
            f"Randomized perturbation robustness {cite('001')}",
            "<p>RPR counts the perturbations until a classifier is fooled: not defined for "
            "regression targets.</p>",
        )
    X_x, X_t, y_x, y_t = _split(ctx, classification=True)
    # Images in [0, 1] go in as they are: scaling would blow up the nearly constant border
    # pixels that PixelNoise replaces.
    model, model_name, _, images = _default_classifier(ctx, X_x)
    t = time.perf_counter()
    model.fit(X_x, y_x)
    noise_length = None
    if images:
        perturbation = PixelNoise(image_shape=ctx.image_shape)
        described = (
            f"up to ⌊√{int(np.prod(ctx.image_shape))}⌋ pixels replaced by uniform values "
            "in [0, 1], the scheme of [001]"
        )
    else:
        sigma = float(0.25 * np.mean(X_x.std(axis=0)))
        if not (np.isfinite(sigma) and sigma > 0):
            raise SectionSkipped(
                f"the features' spread gives no usable noise scale (sigma={sigma:g}); "
                "scale the features (--scale standard)"
            )
        perturbation = GaussianNoise(sigma)
        described = (
            f"Gaussian noise of standard deviation {sigma:.3g}, a quarter of the mean "
            "feature standard deviation"
        )
        noise_length = sigma * np.sqrt(X_x.shape[1])
    max_steps = 100
    steps = rpr_steps(
        model,
        X_t,
        y_t,
        perturbation=perturbation,
        max_steps=max_steps,
        random_state=ctx.random_state,
    )
    elapsed = time.perf_counter() - t
    robust = steps == max_steps
    correct = model.predict(X_t) == y_t
    disp = RPRCurveDisplay.from_steps(steps, max_steps, name=model_name)
    present = np.unique(y_t)
    per_class = pd.DataFrame(
        {
            "test samples": [int((y_t == c).sum()) for c in present],
            "accuracy": [correct[y_t == c].mean() for c in present],
            "RPR-robust fraction": [robust[y_t == c].mean() for c in present],
        },
        index=pd.Index(_names(ctx, present), name="class"),
    )
    parts = [
        "<p>How many random perturbations does a model survive? A 75/25 split; "
        f"{model_name} trained on the 75 %. Each "
        f"test sample is perturbed again and again ({html.escape(described)}), always from "
        f"the original, until the model stops predicting its label, at most {max_steps} "
        f"times; a sample's RPR is the step that first fools the model {cite('001')}, and the "
        "robust fraction is the share whose RPR reaches the cap (misclassified samples "
        "count as not robust).</p>",
        "<h3>Fraction still robust after each step</h3>"
        + _fig_to_png(disp.figure_, ctx, "rpr_curve.png", "fraction still robust per step"),
        "<h3>Per class</h3>" + _table(per_class),
        _rpr_context(ctx, X_x, y_x, X_t, y_t, correct, robust, noise_length),
    ]
    summary = {
        "default model test accuracy": significant(correct.mean()),
        f"test samples surviving {max_steps} random perturbations": significant(robust.mean()),
        "RPR time, model fit included (s)": significant(elapsed, 3),
    }
    return Section(
        f"Randomized perturbation robustness {cite('001')}", "\n".join(parts), summary, "rpr"
    )


def _rpr_context(ctx, X_x, y_x, X_t, y_t, correct, robust, noise_length):
    """What the robust fraction means for these data: against the accuracy, and the
    noise's length against the distance between the classes."""
    kept = robust.sum() / max(correct.sum(), 1)
    text = (
        f"<p><b>What is good here.</b> The robust fraction can be at most the accuracy "
        f"({correct.mean():.3g}): {kept:.3g} of the correctly classified test samples "
        "survive every perturbation. Near 1, random noise of this size does not move the "
        "model's answers; well below 1, the model's answers depend on details the noise "
        "changes."
    )
    if noise_length is not None:
        reach = _distance_to_other_class(X_t, y_t, X_x, y_x, "euclidean")
        median = float(np.median(reach[np.isfinite(reach)])) if np.isfinite(reach).any() else np.nan
        text += (
            f" Each perturbation moves a sample by about {noise_length:.3g} (σ√d, in the "
            f"report's units); the median distance from a test sample to the nearest "
            f"training sample of another class is {median:.3g}, so a step is "
            f"{noise_length / median:.3g} times the gap between the classes. Where it "
            "exceeds 1, noise alone can carry a sample to another class and a low robust "
            "fraction is expected of any model."
        )
    return text + "</p>"


def _default_classifier(ctx, X_x):
    """The report's default model: LogisticRegression, after a StandardScaler unless the
    data are images in [0, 1]; and the box its inputs live in."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    images = _unit_images(ctx.image_shape, ctx.X)
    if images:
        return LogisticRegression(max_iter=2000), "LogisticRegression", (0.0, 1.0), images
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    box = (ctx.X.min(axis=0), ctx.X.max(axis=0))
    return model, "StandardScaler + LogisticRegression", box, images


def _distance_to_other_class(X_t, y_t, X_x, y_x, metric):
    """Each test sample's distance to the nearest training sample of another class."""
    from sklearn.metrics import pairwise_distances_argmin_min

    out = np.full(len(y_t), np.inf)
    for c in np.unique(y_t):
        rows, others = y_t == c, y_x != c
        if others.any():
            _, out[rows] = pairwise_distances_argmin_min(X_t[rows], X_x[others], metric=metric)
    return out


def distortion_section(ctx):
    """Minimal distortion of a default model (paper 002): the smallest change that flips it."""
    from skrob.distortion import decision_based_distortion, exact_distortion

    if ctx.task != "classification":
        return Section(
            f"Minimal adversarial distortion {cite('002')}",
            "<p>The minimal distortion flips a classifier's label: not defined for regression "
            "targets.</p>",
        )
    X_x, X_t, y_x, y_t = _split(ctx, classification=True)
    model, model_name, box, images = _default_classifier(ctx, X_x)
    model.fit(X_x, y_x)
    n = min(len(y_t), 200)
    X_t, y_t = X_t[:n], y_t[:n]
    rows, t0 = {}, time.perf_counter()
    for norm, name in ((np.inf, "L∞"), (2, "L2")):
        found = decision_based_distortion(
            model,
            X_t,
            y_t,
            norm=norm,
            clip=box,
            max_queries=1000,
            random_state=ctx.random_state,
        )
        exact = exact_distortion(model, X_t, y_t, norm=norm, clip=box)
        ok = np.isfinite(found) & np.isfinite(exact)
        reach = _distance_to_other_class(
            X_t, y_t, X_x, y_x, "chebyshev" if norm == np.inf else "euclidean"
        )
        ok_reach = ok & np.isfinite(reach) & (reach > 0)
        rows[name] = {
            "correct test samples": int((~np.isnan(found)).sum()),
            "mean exact minimum": float(np.mean(exact[ok])) if ok.any() else np.nan,
            "mean found from predict alone": float(np.mean(found[ok])) if ok.any() else np.nan,
            "median ratio found / exact": float(np.median(found[ok] / exact[ok]))
            if ok.any()
            else np.nan,
            "median distance to another class (data)": float(np.median(reach[ok_reach]))
            if ok_reach.any()
            else np.nan,
            "median ratio exact / that distance": float(
                np.median(exact[ok_reach] / reach[ok_reach])
            )
            if ok_reach.any()
            else np.nan,
        }
    elapsed = time.perf_counter() - t0
    table = pd.DataFrame(rows).T
    units = "pixel values in [0, 1]" if images else ctx.space
    parts = [
        f"<p>How far must an input move before the model changes its mind? {model_name}, "
        f"trained on the 75 %, on up to {n} test samples {cite('002')}. For each "
        "correctly classified sample, the smallest perturbation inside the data's box that "
        "changes the prediction: the <i>exact</i> minimum (a linear model's regions are "
        "half-spaces) and what skrob's decision-based attack finds from <code>predict</code> "
        f"alone, as it would for any model (1,000 queries per sample). Distances are in {units}; "
        "a larger distortion means a more robust model.</p>",
        "<p>L∞: the largest change of any one feature; L2: the Euclidean length of the change.</p>",
        _table(table),
        "<p><b>What is good here.</b> The data set the scale: the distance from a test "
        "sample to the nearest training sample of another class (in the same norm) is how "
        "far the classes themselves are apart around it. A ratio exact / that distance "
        "near 0.5 or above means the model changes its mind only about where the classes "
        "meet, as robust as these data allow; a ratio near 0 means a change much smaller "
        "than the gap between the classes flips it (a fragile model, or samples that lie "
        "close to its boundary). A ratio found / exact near 1 means the attack from "
        "<code>predict</code> alone finds the minimum; above 1, it overstates the "
        "robustness by that factor.</p>",
    ]
    summary = {
        "mean exact L∞ distortion (default model)": significant(rows["L∞"]["mean exact minimum"]),
        "median exact L∞ distortion / distance to another class": significant(
            rows["L∞"]["median ratio exact / that distance"]
        ),
        "distortion time (s)": significant(elapsed, 3),
    }
    return Section(
        f"Minimal adversarial distortion {cite('002')}", "\n".join(parts), summary, "distortion"
    )


SECTIONS = [
    overview_section,
    sample_robustness_section,
    robust_subsets_section,
    rpr_section,
    distortion_section,
]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222;
  padding: 0 1em; line-height: 1.45; }
table.table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0 1.5em; }
table.table td, table.table th { padding: 3px 10px; border-bottom: 1px solid #ddd;
  text-align: right; }
img { max-width: 100%; }
h2 { border-bottom: 2px solid #888; padding-bottom: 0.2em; margin-top: 2em; }
.box { background: #f4f7fb; border-left: 5px solid #3465a4; padding: 0.2em 1.2em 0.6em; }
.box h2 { margin-top: 0.6em; }
p.verdict { font-size: 1.1em; }
p.warning { color: #a40000; font-weight: bold; }
p.meta { color: #555; }
nav a { margin-right: 1em; }
div.wide { overflow-x: auto; }
th, td { white-space: nowrap; }
"""


def _summary_table(summary):
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_text(v))}</td></tr>"
        for k, v in summary.items()
    )
    return f"<table class='table summary'>{rows}</table>"


def _references():
    items = "".join(
        f"<li id='paper-{key}'>[{key}] {html.escape(text)}"
        + (f" <a href='{url}'>{url}</a>" if url else "")
        + "</li>"
        for key, (text, url) in PAPERS.items()
    )
    return f"<h2 id='references'>References</h2><ul>{items}</ul>"


# The file in a report folder that lists what skrob wrote there: only those files are
# ever replaced without --force.
MARKER = ".skrob-report"


def _stamp(path):
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _owned(out_dir):
    """The files of ``out_dir`` that skrob wrote and nobody changed since (name, size and
    modification time as its marker recorded them), the marker included; None when the
    folder holds no skrob report."""
    import json

    marker = out_dir / MARKER
    if not marker.is_file():
        return None
    try:
        files = json.loads(marker.read_text(encoding="utf-8"))["files"]
        owned = {MARKER}
        for name, stamp in files.items():
            path = out_dir / str(name)
            if path.is_file() and _stamp(path) == list(stamp):
                owned.add(str(name))
        return owned
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        return None


def check_output(out_dir, force=False):
    """Refuse, before any work, an output folder skrob may not write into: ``out_dir``
    must be a folder or not exist, below a folder; an existing folder that holds files
    must hold a skrob report (its marker), unless ``force``."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--output {out_dir} exists and is not a folder.")
    for parent in out_dir.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"--output {out_dir}: {parent} is a file, not a folder.")
            break
    if not out_dir.is_dir() or force:
        return
    present = sorted(p.name for p in out_dir.iterdir())
    if present and _owned(out_dir) is None:
        raise ValueError(
            f"--output {out_dir} exists and holds files skrob did not write "
            f"({', '.join(present[:5])}{', ...' if len(present) > 5 else ''}); skrob never "
            "writes over them. Choose a new folder, or pass --force to write the report "
            "into it anyway (files of the same names are then replaced; the input never)."
        )


def _publish(staging, out_dir, protect, force):
    """Move the staged report files into ``out_dir``. A file there that skrob did not
    write (or that changed since) is replaced only with ``force``; an input file never.
    Every clash is checked before the first file moves."""
    import json
    import os
    import shutil

    owned = _owned(out_dir) or {MARKER}
    names = sorted(p.name for p in staging.iterdir())
    protected = [Path(p) for p in protect if p is not None and Path(p).exists()]
    for name in [*names, MARKER]:
        target = out_dir / name
        if not target.exists():
            continue
        if any(os.path.samefile(target, p) for p in protected):
            raise ValueError(
                f"The report would write {target}, which is the input data file; skrob "
                "never writes over its input. Choose another --output folder."
            )
        if name not in owned and not force:
            raise ValueError(
                f"{target} exists and was not written by skrob (or changed since); it is "
                "left as it is. Choose another --output folder, or pass --force to replace it."
            )
    kept = {}  # earlier report files left in place, unchanged: still skrob's
    if (out_dir / MARKER).is_file():
        try:
            old = json.loads((out_dir / MARKER).read_text(encoding="utf-8"))["files"]
            kept = {n: v for n, v in old.items() if n in owned and n not in names}
        except (ValueError, KeyError, TypeError, AttributeError, OSError):
            kept = {}
    for name in names:
        shutil.move(str(staging / name), str(out_dir / name))
    files = {**kept, **{name: _stamp(out_dir / name) for name in names}}
    (out_dir / MARKER).write_text(
        json.dumps({"written_by": "skrob report", "files": files}, indent=1), encoding="utf-8"
    )


def write_report(ctx, sections=SECTIONS, *, protect=(), force=False):
    """Run every section and write ``index.html`` with its PNGs and ``diagnosis.csv`` into
    ``ctx.out_dir``; return the page's path and the summary dict.

    Nothing is written over a file skrob did not write (a marker file lists a report's
    own files) unless ``force``, and never over a file in ``protect`` (the input data):
    the report is built in a staging folder first and moved in only after those checks.
    """
    import shutil
    import tempfile

    out_dir = Path(ctx.out_dir)
    check_output(out_dir, force)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".skrob-staging-", dir=out_dir))
    ctx.out_dir = staging
    try:
        path, summary = _write_sections(ctx, sections)
        ctx.out_dir = out_dir
        _publish(staging, out_dir, protect, force)
    finally:
        ctx.out_dir = out_dir
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir / path.name, summary


def _write_sections(ctx, sections):
    import matplotlib
    from tqdm.auto import tqdm

    matplotlib.use("Agg")
    done = []
    bar = tqdm(
        sections, desc="skrob report", unit="section", disable=not ctx.progress, file=sys.stderr
    )
    for position, section in enumerate(bar):
        bar.set_postfix_str(section.__name__.removesuffix("_section"))
        title = (section.__doc__ or section.__name__).split(":")[0].strip()
        try:
            done.append(section(ctx))
        except SectionSkipped as exc:
            done.append(Section(title, f"<p>Not computed: {html.escape(str(exc))}.</p>"))
        except (ValueError, ArithmeticError) as exc:
            if position == 0:  # the verdict: without it there is no report
                raise
            # a default model that cannot take these data (raw values near 1e300, ...):
            # the other sections still stand; the page and the terminal say why
            reason = f"{type(exc).__name__}: {exc}"
            if ctx.scale == "none":
                reason += " (the features are unscaled: --scale standard may help)"
            print(f"skrob report: section {title!r} not computed: {reason}", file=sys.stderr)
            done.append(Section(title, f"<p>Not computed: {html.escape(reason)}.</p>"))
    bar.close()
    n_labels = int(np.unique(ctx.y, axis=0).shape[0])
    summary = {
        "dataset": ctx.dataset_name,
        "samples": ctx.X.shape[0],
        "features": ctx.X.shape[1],
        "task": ctx.task,
        "classes" if ctx.task == "classification" else "distinct targets": n_labels,
        "metric": ctx.metric,
        "feature scaling": "standardised" if ctx.scale == "standard" else "none",
    }
    for s in done:
        summary.update(s.summary)
    from skrob import __version__

    verdict, rest = done[0], done[1:]
    nav = "".join(
        f"<a href='#{s.anchor}'>{html.escape(html.unescape(_strip_tags(s.title)))}</a>"
        for s in done
        if s.anchor
    )
    body = "\n".join(f"<h2 id='{s.anchor}'>{s.title}</h2>\n{s.html}" for s in rest)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>skrob report: {html.escape(ctx.dataset_name)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>Robustness report: {html.escape(ctx.dataset_name)}</h1>"
        f"<p class='meta'>{ctx.X.shape[0]:,} samples, {ctx.X.shape[1]:,} features, "
        f"{ctx.task}; written by skrob {__version__}.</p>"
        f"<div class='box' id='{verdict.anchor or 'verdict'}'><h2>{verdict.title}</h2>"
        f"{verdict.html}</div>"
        f"<nav>{nav}<a href='#summary'>All numbers</a><a href='#references'>References</a></nav>"
        + body
        + "<h2 id='summary'>All numbers</h2>"
        + _summary_table(summary)
        + _references()
        + "</body></html>"
    )
    path = ctx.out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path, summary


def _strip_tags(text):
    import re

    return re.sub(r"<[^>]+>", "", text).strip()
