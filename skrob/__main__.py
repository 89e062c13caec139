"""The skrob command line: skrob report writes an HTML robustness report."""

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def _image_shape(text, n_features):
    if text == "none":
        return None
    if text == "auto":
        side = math.isqrt(n_features)
        return (side, side) if side * side == n_features and side >= 4 else None
    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--image-shape must be like 28x28, auto or none, got {text!r}") from None
    if math.prod(shape) != n_features:
        raise SystemExit(f"--image-shape {text} does not match {n_features} features")
    return shape


def _count(minimum):
    """An argparse type: an integer >= ``minimum``."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def build_parser():
    from skrob import __version__

    parser = argparse.ArgumentParser(
        prog="skrob",
        description="skrob: robustness of data and models. 'skrob report' writes an HTML "
        "robustness report of a labelled dataset.",
    )
    parser.add_argument("--version", action="version", version=f"skrob {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser(
        "report",
        help="write an HTML report of a labelled dataset's robustness",
        description=(
            "Compute the robustness of every sample of a labelled dataset and write a "
            "report folder: index.html with a verdict (how robust the data are, conflicting "
            "duplicates, the closest classes, what to do), the least robust samples beside "
            "their nearest differently labelled samples, per-class distributions, a "
            "default model's robustness, and diagnosis.csv with one row per sample. "
            "Without --data it uses scikit-learn's bundled digits."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    rep.add_argument(
        "--data",
        metavar="PATH",
        help="a CSV or Parquet file with numeric features and a label column; "
        "'digits' (default), 'fashion-mnist' or 'mnist-5k' for bundled sets",
    )
    rep.add_argument(
        "--target", metavar="COLUMN", help="the label column of --data (required with a file)"
    )
    rep.add_argument("--drop", nargs="+", metavar="COLUMN", help="columns of --data to leave out")
    rep.add_argument(
        "--index",
        metavar="COLUMN",
        help="the column of --data that names each row (kept as the row identity in "
        "diagnosis.csv, not used as a feature); default: the row number in the file",
    )
    rep.add_argument(
        "--impute",
        default="auto",
        choices=["auto", "none"],
        help="missing feature values: 'auto' replaces them by the column median (the page "
        "says where), 'none' refuses the file naming the columns",
    )
    rep.add_argument(
        "--output",
        "-o",
        metavar="DIR",
        default="skrob-report",
        help="folder to write index.html and the PNG plots into",
    )
    rep.add_argument(
        "--task",
        default="auto",
        choices=["auto", "classification", "regression"],
        help="what the target is; 'auto' reads numeric targets with more than 50 distinct "
        "values, or more than half as many as samples, as regression",
    )
    rep.add_argument(
        "--metric", default="euclidean", help="distance: euclidean, or any scipy cdist metric"
    )
    rep.add_argument(
        "--algorithm",
        default="auto",
        choices=["auto", "exact", "approximate", "nndescent"],
        help="nearest-neighbour backend",
    )
    rep.add_argument(
        "--scale",
        default="auto",
        choices=["auto", "standard", "none"],
        help="feature scaling before distances, noise and models: 'standard' standardises "
        "every feature (mean 0, standard deviation 1); 'auto' is 'none' for images with "
        "pixel values in [0, 1] and 'standard' otherwise",
    )
    rep.add_argument(
        "--image-shape",
        default="auto",
        help="HxW to draw samples as images; 'auto' draws square ones, 'none' never",
    )
    rep.add_argument(
        "--n-show", type=_count(0), default=16, help="number of least/most robust samples to show"
    )
    rep.add_argument(
        "--max-samples",
        type=_count(2),
        default=None,
        help="use a random subset of this many samples",
    )
    rep.add_argument("--random-state", type=int, default=0, help="seed")
    rep.add_argument(
        "--force",
        action="store_true",
        help="write into an existing --output folder that holds files skrob did not write "
        "(files of the same names are replaced; the input data file never is)",
    )
    rep.add_argument(
        "--verbose", "-v", action="count", default=0, help="progress bars inside each step too"
    )
    rep.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return parser


def _load(args):
    name = args.data or "digits"
    if name in ("digits", "fashion-mnist", "mnist-5k") and (args.drop or args.index):
        raise ValueError("--drop and --index apply to a data file (--data PATH).")
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        # Pixels scaled to [0, 1], the feature space of paper 000.
        name = "scikit-learn digits (8x8, scaled to [0, 1])"
        return d.data / 16.0, d.target, name, None, None
    if name == "fashion-mnist":
        from skrob.datasets import load_fashion_mnist

        d = load_fashion_mnist()
        return d.data, d.target, "Fashion-MNIST (70,000)", list(d.target_names), None
    if name == "mnist-5k":
        from skrob.datasets import load_mnist_5k

        d = load_mnist_5k()
        return d.data, d.target, "MNIST 5k", None, None
    from skrob.report import load_table

    table = load_table(
        name, args.target, drop=args.drop or (), index=args.index, impute=args.impute
    )
    return table.X, table.y, Path(name).name, None, table


def _task(task, y):
    """The report's task: ``--task``, or for 'auto' regression where class labels would be
    implausibly many numeric values (:func:`skrob._validation.many_classes`)."""
    from skrob._validation import many_classes, resolve_task

    if task != "auto":
        return task
    if resolve_task(y, warn=False) == "classification" and many_classes(y) is not None:
        n_classes, n = many_classes(y)
        print(
            f"skrob report: the target has {n_classes} distinct numeric values among {n} "
            "samples: read as regression (--task classification to override).",
            file=sys.stderr,
        )
        return "regression"
    return resolve_task(y, warn=False)


def _check_task(task, y):
    """A regression target must be numbers: say which values are not."""
    if task != "regression":
        return
    values = np.asarray(y)
    if values.dtype.kind in "iuf":
        return
    try:
        values.astype(np.float64)
    except (TypeError, ValueError):
        examples = [str(v) for v in values[:3]]
        raise ValueError(
            f"--task regression needs a numeric target; it holds values like {examples}. "
            "Use --task classification (or auto) for class labels."
        ) from None


def main(argv=None):
    args = build_parser().parse_args(argv)
    from skrob.report import ReportContext, check_output, write_report
    from skrob.report._context import _text

    out = Path(args.output)
    try:
        check_output(out, force=args.force)  # before any work: never write over user files
        X, y, name, label_names, table = _load(args)
        task = _task(args.task, y)
        _check_task(task, y)
    except (OSError, ValueError) as exc:
        print(f"skrob report: {exc}", file=sys.stderr)
        return 2
    row_ids = table.row_ids if table is not None else pd.RangeIndex(X.shape[0], name="sample")
    data_notes = list(table.notes) if table is not None else []
    if args.max_samples is not None and args.max_samples < X.shape[0]:
        keep = np.sort(
            np.random.default_rng(args.random_state).choice(
                X.shape[0], args.max_samples, replace=False
            )
        )
        X, y = X[keep], y[keep]
        row_ids = row_ids[keep]
        data_notes.append(
            f"a random subset of {args.max_samples:,} rows (--max-samples); diagnosis.csv "
            "names them by their rows in the data"
        )
    try:
        ctx = ReportContext(
            X=X,
            y=y,
            dataset_name=name,
            out_dir=out,
            task=task,
            image_shape=_image_shape(args.image_shape, X.shape[1]),
            label_names=label_names,
            metric=args.metric,
            algorithm=args.algorithm,
            n_show=args.n_show,
            random_state=args.random_state,
            verbose=args.verbose,
            scale=args.scale,
            feature_names=table.feature_names if table is not None else None,
            row_ids=row_ids,
            data_notes=data_notes,
            progress=not args.quiet,
        )
    except ValueError as exc:
        print(f"skrob report: {exc}", file=sys.stderr)
        return 2
    for note in ctx.data_notes:
        print(f"skrob report: {note}", file=sys.stderr)
    for note in ctx.notes:
        print(f"skrob report: warning: {note}", file=sys.stderr)
    protect = [args.data] if args.data and Path(args.data).is_file() else []
    try:
        path, summary = write_report(ctx, protect=protect, force=args.force)
    except (OSError, ValueError) as exc:
        print(f"skrob report: {exc}", file=sys.stderr)
        return 2
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        print(f"{key:<{width}}  {_text(value)}")
    print(f"report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
