"""benchmarks/bench_gpu.py runs end to end on the CPU (its checks against the CPU results
then compare two CPU runs, but every code path of the script runs)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gpu.py"


@pytest.mark.slow
def test_bench_gpu_runs_on_the_cpu():
    args = ["--device", "cpu", "--n", "2000", "--n-lo", "4", "--n-attack", "8"]
    result = subprocess.run(
        [sys.executable, str(BENCH), *args, "--n-train", "500"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "all checks passed" in result.stdout
    assert "identical: True" in result.stdout
