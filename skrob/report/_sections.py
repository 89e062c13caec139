"""The report's sections: each a function ``(context) -> Section``, the verdict first.

A section computes its numbers, tables and figures here and renders its text through its
jinja2 template (``templates/<section>.html``, :mod:`~skrob.report._render`)."""

import time

import numpy as np
import pandas as pd

from skrob.report._context import Section, SectionSkipped, _unit_images, cite, significant
from skrob.report._render import render, safe


def _fig_to_png(fig, ctx, name, alt):
    path = ctx.out_dir / name
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return render("figure.html", src=name, alt=alt)


def _table(df, index=True):
    """``df`` as an HTML table (pandas escapes its cells)."""
    return safe(
        df.to_html(
            classes="table", float_format=lambda v: f"{v:.4g}", border=0, index=index, na_rep="—"
        )
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


def _diagnosis_neighbours(n):
    """The report's ``diagnose(n_neighbors=...)`` for ``n`` samples."""
    return min(10, n - 1)


def _diagnosis(ctx):
    """:func:`skrob.diagnosis._diagnose` on the report's space, computed once."""
    if "diagnosis" not in ctx.cache:
        from skrob.diagnosis import _diagnose

        t = time.perf_counter()
        searched = _nearest_by_part(ctx)
        frame, dist = _diagnose(
            ctx.X,
            ctx.y,
            metric=ctx.metric,
            metric_params=None,
            n_neighbors=_diagnosis_neighbours(ctx.X.shape[0]),
            least_robust=0.1,
            batch_size=None,
            n_jobs=None,
            verbose=ctx.verbose,
            nearest=None if searched is None else searched["class"],
            neighbours=None if searched is None else searched["neighbours"],
        )
        ctx.cache["diagnosis"] = frame, dist, time.perf_counter() - t
    return ctx.cache["diagnosis"]


# the search by class and split part holds two (n, n_classes) float64 and intp tables:
# above this many entries each, the sections search separately
_BY_PART_MAX_ENTRIES = 2**25


def _nearest_by_part(ctx):
    """One leave-one-out search for the verdict and the robust-subsets section:
    ``nearest_in_groups`` over the groups (class, part of the shared 75/25 split), so
    that each pair of samples is visited once for three results (exact distances, the
    same as separate searches give):

    - ``"class"``: every sample's nearest other sample of each class, in either part
      (``diagnose``'s search; a tie between the parts goes to the lower sample index);
    - ``"reach"``: every sample's distance to the nearest differently labelled sample
      of its own part (the robustness of each part against itself);
    - ``"to training"``: every sample's nearest training sample of each class;
    - ``"neighbours"``: ``diagnose``'s neighbour lists and copies from the same pass
      (:func:`skrob._search.neighbors.nearest_in_groups_and_order`) where it serves
      them, else None.

    None (the sections search separately) unless the task is classification, the metric
    Euclidean, the split possible and the robustness of either part exact."""
    if "by part" in ctx.cache:
        return ctx.cache["by part"]
    ctx.cache["by part"] = None
    if ctx.task != "classification" or ctx.metric != "euclidean":
        return None
    from skrob.sample_robustness import _resolve_algorithm

    try:
        index_x, index_t = _split_indices(ctx, classification=True)
    except SectionSkipped:
        return None
    n = ctx.y.shape[0]
    classes, codes = np.unique(ctx.y, return_inverse=True)
    K = classes.size
    if n * 2 * K > _BY_PART_MAX_ENTRIES or any(  # (the choice reads X's shape only)
        _resolve_algorithm(ctx.algorithm, "classification", ctx.metric, np.empty((rows.size, 0)))
        != "exact"
        for rows in (index_x, index_t)
    ):
        return None
    from skrob._search.neighbors import nearest_in_groups, nearest_in_groups_and_order
    from skrob.diagnosis import fusable, neighbour_request

    part = np.zeros(n, dtype=np.intp)
    part[index_t] = 1
    groups, found, neighbours = codes + K * part, None, None
    if fusable(ctx.X, "euclidean"):  # diagnose's neighbour lists from the same pass
        k, cuts = neighbour_request(n, _diagnosis_neighbours(n))
        found = nearest_in_groups_and_order(ctx.X, groups, 2 * K, k, cuts=cuts, verbose=ctx.verbose)
    if found is None:
        dist, arg = nearest_in_groups(
            ctx.X, ctx.X, groups, 2 * K, exclude=np.arange(n), verbose=ctx.verbose
        )
    else:
        (dist, arg), neighbours = found
    dist, arg = dist.reshape(n, 2, K), arg.reshape(n, 2, K)
    rows = np.arange(n)
    # either part: the smaller distance, on a tie the lower sample index
    pick = (dist[:, 1] < dist[:, 0]) | ((dist[:, 1] == dist[:, 0]) & (arg[:, 1] < arg[:, 0]))
    pick = pick.astype(np.intp)
    both = (
        np.take_along_axis(dist, pick[:, None, :], axis=1)[:, 0],
        np.take_along_axis(arg, pick[:, None, :], axis=1)[:, 0],
    )
    mine = dist[rows, part].copy()
    mine[rows, codes] = np.inf  # its own class is no other
    ctx.cache["by part"] = {
        "class": both,
        "reach": mine.min(axis=1),
        "to training": dist[:, 0],
        "neighbours": neighbours,
    }
    return ctx.cache["by part"]


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

    from skrob._label_issues import nearest_neighbours

    k = min(_KNN_K, ctx.X.shape[0] - 1)
    idx, _ = nearest_neighbours(ctx.X, k, metric=ctx.metric, cuts=(k,))
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
    return render(
        "pair_table.html",
        n_pairs=len(pairs),
        n_shown=shown.size,
        n_features=ctx.X.shape[1],
        table=_table(pd.DataFrame(rows), index=False),
    )


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
    issues = frame["label_issue"].to_numpy()
    quality = frame["label_quality"].to_numpy()
    # Samples to look at first: conflicting duplicates, then likely label errors, each
    # group by label quality (lowest first)
    order = np.lexsort((quality, ~duplicates, ~(duplicates | issues)))
    look = order[: max(ctx.n_show, 1)]
    look = look[duplicates[look] | issues[look]]
    names = _name_map(ctx, classes)
    look_table = None
    if look.size:
        look_table = _table(
            pd.DataFrame(
                {
                    "sample": ctx.row_ids[look],
                    "label": [names[v] for v in ctx.y[look]],
                    "suggested label": [
                        names[v] for v in frame["suggested_label"].to_numpy()[look]
                    ],
                    "label quality": quality[look],
                    "conflicting duplicate": np.where(duplicates[look], "yes", ""),
                    "R": R[look],
                    "R if relabelled": frame["suggested_robustness"].to_numpy()[look],
                    "nearest other": ctx.row_ids[frame["nearest_other"].to_numpy()[look]],
                    "label uncertainty": frame["label_uncertainty"].to_numpy()[look],
                }
            ),
            index=False,
        )
    least = np.argsort(R, kind="stable")[: ctx.n_show]
    least_body = None
    if least.size:
        least_body = (
            _pair_figure(ctx, frame, least, classes)
            if ctx.image_shape is not None
            else _pair_table(ctx, frame, least, classes)
        )
    text = render(
        "verdict.html",
        level=_level(share),
        n_relabel=int(relabel.sum()),
        n=n,
        share_pct=100 * share,
        median_R=float(np.median(R)),
        median_reach=float(np.median(reach)),
        n_duplicates=int(duplicates.sum()),
        n_issues=int(issues.sum()),
        closest_pairs=list(
            zip(top["class A"], top["class B"], top["closest distance"], strict=True)
        ),
        space=ctx.space,
        data_notes=ctx.data_notes,
        warnings=ctx.notes,
        look_table=look_table,
        n_look=look.size,
        n_flagged=int((duplicates | issues).sum()),
        least=least_body,
        images=ctx.image_shape is not None,
        pair_figure=_pair_matrix_figure(ctx, closest, classes),
        pair_table=_table(pairs.head(10), index=False),
    )
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
    return Section("Verdict", text, summary, "verdict")


def _pair_matrix_figure(ctx, closest, classes):
    """The class-pair matrix of closest distances as a heat map (None: 2 or > 40 classes)."""
    import matplotlib.pyplot as plt

    K = classes.size
    if not 2 < K <= 40:
        return None
    names = _names(ctx, classes)
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
    return _fig_to_png(fig, ctx, "class_pairs.png", "closest distance between classes")


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
    text = render(
        "verdict_regression.html",
        level=_regression_level(r2),
        k=k,
        r2=r2,
        median_R=float(np.median(R)),
        n_zero=zero,
        space=ctx.space,
        data_notes=ctx.data_notes,
        warnings=ctx.notes,
        table=_table(rows, index=False),
    )
    summary = {
        f"R² of the leave-one-out {k}-nearest-neighbour prediction": significant(r2),
        "median robustness R": significant(np.median(R)),
        "mean robustness R": significant(R.mean()),
        "samples with R = 0 (same features, different target)": zero,
        "robustness time (s)": significant(elapsed, 3),
    }
    return Section("Verdict", text, summary, "verdict")


def sample_robustness_section(ctx):
    """Robustness per class, and the most robust samples."""
    from skrob.plotting import RobustnessDistributionDisplay, plot_image_grid

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
        text = render(
            "sample_robustness.html",
            regression=True,
            figure=_fig_to_png(fig, ctx, "robustness_distribution.png", "distribution of R"),
        )
        return Section("Sample robustness", text, anchor="sample-robustness")
    frame, _, _ = _diagnosis(ctx)
    R = frame["robustness"].to_numpy()
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
    most_robust = None
    if ctx.image_shape is not None and ctx.n_show:
        by_label = _name_map(ctx, classes)
        most = np.argsort(-R, kind="stable")[: ctx.n_show]
        fig = plot_image_grid(
            ctx.X_raw[most].reshape(-1, *ctx.image_shape),
            [f"#{i} {by_label[ctx.y[i]]}\nR={R[i]:.3f}" for i in most],
        )
        most_robust = _fig_to_png(fig, ctx, "most_robust.png", "the most robust samples")
    text = render(
        "sample_robustness.html",
        regression=False,
        equal_share=1 / classes.size,
        table=_table(per_class),
        figure=_fig_to_png(
            disp.figure_, ctx, "robustness_per_class.png", "histogram of R in each class"
        ),
        most_robust=most_robust,
    )
    return Section(f"Sample robustness per class {cite('000')}", text, anchor="sample-robustness")


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
        index_x, index_t = _split_indices(ctx, classification)
        y = ctx.y
        ctx.cache[key] = ctx.X[index_x], ctx.X[index_t], y[index_x], y[index_t]
    return ctx.cache[key]


def _split_indices(ctx, classification):
    """The rows of the training and the test part of :func:`_split`."""
    key = ("split rows", classification)
    if key not in ctx.cache:
        from sklearn.model_selection import train_test_split

        y = ctx.y
        stratify = None
        if classification and np.unique(y, return_counts=True)[1].min() >= 2:
            stratify = y
        rows = train_test_split(
            np.arange(y.shape[0]), test_size=0.25, stratify=stratify, random_state=ctx.random_state
        )
        for part, name in zip(rows, ("training", "test"), strict=True):
            if np.unique(y[part], axis=0).shape[0] < 2:
                raise SectionSkipped(
                    f"the 75/25 split of {y.shape[0]} samples leaves its {name} part "
                    f"({part.size} samples) with a single "
                    f"{'class' if classification else 'target value'}: too few samples"
                )
        ctx.cache[key] = rows
    return ctx.cache[key]


def robust_subsets_section(ctx):
    """Paper 000's performance matrix of a default model: robust subsets of train and test."""
    from sklearn.base import clone
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    from skrob._subsets import subset_indices
    from skrob.sample_robustness import SampleRobustnessTransformer

    classification = ctx.task == "classification"
    X_x, X_t, y_x, y_t = _split(ctx, classification)
    robustness = SampleRobustnessTransformer(
        task=ctx.task, metric=ctx.metric, algorithm=ctx.algorithm, random_state=ctx.random_state
    )
    searched = _nearest_by_part(ctx) if classification else None
    if searched is None:
        R_x = clone(robustness).fit(X_x, y_x).robustness_
        R_t = clone(robustness).fit(X_t, y_t).robustness_
    else:  # the verdict's search has them: the robustness of each part against itself
        from skrob._search.neighbors import reach_to_robustness

        rows_x, rows_t = _split_indices(ctx, classification=True)
        R_x = reach_to_robustness(searched["reach"][rows_x])
        R_t = reach_to_robustness(searched["reach"][rows_t])
    if classification:
        model, score_name = KNeighborsClassifier(n_neighbors=5, metric=ctx.metric), "accuracy"
    else:
        model, score_name = KNeighborsRegressor(n_neighbors=5, metric=ctx.metric), "R²"

    train_sets = {
        name: subset_indices(R_x, subset, fraction)
        for name, (subset, fraction) in _TRAIN_SUBSETS.items()
    }
    aligned = _aligned_subset(R_x, R_t, ctx.random_state)
    if aligned.size:  # else no subset of x has t's histogram (small data): no row
        train_sets["x aligned to t"] = aligned
    test_sets = {
        name: subset_indices(R_t, subset, fraction)
        for name, (subset, fraction) in _TEST_SUBSETS.items()
    }
    matrix = pd.DataFrame(index=pd.Index(list(train_sets), name="trained on"), dtype=float)
    # too few samples for the model: the row stays empty (NaN)
    fitted = {name: rows for name, rows in train_sets.items() if len(rows) >= model.n_neighbors}
    predictions = _knn_predictions(ctx, model, X_x, y_x, X_t, fitted)
    for name, pred in predictions.items():
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
    text = render(
        "robust_subsets.html",
        model=type(model).__name__,
        score_name=score_name,
        matrix=_table(matrix),
        has_empty_rows=bool(matrix.isna().any(axis=None)),
        sizes=_table(sizes),
    )
    summary = {
        f"kNN {score_name}, all test samples": significant(matrix.loc["x", "t"]),
        f"kNN {score_name}, least robust half of the test set": significant(
            matrix.loc["x", "tL50"]
        ),
        f"kNN {score_name}, most robust half of the test set": significant(matrix.loc["x", "tM50"]),
    }
    return Section(
        f"Training and testing on robust subsets {cite('000')}",
        text,
        summary,
        "robust-subsets",
    )


def _aligned_subset(R_x, R_t, random_state):
    """``RobustSubsetSelector(strategy="align", random_state=random_state)``'s samples
    for training robustness ``R_x`` and target robustness ``R_t``, from the robustness
    the section already has (the selector would compute ``R_x`` again); tested equal."""
    from sklearn.utils import check_random_state

    from skrob._subsets import STRATEGIES
    from skrob.selection import RobustSubsetSelector, _StrategyParams

    defaults = RobustSubsetSelector()
    params = _StrategyParams(
        strategy="align",
        fraction=defaults.fraction,
        cut=defaults.threshold,
        n_bins=defaults.n_bins,
        class_balanced=False,
        target_robustness=np.asarray(R_t, dtype=np.float64),
    )
    return STRATEGIES["align"](R_x, None, params, check_random_state(random_state))


def _knn_predictions(ctx, model, X_x, y_x, X_t, train_sets):
    """``model``'s (a 5-nearest-neighbour classifier or regressor, uniform weights)
    predictions on ``X_t`` when trained on each of ``train_sets`` (rows of ``X_x``).

    Euclidean: one neighbour search over all of ``X_x`` whose GEMM every training set
    shares (:func:`skrob._search.knn.k_nearest`), then scikit-learn's vote (the most
    frequent label among the 5, the smallest on a tie) or mean; tested equal to fitting
    the model on each set. Other metrics: the model itself, fitted on each set."""
    from sklearn.base import clone

    if not train_sets:
        return {}
    if ctx.metric != "euclidean":
        return {
            name: clone(model).fit(X_x[rows], y_x[rows]).predict(X_t)
            for name, rows in train_sets.items()
        }
    from skrob._label_issues import vote_counts
    from skrob._search.knn import k_nearest

    found = k_nearest(
        X_t, X_x, model.n_neighbors, column_sets=[np.asarray(r) for r in train_sets.values()]
    )
    if ctx.task != "classification":
        y = np.asarray(y_x, dtype=float)
        return {name: y[idx].mean(axis=1) for name, (_, idx) in zip(train_sets, found, strict=True)}
    classes, codes = np.unique(y_x, return_inverse=True)
    # argmax: the smallest class on a tie
    return {
        name: classes[vote_counts(codes[idx], classes.size).argmax(axis=1)]
        for name, (_, idx) in zip(train_sets, found, strict=True)
    }


def rpr_section(ctx):
    """Paper 001's RPR of a default model on a held-out quarter: curve and per-class fractions."""
    from skrob.perturbations import GaussianNoise, PixelNoise
    from skrob.plotting import RPRCurveDisplay
    from skrob.rpr import rpr_steps

    if ctx.task != "classification":
        return Section(
            f"Randomized perturbation robustness {cite('001')}",
            render(
                "not_defined.html", what="RPR counts the perturbations until a classifier is fooled"
            ),
        )
    X_x, X_t, y_x, y_t = _split(ctx, classification=True)
    # Images in [0, 1] go in as they are: scaling would blow up the nearly constant border
    # pixels that PixelNoise replaces.
    t = time.perf_counter()
    model, model_name, _, images = _default_classifier(ctx)
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
    median_gap = None
    if noise_length is not None:
        reach = _distance_to_other_class(ctx, "euclidean")
        finite = np.isfinite(reach)
        median_gap = float(np.median(reach[finite])) if finite.any() else np.nan
    text = render(
        "rpr.html",
        model=model_name,
        described=described,
        max_steps=max_steps,
        curve=_fig_to_png(disp.figure_, ctx, "rpr_curve.png", "fraction still robust per step"),
        per_class=_table(per_class),
        accuracy=float(correct.mean()),
        kept=robust.sum() / max(correct.sum(), 1),
        noise_length=noise_length,
        median_gap=median_gap,
    )
    summary = {
        "default model test accuracy": significant(correct.mean()),
        f"test samples surviving {max_steps} random perturbations": significant(robust.mean()),
        "RPR time, model fit included (s)": significant(elapsed, 3),
    }
    return Section(f"Randomized perturbation robustness {cite('001')}", text, summary, "rpr")


def _default_classifier(ctx):
    """The report's default model, fitted on the shared split's training part (once, for
    every section): LogisticRegression, after a StandardScaler unless the data are
    images in [0, 1]; its name, and the box its inputs live in."""
    if "default classifier" not in ctx.cache:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        X_x, _, y_x, _ = _split(ctx, classification=True)
        images = _unit_images(ctx.image_shape, ctx.X)
        # tol=1e-3: lbfgs stops at a tenth of the iterations scikit-learn's default
        # 1e-4 takes on 52,500 Fashion-MNIST images, at the same accuracy
        classifier = LogisticRegression(max_iter=2000, tol=1e-3)
        if images:
            model, name, box = classifier, "LogisticRegression(tol=1e-3)", (0.0, 1.0)
        else:
            model = make_pipeline(StandardScaler(), classifier)
            name = "StandardScaler + LogisticRegression(tol=1e-3)"
            box = (ctx.X.min(axis=0), ctx.X.max(axis=0))
        ctx.cache["default classifier"] = model.fit(X_x, y_x), name, box, images
    return ctx.cache["default classifier"]


def _distance_to_other_class(ctx, metric, n=None):
    """The first ``n`` (None: all) test samples' distance to the nearest training sample
    of another class (the shared 75/25 split), by the exact kernel; computed once per
    metric and ``n``."""
    key = ("distance to another class", metric, n)
    searched = _nearest_by_part(ctx) if metric == ctx.metric else None
    if key not in ctx.cache and searched is not None:  # the verdict's search has it
        _, index_t = _split_indices(ctx, classification=True)
        dist = searched["to training"][index_t[:n]].copy()
        classes = np.unique(ctx.y)
        dist[np.arange(dist.shape[0]), np.searchsorted(classes, ctx.y[index_t[:n]])] = np.inf
        ctx.cache[key] = dist.min(axis=1)
    if key not in ctx.cache:
        from skrob._search.cdist import resolve_metric
        from skrob._search.neighbors import nearest_in_groups

        X_x, X_t, y_x, y_t = _split(ctx, classification=True)
        X_t, y_t = X_t[:n], y_t[:n]
        classes, codes = np.unique(y_x, return_inverse=True)
        dist, _ = nearest_in_groups(
            X_t, X_x, codes, classes.size, metric=resolve_metric(metric, None, X_x)
        )
        own = np.searchsorted(classes, y_t)
        known = own < classes.size
        known[known] = classes[own[known]] == y_t[known]
        dist[np.flatnonzero(known), own[known]] = np.inf  # its own class is no other
        ctx.cache[key] = dist.min(axis=1)
    return ctx.cache[key]


def distortion_section(ctx):
    """Minimal distortion of a default model (paper 002): the smallest change that flips it."""
    from skrob.distortion import decision_based_distortion, exact_distortion

    if ctx.task != "classification":
        return Section(
            f"Minimal adversarial distortion {cite('002')}",
            render("not_defined.html", what="The minimal distortion flips a classifier's label"),
        )
    X_x, X_t, y_x, y_t = _split(ctx, classification=True)
    model, model_name, box, images = _default_classifier(ctx)
    n = min(len(y_t), 200)
    X_t, y_t = X_t[:n], y_t[:n]
    rows, t0 = {}, time.perf_counter()
    max_queries = 1000
    for norm, name in ((np.inf, "L∞"), (2, "L2")):
        found = decision_based_distortion(
            model,
            X_t,
            y_t,
            norm=norm,
            clip=box,
            max_queries=max_queries,
            random_state=ctx.random_state,
        )
        exact = exact_distortion(model, X_t, y_t, norm=norm, clip=box)
        ok = np.isfinite(found) & np.isfinite(exact)
        reach = _distance_to_other_class(ctx, "chebyshev" if norm == np.inf else "euclidean", n)
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
    text = render(
        "distortion.html",
        model=model_name,
        n=n,
        max_queries=max_queries,
        units="pixel values in [0, 1]" if images else ctx.space,
        table=_table(pd.DataFrame(rows).T),
    )
    summary = {
        "mean exact L∞ distortion (default model)": significant(rows["L∞"]["mean exact minimum"]),
        "median exact L∞ distortion / distance to another class": significant(
            rows["L∞"]["median ratio exact / that distance"]
        ),
        "distortion time (s)": significant(elapsed, 3),
    }
    return Section(f"Minimal adversarial distortion {cite('002')}", text, summary, "distortion")


SECTIONS = [
    overview_section,
    sample_robustness_section,
    robust_subsets_section,
    rpr_section,
    distortion_section,
]
