"""``skrob report``: an HTML page with tables and PNG plots about a labelled dataset.

Each capability adds a section: a function ``(context) -> Section``. Sections share the
loaded data through :class:`ReportContext`.
"""

import html
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class ReportContext:
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
    cache: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.task == "auto":
            from skrob._validation import resolve_task

            self.task = resolve_task(self.y, warn=False)


class SectionSkipped(Exception):
    """A section that cannot be computed on this data; its message says why."""


@dataclass
class Section:
    title: str
    html: str
    summary: dict = field(default_factory=dict)


def load_table(path, target):
    """Read a CSV or Parquet file; return the features ``X`` and the labels ``y``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such data file: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        df = pd.read_parquet(path)
    elif path.suffix.lower() in (".csv", ".gz", ".txt", ".tsv"):
        df = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    else:
        raise ValueError(f"Unknown data format {path.suffix!r}: use .csv or .parquet.")
    if target is None:
        raise ValueError("--data needs --target, the name of the label column.")
    if target not in df.columns:
        raise ValueError(f"Target column {target!r} not in {list(df.columns)[:20]}...")
    if len(df) == 0:
        raise ValueError(f"{path} has a header but no rows.")
    if df.shape[1] < 2:
        raise ValueError(f"{path} has no feature column besides the target {target!r}.")
    y = df.pop(target).to_numpy()
    non_numeric = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if non_numeric:
        raise ValueError(
            f"Feature columns must be numeric; these are not: {non_numeric[:10]}. "
            "Encode them first (e.g. with sklearn's OneHotEncoder)."
        )
    return df.to_numpy(dtype=np.float64), y


def _fig_to_png(fig, ctx, name):
    path = ctx.out_dir / name
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img src="{html.escape(name)}" alt="{html.escape(name)}">'


def _table(df):
    return df.to_html(classes="table", float_format=lambda v: f"{v:.4g}", border=0)


def _per_class_part(ctx, srt, R):
    """The per-class table and distributions; the samples in robustness order."""
    from skrob.plotting import RobustnessDistributionDisplay

    parts = []
    names = ctx.label_names or [str(c) for c in srt.classes_]
    per_class = pd.DataFrame({"class": names}).set_index("class")
    per_class["samples"] = [int((ctx.y == c).sum()) for c in srt.classes_]
    for stat, f in (
        ("mean R", np.mean),
        ("median R", np.median),
        ("min R", np.min),
        ("max R", np.max),
    ):
        per_class[stat] = [f(R[ctx.y == c]) for c in srt.classes_]
    order = np.argsort(R, kind="stable")
    least = order[: len(order) // 2]
    per_class["share of least robust half"] = [
        float(np.mean(ctx.y[least] == c)) for c in srt.classes_
    ]
    parts.append("<h3>Per class</h3>" + _table(per_class))
    disp = RobustnessDistributionDisplay.from_robustness(R, ctx.y, label_names=names)
    parts.append(
        "<h3>Per-class robustness distribution (paper 000, Fig. 4)</h3>"
        + _fig_to_png(disp.figure_, ctx, "robustness_per_class.png")
    )
    return "\n".join(parts), order


def _regression_part(ctx, R):
    """The distribution of R and R against the target; the samples in robustness order."""
    import matplotlib.pyplot as plt

    parts = []
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].hist(R, bins=40, color="C0")
    axes[0].set_xlabel("sample robustness R")
    axes[0].set_ylabel("samples")
    yv = ctx.y if ctx.y.ndim == 1 else np.linalg.norm(ctx.y, axis=1)
    axes[1].scatter(yv, R, s=3, alpha=0.4)
    axes[1].set_xlabel("target" if ctx.y.ndim == 1 else "|target|")
    axes[1].set_ylabel("R")
    fig.tight_layout()
    parts.append(
        "<h3>Robustness distribution</h3>" + _fig_to_png(fig, ctx, "robustness_distribution.png")
    )
    order = np.argsort(R, kind="stable")
    return "\n".join(parts), order


def sample_robustness_section(ctx):
    """Robustness of every sample, per-class distributions, the least robust samples."""
    from skrob.plotting import plot_image_grid
    from skrob.sample_robustness import SampleRobustnessTransformer

    t = time.perf_counter()
    srt = SampleRobustnessTransformer(
        task=ctx.task,
        metric=ctx.metric,
        algorithm=ctx.algorithm,
        random_state=ctx.random_state,
        verbose=ctx.verbose,
    ).fit(ctx.X, ctx.y)
    elapsed = time.perf_counter() - t
    R = srt.robustness_
    ctx.cache["robustness"] = R
    parts = []
    summary = {
        "task": srt.task_,
        "mean robustness": float(R.mean()),
        "median robustness": float(np.median(R)),
        "samples with R = 0 (conflicting duplicates)": int((R == 0).sum()),
        "robustness time (s)": round(elapsed, 2),
    }
    if srt.task_ == "classification":
        part, order = _per_class_part(ctx, srt, R)
        reach = srt.reach_
    else:
        part, order = _regression_part(ctx, R)
        reach = None
    parts.append(part)

    idx = order[: ctx.n_show]
    if ctx.image_shape is not None:
        label = (
            (lambda i: ctx.label_names[int(np.searchsorted(srt.classes_, ctx.y[i]))])
            if (ctx.label_names is not None and srt.task_ == "classification")
            else (lambda i: str(ctx.y[i]))
        )
        fig = plot_image_grid(
            ctx.X[idx].reshape(-1, *ctx.image_shape),
            [f"#{i} {label(i)}\nR={R[i]:.3f}" for i in idx],
        )
        parts.append("<h3>Least robust samples</h3>" + _fig_to_png(fig, ctx, "least_robust.png"))
        idx_most = order[::-1][: ctx.n_show]
        fig = plot_image_grid(
            ctx.X[idx_most].reshape(-1, *ctx.image_shape),
            [f"#{i} {label(i)}\nR={R[i]:.3f}" for i in idx_most],
        )
        parts.append("<h3>Most robust samples</h3>" + _fig_to_png(fig, ctx, "most_robust.png"))
    rows = pd.DataFrame(
        {"sample": idx, "label": ctx.y[idx] if ctx.y.ndim == 1 else list(ctx.y[idx]), "R": R[idx]}
    )
    if reach is not None:
        rows["reach r"] = reach[idx]
    parts.append("<h3>Least robust samples (table)</h3>" + _table(rows.set_index("sample")))
    return Section("Sample robustness (paper 000)", "\n".join(parts), summary)


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
        "<p>A 75/25 split into training set x and test set t; the robustness of each is "
        "computed on itself (paper 000, §4). xL80/xM80 are the least/most robust 80 % of x, "
        "tL50/tM50 the least/most robust half of t; 'x aligned to t' is the largest subset "
        "of x whose robustness histogram is proportional to t's "
        "(<code>RobustSubsetSelector(strategy='align')</code>).</p>",
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
        f"{score_name} x -> t": round(float(matrix.loc["x", "t"]), 4),
        f"{score_name} x -> tL50 / tM50": (
            f"{matrix.loc['x', 'tL50']:.4f} / {matrix.loc['x', 'tM50']:.4f}"
        ),
    }
    return Section("Training and testing on robust subsets (paper 000)", "\n".join(parts), summary)


def rpr_section(ctx):
    """Paper 001's RPR of a default model on a held-out quarter: curve and per-class fractions."""
    from skrob.perturbations import GaussianNoise, PixelNoise
    from skrob.plotting import RPRCurveDisplay
    from skrob.rpr import rpr_steps

    y = ctx.y
    if ctx.task != "classification":
        return Section(
            "Randomized perturbation robustness (paper 001)",
            "<p>RPR counts the perturbations until a classifier is fooled: not defined for "
            "regression targets.</p>",
        )
    X_x, X_t, y_x, y_t = _split(ctx, classification=True)
    # Images in [0, 1] go in as they are: scaling would blow up the nearly constant border
    # pixels that PixelNoise replaces.
    model, model_name, _, images = _default_classifier(ctx, X_x)
    model.fit(X_x, y_x)
    if images:
        perturbation = PixelNoise(image_shape=ctx.image_shape)
        described = (
            f"up to ⌊√{int(np.prod(ctx.image_shape))}⌋ pixels replaced by uniform values "
            "in [0, 1] (paper 001's scheme)"
        )
    else:
        sigma = float(0.25 * np.mean(X_x.std(axis=0)))
        perturbation = GaussianNoise(sigma)
        described = f"Gaussian noise, sigma = {sigma:.3g} (a quarter of the mean feature std)"
    max_steps = 100
    t = time.perf_counter()
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
    names = ctx.label_names or [str(c) for c in np.unique(y)]
    per_class = pd.DataFrame(
        {
            "test samples": [int((y_t == c).sum()) for c in np.unique(y)],
            "accuracy": [correct[y_t == c].mean() for c in np.unique(y)],
            "RPR-robust fraction": [robust[y_t == c].mean() for c in np.unique(y)],
        },
        index=pd.Index(names, name="class"),
    )
    parts = [
        f"<p>A 75/25 split; {model_name} trained on the 75 %. Each "
        f"test sample is perturbed again and again ({html.escape(described)}), always from "
        f"the original, until the model stops predicting its label, at most {max_steps} "
        "times; a sample's RPR is the step that first fools the model (paper 001), and the "
        "robust fraction is the share whose RPR reaches the cap (misclassified samples "
        "count as not robust).</p>",
        "<h3>Fraction still robust after each step (paper 001, Fig. 3)</h3>"
        + _fig_to_png(disp.figure_, ctx, "rpr_curve.png"),
        "<h3>Per class (paper 001, Fig. 4)</h3>" + _table(per_class),
    ]
    summary = {
        "default model test accuracy": round(float(correct.mean()), 4),
        f"RPR-robust test fraction ({max_steps} steps)": round(float(robust.mean()), 4),
        "RPR time (s)": round(elapsed, 2),
    }
    return Section("Randomized perturbation robustness (paper 001)", "\n".join(parts), summary)


def _default_classifier(ctx, X_x):
    """The report's default model: LogisticRegression, after a StandardScaler unless the
    data are images in [0, 1]; and the box its inputs live in."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    images = ctx.image_shape is not None and ctx.X.min() >= 0 and ctx.X.max() <= 1
    if images:
        return LogisticRegression(max_iter=2000), "LogisticRegression", (0.0, 1.0), images
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    box = (ctx.X.min(axis=0), ctx.X.max(axis=0))
    return model, "StandardScaler + LogisticRegression", box, images


def distortion_section(ctx):
    """Minimal distortion of a default model (paper 002): the smallest change that flips it."""
    from skrob.distortion import decision_based_distortion, exact_distortion

    if ctx.task != "classification":
        return Section(
            "Minimal adversarial distortion (paper 002)",
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
        rows[name] = {
            "correct test samples": int((~np.isnan(found)).sum()),
            "mean exact minimum": float(np.mean(exact[ok])) if ok.any() else np.nan,
            "mean found from predict alone": float(np.mean(found[ok])) if ok.any() else np.nan,
            "median ratio found / exact": float(np.median(found[ok] / exact[ok]))
            if ok.any()
            else np.nan,
        }
    elapsed = time.perf_counter() - t0
    table = pd.DataFrame(rows).T
    units = "pixel values in [0, 1]" if images else "the raw units of the features"
    parts = [
        f"<p>{model_name}, trained on the 75 %, on up to {n} test samples. For each "
        "correctly classified sample, the smallest perturbation inside the data's box that "
        "changes the prediction: the <i>exact</i> minimum (a linear model's regions are "
        "half-spaces) and what skrob's decision-based attack finds from <code>predict</code> "
        f"alone, as it would for any model (1,000 queries per sample). Distances are in {units}; "
        "a larger distortion means a more robust model.</p>",
        _table(table.round(4)),
    ]
    summary = {
        "mean exact L∞ distortion (default model)": round(rows["L∞"]["mean exact minimum"], 4),
        "distortion time (s)": round(elapsed, 2),
    }
    return Section("Minimal adversarial distortion (paper 002)", "\n".join(parts), summary)


SECTIONS = [sample_robustness_section, robust_subsets_section, rpr_section, distortion_section]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table.table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0 1.5em; }
table.table td, table.table th { padding: 3px 10px; border-bottom: 1px solid #ddd;
  text-align: right; }
img { max-width: 100%; }
h2 { border-bottom: 2px solid #888; padding-bottom: 0.2em; margin-top: 2em; }
"""


def write_report(ctx, sections=SECTIONS):
    """Run every section and write ``index.html`` with its PNGs into ``ctx.out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for section in sections:
        try:
            done.append(section(ctx))
        except SectionSkipped as exc:
            title = (section.__doc__ or section.__name__).split(":")[0].strip()
            done.append(Section(title, f"<p>Not computed: {html.escape(str(exc))}.</p>"))
    summary = {
        "dataset": ctx.dataset_name,
        "samples": ctx.X.shape[0],
        "features": ctx.X.shape[1],
        "task": ctx.task,
        "distinct labels": int(np.unique(ctx.y, axis=0).shape[0]),
        "metric": ctx.metric,
    }
    for s in done:
        summary.update(s.summary)
    table = pd.DataFrame(
        {"value": [str(v) for v in summary.values()]}, index=pd.Index(list(summary), name="summary")
    )
    from skrob import __version__

    body = "\n".join(f"<h2>{html.escape(s.title)}</h2>\n{s.html}" for s in done)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>skrob report: {html.escape(ctx.dataset_name)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>skrob report: {html.escape(ctx.dataset_name)}</h1>"
        f"<p>skrob {__version__}</p>" + _table(table) + body + "</body></html>"
    )
    path = ctx.out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path, summary
