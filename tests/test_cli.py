from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

from skrob import sample_robustness
from skrob.__main__ import main

pytest.importorskip("matplotlib")


class _Page(HTMLParser):
    """The ids, images, links and text of a report page."""

    def __init__(self):
        super().__init__()
        self.ids, self.images, self.links, self.text = set(), [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs)
        if tag == "a":
            self.links.append(attrs.get("href"))

    def handle_data(self, data):
        self.text.append(data)


def _parse(out):
    page = _Page()
    page.feed((out / "index.html").read_text(encoding="utf-8"))
    page.text = " ".join(page.text)
    return page


def test_report_on_digits(tmp_path, capsys):
    from sklearn.datasets import load_digits

    from skrob import diagnose

    out = tmp_path / "rep"
    assert main(["report", "--output", str(out), "--n-show", "8"]) == 0
    page = _parse(out)
    sections = {"verdict", "look-first", "least-robust", "class-pairs", "sample-robustness"}
    sections |= {"robust-subsets", "rpr", "distortion", "summary", "references"}
    assert sections <= page.ids
    assert {f"paper-{k}" for k in ("000", "001", "002", "003", "004")} <= page.ids
    images = {img["src"] for img in page.images}
    assert {"least_robust_pairs.png", "class_pairs.png", "robustness_per_class.png"} <= images
    assert {"most_robust.png", "rpr_curve.png"} <= images
    for img in page.images:
        assert (out / img["src"]).stat().st_size > 1000 and img["alt"]
    # The verdict answers first: how separated the classes are, then what to do.
    assert page.text.index("The classes are") < page.text.index("What to do")
    assert page.text.index("What to do") < page.text.index("Sample robustness per class")
    assert "diagnosis.csv" in page.links
    table = pd.read_csv(out / "diagnosis.csv", index_col=0)
    X, y = load_digits(return_X_y=True)
    expected = diagnose(X / 16.0, y)
    # written with 10 significant digits, for people
    np.testing.assert_allclose(table["robustness"], expected["robustness"], rtol=1e-9)
    np.testing.assert_array_equal(table["suggested_label"], expected["suggested_label"])
    # 21 relabel suggestions, printed and written with the same count.
    printed = capsys.readouterr().out
    line = next(s for s in printed.splitlines() if s.startswith("samples nearer another"))
    assert int(line.split()[-1]) == int(expected["relabel"].sum())
    line = next(s for s in printed.splitlines() if s.startswith("likely label errors"))
    assert int(line.split()[-1]) == int(expected["label_issue"].sum())
    np.testing.assert_array_equal(table["label_issue"], expected["label_issue"])
    assert "report written" in printed
    assert "0.6460607980211024" not in printed  # rounded for people


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_report_on_a_table(tmp_path, suffix, capsys):
    X, y = load_iris(return_X_y=True)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(species=y)
    path = tmp_path / f"iris{suffix}"
    df.to_csv(path, index=False) if suffix == ".csv" else df.to_parquet(path)
    out = tmp_path / "rep"
    assert main(["report", "--data", str(path), "--target", "species", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    # Scaled by default: R of the standardised features, to 4 significant digits.
    expected = sample_robustness(StandardScaler().fit_transform(X), y).mean()
    line = next(s for s in printed.splitlines() if s.startswith("mean robustness"))
    assert float(line.split()[-1]) == float(f"{expected:.4g}")
    assert "feature scaling" in printed and "standardised" in printed
    assert not (out / "least_robust_pairs.png").exists()  # 4 features are no image
    assert "its nearest other" in (out / "index.html").read_text()  # the feature table


def test_report_scale_option_and_warning(tmp_path, capsys):
    from sklearn.datasets import load_wine

    path = _table(tmp_path, load_wine(as_frame=True).frame)
    args = ["report", "--data", path, "--target", "target", "-q"]
    assert main([*args, "--scale", "none", "-o", str(tmp_path / "raw")]) == 0
    captured = capsys.readouterr()
    assert "warning: feature standard deviations differ by a factor" in captured.err
    assert "Warning: feature standard deviations" in (tmp_path / "raw" / "index.html").read_text()
    X, y = load_wine(return_X_y=True)
    line = next(s for s in captured.out.splitlines() if s.startswith("mean robustness"))
    assert float(line.split()[-1]) == float(f"{sample_robustness(X, y).mean():.4g}")
    assert main([*args, "-o", str(tmp_path / "std")]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err
    # Scaled, the default model is robust to the report's noise (it was 0.0 unscaled).
    line = next(s for s in captured.out.splitlines() if s.startswith("test samples surviving"))
    assert float(line.split()[-1]) > 0.5


def test_version_and_help(capsys):
    from skrob import __version__

    with pytest.raises(SystemExit):
        main(["--version"])
    assert __version__ in capsys.readouterr().out
    for argv in (["--help"], ["report", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = capsys.readouterr().out
        assert "``" not in text and "usage: skrob" in text


def test_report_regression_table(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(60, 3)), columns=list("abc"))
    df["y"] = df.a + 0.1 * rng.normal(size=60)
    path = tmp_path / "reg.csv"
    df.to_csv(path, index=False)
    assert main(["report", "--data", str(path), "--target", "y", "-o", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "robustness_distribution.png").exists()
    assert "robustness" in pd.read_csv(tmp_path / "r" / "diagnosis.csv").columns


def test_regression_verdict_matches_leave_one_out_knn(tmp_path):
    """The regression verdict's R² is that of scikit-learn's 5-NN regressor, leave one out,
    on the report's standardised features; its words follow from it."""
    from sklearn.metrics import r2_score
    from sklearn.model_selection import LeaveOneOut, cross_val_predict
    from sklearn.neighbors import KNeighborsRegressor

    from skrob.report import ReportContext, overview_section
    from skrob.report._sections import _regression_level

    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3)) * [1.0, 100.0, 0.01]
    for noise in (0.0, 30.0):
        y = X[:, 0] + X[:, 1] / 100 + noise * rng.normal(size=80)
        section = overview_section(ReportContext(X, y, "t", tmp_path, task="regression"))
        Z = StandardScaler().fit_transform(X)
        prediction = cross_val_predict(KNeighborsRegressor(5), Z, y, cv=LeaveOneOut())
        expected = float(f"{r2_score(y, prediction):.4g}")
        key = "R² of the leave-one-out 5-nearest-neighbour prediction"
        assert section.summary[key] == pytest.approx(expected, rel=1e-3)
        assert f"The target is {_regression_level(expected)}" in section.html
        if noise:  # the target is noise: nearness says nothing
            assert "hard to predict" in section.html


def test_report_errors(tmp_path, capsys):
    path = tmp_path / "d.csv"
    pd.DataFrame({"a": [1.0, 2.0], "t": [0, 1]}).to_csv(path, index=False)
    assert main(["report", "--data", str(path)]) == 2
    assert "--target" in capsys.readouterr().err
    assert main(["report", "--data", str(path), "--target", "nope"]) == 2
    assert main(["report", "--data", str(tmp_path / "missing.csv"), "--target", "t"]) == 2
    pd.DataFrame({"a": [1.0, 2.0], "t": [0, 0]}).to_csv(path, index=False)
    out = str(tmp_path / "out")
    assert main(["report", "--data", str(path), "--target", "t", "-o", out]) == 2
    assert "one class" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "--help"])


def test_robust_subsets_section_matches_a_direct_computation(tmp_path):
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsClassifier

    from skrob.report import ReportContext, robust_subsets_section, significant
    from tests._reference import brute_robustness

    X, y = load_iris(return_X_y=True)
    ctx = ReportContext(X, y, "iris", tmp_path, random_state=3, scale="none")
    section = robust_subsets_section(ctx)
    X_x, X_t, y_x, y_t = train_test_split(X, y, test_size=0.25, stratify=y, random_state=3)
    R_t = brute_robustness(X_t, y_t, "classification")
    pred = KNeighborsClassifier(5).fit(X_x, y_x).predict(X_t)
    least = np.argsort(R_t, kind="stable")[: round(0.5 * len(y_t))]
    most = np.argsort(-R_t, kind="stable")[: round(0.5 * len(y_t))]
    summary = section.summary
    assert summary["kNN accuracy, least robust half of the test set"] == significant(
        np.mean(pred[least] == y_t[least])
    )
    assert summary["kNN accuracy, most robust half of the test set"] == significant(
        np.mean(pred[most] == y_t[most])
    )
    assert summary["kNN accuracy, all test samples"] == significant(np.mean(pred == y_t))
    assert "x aligned to t" in section.html and "xM80" in section.html


def test_robust_subsets_section_regression(tmp_path):
    from skrob.report import ReportContext, robust_subsets_section

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = X[:, 0] + 0.1 * rng.normal(size=120)
    section = robust_subsets_section(ReportContext(X, y, "reg", tmp_path))
    assert 0.5 < section.summary["kNN R², all test samples"] <= 1.0


def test_rpr_section_matches_a_direct_computation(tmp_path):
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from skrob import PixelNoise, rpr_steps
    from skrob.report import ReportContext, rpr_section

    X, y = load_digits(return_X_y=True)
    X = X[:600] / 16.0
    y = y[:600]
    ctx = ReportContext(X, y, "digits", tmp_path, image_shape=(8, 8), random_state=1)
    section = rpr_section(ctx)
    X_x, X_t, y_x, y_t = train_test_split(X, y, test_size=0.25, stratify=y, random_state=1)
    model = LogisticRegression(max_iter=2000, tol=1e-3).fit(X_x, y_x)  # images: no scaling
    steps = rpr_steps(
        model, X_t, y_t, perturbation=PixelNoise(image_shape=(8, 8)), max_steps=100, random_state=1
    )
    assert section.summary["test samples surviving 100 random perturbations"] == float(
        f"{np.mean(steps == 100):.4g}"
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
    from skrob.report import ReportContext, distortion_section

    X, y = load_iris(return_X_y=True)
    section = distortion_section(
        ReportContext(X, y, "iris", tmp_path, random_state=3, scale="none")
    )
    X_x, X_t, y_x, y_t = train_test_split(X, y, test_size=0.25, stratify=y, random_state=3)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, tol=1e-3))
    model.fit(X_x, y_x)
    exact = exact_distortion(model, X_t, y_t, clip=(X.min(axis=0), X.max(axis=0)))
    expected = float(f"{np.mean(exact[np.isfinite(exact)]):.4g}")
    assert section.summary["mean exact L∞ distortion (default model)"] == expected
    # the data's scale: each test sample's L∞ distance to the nearest training sample of
    # another class, by brute force
    gap = np.array(
        [np.abs(X_x[y_x != c] - x).max(axis=1).min() for x, c in zip(X_t, y_t, strict=True)]
    )
    ok = np.isfinite(exact)
    ratio = float(f"{np.median(exact[ok] / gap[ok]):.4g}")
    assert section.summary["median exact L∞ distortion / distance to another class"] == ratio
    assert "What is good here" in section.html
    assert "Minimal adversarial distortion" in section.title and "<table" in section.html
    regression = distortion_section(ReportContext(X, X[:, 0] * 1.5, "r", tmp_path))
    assert "not defined for regression" in regression.html


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_report_knn_predictions_equal_the_fitted_models(tmp_path, task):
    # the robust-subsets matrix: one shared neighbour search for every training subset,
    # equal to fitting scikit-learn's 5-NN model on each
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    from skrob.report import ReportContext
    from skrob.report._sections import _knn_predictions

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    y = rng.integers(0, 4, 400) if task == "classification" else rng.normal(size=400)
    ctx = ReportContext(X, y, "test", tmp_path, task=task)
    X_x, X_t, y_x = X[:300], X[300:], y[:300]
    sets = {
        "all": np.arange(300),
        "half": rng.choice(300, 150, replace=False),
        "few": [3, 9, 27, 81, 243, 7],
    }
    model_type = KNeighborsClassifier if task == "classification" else KNeighborsRegressor
    got = _knn_predictions(ctx, model_type(n_neighbors=5), X_x, y_x, X_t, sets)
    for name, rows in sets.items():
        expected = model_type(n_neighbors=5).fit(X_x[rows], y_x[rows]).predict(X_t)
        np.testing.assert_allclose(got[name], expected, rtol=1e-12)


def test_report_aligned_subset_is_the_selectors():
    from skrob import RobustSubsetSelector, sample_robustness
    from skrob.report._sections import _aligned_subset

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 4)), rng.integers(0, 3, 300)
    X_t, y_t = rng.normal(size=(100, 4)) * 1.5, rng.integers(0, 3, 100)
    R_t = sample_robustness(X_t, y_t)
    selector = RobustSubsetSelector(strategy="align", random_state=3)
    expected = selector.fit(X, y, target_robustness=R_t).sample_indices_
    np.testing.assert_array_equal(_aligned_subset(sample_robustness(X, y), R_t, 3), expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_report_search_by_part_equals_the_separate_searches(tmp_path, seed):
    # the verdict's one search over (class, split part) gives diagnose's per-class
    # search, each part's robustness against itself and the test samples' distance to
    # the training part, bit for bit
    from skrob._search.neighbors import nearest_in_groups
    from skrob.report import ReportContext
    from skrob.report._sections import _nearest_by_part, _split, _split_indices
    from tests.conftest import make_tricky_data

    rng = np.random.default_rng(seed)
    X, _ = make_tricky_data(rng, n=300)  # offset 50, copies and near-copies
    X = np.vstack([X, X[:20]])  # copies that the split puts in different parts
    y = rng.integers(0, 3, X.shape[0])
    ctx = ReportContext(X, y, "t", tmp_path, random_state=seed, scale="none")
    searched = _nearest_by_part(ctx)
    n = len(y)
    dist, _ = nearest_in_groups(X, X, y, 3, exclude=np.arange(n))
    got, arg = searched["class"]
    np.testing.assert_array_equal(got, dist)
    attained = np.linalg.norm(X[:, None, :] - X[arg], axis=2)
    np.testing.assert_allclose(attained, dist, rtol=1e-12, atol=0)
    assert np.all(arg != np.arange(n)[:, None])
    X_x, X_t, y_x, y_t = _split(ctx, classification=True)
    rows_x, rows_t = _split_indices(ctx, classification=True)
    for rows, Xp, yp in ((rows_x, X_x, y_x), (rows_t, X_t, y_t)):
        expected = sample_robustness(Xp, yp, algorithm="exact")
        np.testing.assert_array_equal(
            searched["reach"][rows] / (searched["reach"][rows] + 1), expected
        )
    to_x, _ = nearest_in_groups(X_t, X_x, y_x, 3)
    np.testing.assert_array_equal(searched["to training"][rows_t], to_x)


def test_report_search_by_part_only_where_it_is_exact(tmp_path):
    from skrob.report import ReportContext
    from skrob.report._sections import _nearest_by_part

    X, y = load_iris(return_X_y=True)
    assert _nearest_by_part(ReportContext(X, y, "i", tmp_path)) is not None
    for options in ({"metric": "manhattan"}, {"algorithm": "approximate"}):
        assert _nearest_by_part(ReportContext(X, y, "i", tmp_path, **options)) is None
    assert _nearest_by_part(ReportContext(X, X[:, 0], "r", tmp_path)) is None
