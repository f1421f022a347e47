"""The runnable examples of docs/propagation.md run, and do what they say
(each ends with assertions on the spans it made)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "propagation.md"
BLOCKS = dict(
    (name, code)
    for code, name in re.findall(r"```python\n(# runnable: (\w+)\n.*?)```", DOC.read_text(), re.S)
)


def run(code: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALAMOS_")}
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "ALAMOS_CONSOLE": "0"},
    )
    assert result.returncode == 0, result.stderr


def test_the_doc_has_examples() -> None:
    assert list(BLOCKS) == ["queue", "anyio"]


@pytest.mark.parametrize("name", ["queue", "anyio"])
def test_example_runs(name: str, tmp_path: Path) -> None:
    run(BLOCKS[name], tmp_path)


def test_anyio_example_runs_on_trio(tmp_path: Path) -> None:
    code = BLOCKS["anyio"].replace("anyio.run(main)", 'anyio.run(main, backend="trio")')
    assert 'backend="trio"' in code
    run(code, tmp_path)
