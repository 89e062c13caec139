"""The user's table: a CSV or Parquet file read into features, labels and row names, with
ID and text columns dropped, categories encoded and missing values imputed (each said)."""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


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
