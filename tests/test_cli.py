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


def test_robust_subsets_section_matches_a_direct_computation(tmp_path):
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsClassifier

    from skrob._report import ReportContext, robust_subsets_section
    from tests._reference import brute_robustness

    X, y = load_iris(return_X_y=True)
    section = robust_subsets_section(ReportContext(X, y, "iris", tmp_path, random_state=3))
    X_x, X_t, y_x, y_t = train_test_split(X, y, test_size=0.25, stratify=y, random_state=3)
    R_t = brute_robustness(X_t, y_t, "classification")
    pred = KNeighborsClassifier(5).fit(X_x, y_x).predict(X_t)
    least = np.argsort(R_t, kind="stable")[: round(0.5 * len(y_t))]
    most = np.argsort(-R_t, kind="stable")[: round(0.5 * len(y_t))]
    expected = f"{np.mean(pred[least] == y_t[least]):.4f} / {np.mean(pred[most] == y_t[most]):.4f}"
    assert section.summary["accuracy x -> tL50 / tM50"] == expected
    assert section.summary["accuracy x -> t"] == round(np.mean(pred == y_t), 4)
    assert "x aligned to t" in section.html and "xM80" in section.html


def test_robust_subsets_section_regression(tmp_path):
    from skrob._report import ReportContext, robust_subsets_section

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = X[:, 0] + 0.1 * rng.normal(size=120)
    section = robust_subsets_section(ReportContext(X, y, "reg", tmp_path))
    assert 0.5 < section.summary["R² x -> t"] <= 1.0


def test_rpr_section_matches_a_direct_computation(tmp_path):
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from skrob import PixelNoise, rpr_steps
    from skrob._report import ReportContext, rpr_section

    X, y = load_digits(return_X_y=True)
    X = X[:600] / 16.0
    y = y[:600]
    ctx = ReportContext(X, y, "digits", tmp_path, image_shape=(8, 8), random_state=1)
    section = rpr_section(ctx)
    X_x, X_t, y_x, y_t = train_test_split(X, y, test_size=0.25, stratify=y, random_state=1)
    model = LogisticRegression(max_iter=2000).fit(X_x, y_x)  # images: no scaling
    steps = rpr_steps(
        model, X_t, y_t, perturbation=PixelNoise(image_shape=(8, 8)), max_steps=100, random_state=1
    )
    assert section.summary["RPR-robust test fraction (100 steps)"] == round(
        np.mean(steps == 100), 4
    )
    assert (tmp_path / "rpr_curve.png").stat().st_size > 1000
    regression = rpr_section(ReportContext(X, X[:, 10] + 0.5 * X[:, 20], "r", tmp_path))
    assert "not defined for regression" in regression.html


def _table(tmp_path, df, name="d.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return str(path)


def test_report_on_a_tiny_table_skips_what_the_split_cannot_support(tmp_path, capsys):
    """12 rows: no 'align' error the user never asked for; 2 rows: no 'one class' error."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(12, 3)), columns=list("abc")).assign(t=[0, 1] * 6)
    assert (
        main(["report", "--data", _table(tmp_path, df), "--target", "t", "-o", str(tmp_path / "a")])
        == 0
    )
    two = _table(tmp_path, df.iloc[:2], "two.csv")
    assert main(["report", "--data", two, "--target", "t", "-o", str(tmp_path / "b")]) == 0
    page = (tmp_path / "b" / "index.html").read_text()
    assert "Not computed: the 75/25 split of 2 samples" in page
    assert "one class only" not in capsys.readouterr().err


def test_report_integer_regression_target_and_task_option(tmp_path, capsys):
    from sklearn.datasets import load_diabetes

    path = _table(tmp_path, load_diabetes(as_frame=True).frame)
    assert main(["report", "--data", path, "--target", "target", "-o", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    assert "read as regression" in captured.err
    assert any(line.split() == ["task", "regression"] for line in captured.out.splitlines())
    args = ["report", "--data", path, "--target", "target", "--task", "classification"]
    assert main([*args, "-o", str(tmp_path / "c"), "--n-show", "2"]) == 0
    assert "task" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--max-samples", "-1"], "--max-samples: must be >= 2"),
        (["--n-show", "-3"], "--n-show: must be >= 0"),
        (["--n-show", "x"], "expected an integer"),
    ],
)
def test_report_rejects_bad_numbers(extra, message, capsys):
    with pytest.raises(SystemExit):
        main(["report", *extra])
    assert message in capsys.readouterr().err


def test_report_bad_files(tmp_path, capsys):
    header = _table(tmp_path, pd.DataFrame({"a": [], "t": []}))
    assert main(["report", "--data", header, "--target", "t", "-o", str(tmp_path / "o")]) == 2
    assert "no rows" in capsys.readouterr().err
    existing = tmp_path / "file.html"
    existing.write_text("")
    assert main(["report", "-o", str(existing)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_distortion_section_matches_a_direct_computation(tmp_path):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skrob import exact_distortion
    from skrob._report import ReportContext, distortion_section

    X, y = load_iris(return_X_y=True)
    section = distortion_section(ReportContext(X, y, "iris", tmp_path, random_state=3))
    X_x, X_t, y_x, y_t = train_test_split(X, y, test_size=0.25, stratify=y, random_state=3)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X_x, y_x)
    exact = exact_distortion(model, X_t, y_t, clip=(X.min(axis=0), X.max(axis=0)))
    expected = round(float(np.mean(exact[np.isfinite(exact)])), 4)
    assert section.summary["mean exact L∞ distortion (default model)"] == expected
    assert "Minimal adversarial distortion" in section.title and "<table" in section.html
    regression = distortion_section(ReportContext(X, X[:, 0] * 1.5, "r", tmp_path))
    assert "not defined for regression" in regression.html
