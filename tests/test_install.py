"""skrob works without its optional extras (fairlearn's test_no_ml.py idea)."""

import subprocess
import sys


def test_import_skrob_does_not_import_torch_or_matplotlib():
    code = (
        "import sys, skrob, skrob.datasets, skrob.plotting\n"
        "skrob.sample_robustness([[0.0], [1.0]], [0, 1])\n"
        "bad = [m for m in ('torch', 'skorch', 'matplotlib', 'pynndescent', 'numba') "
        "if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_non_torch_tests_pass_without_torch():
    """The torch extra is optional: with torch unimportable, these tests still pass."""
    import os
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "SKROB_TEST_WITHOUT_TORCH": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_rpr.py",
            "tests/test_selection.py",
            "tests/test_sample_robustness.py",
            "tests/torch",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "passed" in result.stdout and "failed" not in result.stdout
    assert "skipped" in result.stdout  # tests/torch skips cleanly
