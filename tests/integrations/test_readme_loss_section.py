"""The README's "What can be lost" section names, beside each sentence, the
test that backs it: every name must be a test that exists, and every bullet
must name at least one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## What can be lost")
    return text[start : text.index("\n## ", start + 1)]


def test_every_named_test_exists() -> None:
    named = re.findall(r"`([a-z_/]+\.py)(?:::([A-Za-z0-9_]+))?`", section())
    assert len(named) > 20
    missing = []
    for path, name in named:
        file = TESTS / path
        if not file.is_file():
            missing.append(path)
        elif name and not re.search(rf"def {name}\b", file.read_text(encoding="utf-8")):
            missing.append(f"{path}::{name}")
    assert missing == []


def test_every_bullet_names_a_test() -> None:
    bullets = re.split(r"\n- ", section())[1:]
    assert bullets
    unbacked = [b.split("\n")[0] for b in bullets if "test_" not in b]
    assert unbacked == []
