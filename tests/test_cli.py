import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from skrob import sample_robustness
from skrob.__main__ import main

pytest.importorskip("matplotlib")


def test_report_on_digits(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", "--output", str(out), "--n-show", "8"]) == 0
    page = (out / "index.html").read_text()
    assert "Sample robustness" in page and "Per class" in page
    for png in ("robustness_per_class.png", "least_robust.png", "most_robust.png"):
        assert (out / png).stat().st_size > 1000
        assert png in page
    assert "report written" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_report_on_a_table(tmp_path, suffix, capsys):
    X, y = load_iris(return_X_y=True)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(species=y)
    path = tmp_path / f"iris{suffix}"
    df.to_csv(path, index=False) if suffix == ".csv" else df.to_parquet(path)
    out = tmp_path / "rep"
    assert main(["report", "--data", str(path), "--target", "species", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    expected = sample_robustness(X, y).mean()
    line = next(s for s in printed.splitlines() if s.startswith("mean robustness"))
    assert np.isclose(float(line.split()[-1]), expected)
    assert not (out / "least_robust.png").exists()  # 4 features are no image


def test_report_regression_table(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(60, 3)), columns=list("abc"))
    df["y"] = df.a + 0.1 * rng.normal(size=60)
    path = tmp_path / "reg.csv"
    df.to_csv(path, index=False)
    assert main(["report", "--data", str(path), "--target", "y", "-o", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "robustness_distribution.png").exists()


def test_report_errors(tmp_path, capsys):
    path = tmp_path / "d.csv"
    pd.DataFrame({"a": [1.0, 2.0], "t": [0, 1]}).to_csv(path, index=False)
    assert main(["report", "--data", str(path)]) == 2
    assert "--target" in capsys.readouterr().err
    assert main(["report", "--data", str(path), "--target", "nope"]) == 2
    assert main(["report", "--data", str(tmp_path / "missing.csv"), "--target", "t"]) == 2
    pd.DataFrame({"a": [1.0, 2.0], "t": [0, 0]}).to_csv(path, index=False)
    assert main(["report", "--data", str(path), "--target", "t", "-o", str(tmp_path)]) == 2
    assert "one class" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "--help"])
