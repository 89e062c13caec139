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
