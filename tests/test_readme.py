"""Every Python block of the README runs on its own, in a fresh namespace."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_blocks():
    assert len(BLOCKS) >= 6


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs_alone(index):
    code = BLOCKS[index]
    if "torch" in code or "skorch" in code:
        pytest.importorskip("skorch")
    if "plotting" in code or "matplotlib" in code:
        pytest.importorskip("matplotlib")
    exec(compile(code, f"README.md block {index}", "exec"), {"__name__": "__readme__"})
