"""skrob report never writes over a file it did not write, never over its input, and
fails with a message and exit code 2, never a traceback."""

import os
import stat

import numpy as np
import pandas as pd
import pytest

from skrob.__main__ import main

pytest.importorskip("matplotlib")

FAST = ["--quiet", "--n-show", "2"]


def _table(path, n=60, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, 3)) * scale, columns=["a", "b", "c"])
    df["label"] = (df.a > 0).astype(int)
    df.to_csv(path, index=False)
    return df


def _report(data, out, *extra):
    return main(["report", "--data", str(data), "--target", "label", "-o", str(out), *FAST, *extra])


def test_the_input_is_never_overwritten(tmp_path, capsys):
    """The issue's case: --data proj/diagnosis.csv -o proj."""
    proj = tmp_path / "proj"
    proj.mkdir()
    data = proj / "diagnosis.csv"
    _table(data)
    before = data.read_bytes()
    assert _report(data, proj) == 2
    assert "skrob did not write" in capsys.readouterr().err
    assert _report(data, proj, "--force") == 2  # --force never covers the input
    assert "input data file" in capsys.readouterr().err
    assert data.read_bytes() == before
    assert not (proj / "index.html").exists()


def test_a_users_files_in_the_output_folder_are_left_alone(tmp_path, capsys):
    data = tmp_path / "d.csv"
    _table(data)
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("my own page")
    assert _report(data, out) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "index.html").read_text() == "my own page"
    # with --force the report goes in, and says it was written
    assert _report(data, out, "--force") == 0
    assert "Robustness report" in (out / "index.html").read_text()


def test_a_report_folder_is_rewritten_but_a_changed_file_is_not(tmp_path, capsys):
    data = tmp_path / "d.csv"
    _table(data)
    out = tmp_path / "r"
    assert _report(data, out) == 0
    assert _report(data, out) == 0  # its own report: rewritten freely
    (out / "notes.txt").write_text("mine")  # beside the report: untouched
    assert _report(data, out) == 0
    assert (out / "notes.txt").read_text() == "mine"
    (out / "diagnosis.csv").write_text("edited by hand")
    assert _report(data, out) == 2
    assert "changed since" in capsys.readouterr().err
    assert (out / "diagnosis.csv").read_text() == "edited by hand"
    assert not any(p.name.startswith(".skrob-staging") for p in out.iterdir())


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_unwritable_and_impossible_output_folders_are_messages(tmp_path, capsys):
    data = tmp_path / "d.csv"
    _table(data)
    assert _report(data, data / "sub") == 2  # -o file/sub
    assert "is a file, not a folder" in capsys.readouterr().err
    # an OSError while writing (as a read-only folder gives) is a message too
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "ro"))

    real = tempfile.mkdtemp
    tempfile.mkdtemp = refuse
    try:
        assert _report(data, tmp_path / "ro") == 2
        assert "Permission denied" in capsys.readouterr().err
    finally:
        tempfile.mkdtemp = real
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere
            pytest.skip("running as root: permissions do not bind")
        assert _report(data, locked / "r") == 2
        assert "skrob report:" in capsys.readouterr().err
    finally:
        locked.chmod(stat.S_IRWXU)


def test_bad_tables_are_messages(tmp_path, capsys):
    path = tmp_path / "t.csv"
    df = _table(path)
    df.loc[3, "b"] = np.inf
    df.to_csv(path, index=False)
    assert _report(path, tmp_path / "o1") == 2
    assert "['b']" in capsys.readouterr().err
    # two columns named like the target: pandas would rename one and use a feature
    path.write_text("a,label,label\n1,0,5\n2,1,6\n3,0,7\n")
    assert _report(path, tmp_path / "o2") == 2
    assert "the target 'label' names 2 columns" in capsys.readouterr().err
    path.write_text("a,a,label\n1,0,0\n2,1,1\n3,0,0\n")
    assert _report(path, tmp_path / "o3") == 2
    assert "duplicate column names ['a']" in capsys.readouterr().err
    _table(path)
    df = pd.read_csv(path)
    df["label"] = np.where(df.a > 0, "yes", "no")
    df.to_csv(path, index=False)
    assert _report(path, tmp_path / "o4", "--task", "regression") == 2
    assert "numeric target" in capsys.readouterr().err


@pytest.mark.parametrize("scale", [1e-200, 1e300])
def test_extreme_magnitudes_are_standardised_without_loss(tmp_path, scale, capsys):
    """Values near 1e-200 (variance underflows: StandardScaler left them unscaled and the
    noise scale became 0) and near 1e300 (squares overflow: NaN after StandardScaler)."""
    data = tmp_path / "d.csv"
    _table(data, scale=scale)
    assert _report(data, tmp_path / "r") == 0, capsys.readouterr().err
    text = (tmp_path / "r" / "index.html").read_text()
    assert "Not computed" not in text


def test_standardise_equals_standard_scaler_where_it_is_defined():
    from sklearn.preprocessing import StandardScaler

    from skrob.report import standardise

    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4)) * [1.0, 1e3, 1e-3, 0.0] + [0.0, 5.0, 1.0, 3.0]
    Z, std = standardise(X)
    np.testing.assert_allclose(Z, StandardScaler().fit_transform(X), atol=1e-12)
    np.testing.assert_allclose(std, X.std(axis=0), rtol=1e-12)
    for scale in (1e-200, 1e300):
        Zs, _ = standardise(X[:, :3] * scale)
        np.testing.assert_allclose(Zs, Z[:, :3], atol=1e-9)


def _messy(path, n=120, seed=0):
    """A data scientist's table: an ID, a categorical with gaps, free text, numeric gaps,
    missing labels."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "customer_id": np.arange(5000, 5000 + n),
            "age": rng.normal(40, 10, n).round(),
            "income": rng.lognormal(10, 1, n),
            "city": rng.choice(["Paris", "Lyon", "Nice", None], n),
            "comment": [f"note {i}: " + "word " * int(rng.integers(3, 12)) for i in range(n)],
            "score": rng.normal(size=n),
        }
    )
    df.loc[rng.choice(n, 10, replace=False), "income"] = np.nan
    df["label"] = np.where(df.score + (df.city == "Paris") > 0.5, "yes", "no")
    df.loc[[3, 7], "label"] = None
    df.to_csv(path, index=False)
    return df


def test_a_messy_table_gives_a_report_that_maps_back_to_the_file(tmp_path, capsys):
    data = tmp_path / "customers.csv"
    df = _messy(data)
    assert _report(data, tmp_path / "r") == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    for words in ("2 rows without a label", "customer_id", "comment", "median", "city"):
        assert words in err
    page = (tmp_path / "r" / "index.html").read_text()
    assert "How the data were prepared" in page and "one-hot" in page
    table = pd.read_csv(tmp_path / "r" / "diagnosis.csv", index_col=0)
    labelled = df.index[df["label"].notna()]
    assert list(table.index) == list(labelled)  # the file's data rows, 0-based
    assert list(table["label"]) == list(df.loc[labelled, "label"])
    assert set(table["nearest_other"]) <= set(labelled)
    # --index: the rows named by a column; --max-samples keeps the names
    assert _report(data, tmp_path / "r2", "--index", "customer_id", "--max-samples", "50") == 0
    table = pd.read_csv(tmp_path / "r2" / "diagnosis.csv", index_col=0)
    assert table.index.name == "customer_id" and len(table) == 50
    ids = df.set_index("customer_id")
    assert list(table["label"]) == list(ids.loc[table.index, "label"])
    assert set(table["nearest_other"]) <= set(table.index)


def test_impute_none_and_drop(tmp_path, capsys):
    data = tmp_path / "customers.csv"
    _messy(data)
    assert _report(data, tmp_path / "r", "--impute", "none") == 2
    assert "['income']" in capsys.readouterr().err
    assert _report(data, tmp_path / "r", "--impute", "none", "--drop", "income") == 0
    assert _report(data, tmp_path / "r3", "--drop", "nope") == 2
    assert "--drop: no column 'nope'" in capsys.readouterr().err


def test_a_section_whose_model_fails_is_reported_not_fatal(tmp_path, capsys):
    """Unscaled values near 1e300 overflow the default model: its sections say so on the
    page and in the terminal; the verdict and the other sections stand."""
    data = tmp_path / "d.csv"
    _table(data, scale=1e300)
    assert _report(data, tmp_path / "r", "--scale", "none") == 0
    err = capsys.readouterr().err
    assert "not computed" in err and "--scale standard" in err
    page = (tmp_path / "r" / "index.html").read_text()
    assert "Not computed" in page and "The classes are" in page
