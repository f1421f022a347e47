"""Process-wide state stays flat: fork and exit hooks are registered once per
process (alamos/core/process.py), not once per tree, and a closed tree
leaves nothing behind in the registry or in memory."""

from __future__ import annotations

import atexit
import gc
import os
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import alamos
from alamos.core import process
from alamos.core.level import Level
from alamos.core.records import Record

ROOTS = 10_000


class Background:
    """A background exporter that keeps nothing: it makes every root build a
    collector, a delivery and a spool, the objects with fork hooks."""

    name = "nothing"
    min_level = Level.BENCH
    synchronous = False

    def export(self, records: Sequence[Record]) -> None:
        return None

    def close(self) -> None:
        return None


def open_and_close(n: int, spool: Path) -> None:
    for i in range(n):
        root = alamos.new("proc", exporters=[Background()], spool_dir=spool, console=False)
        with root.sub("layer").trace.prod("work"):
            pass
        root.close()
        del root
        if i % 1000 == 0:
            gc.collect()
    gc.collect()


def test_hooks_are_registered_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fork_hooks: list[Any] = []
    real = os.register_at_fork

    def counting(**kwargs: Any) -> None:
        fork_hooks.append(kwargs)
        real(**kwargs)

    monkeypatch.setattr(os, "register_at_fork", counting)
    exit_hooks = atexit._ncallbacks()
    # Earlier tests may leave closed trees in reference cycles that only a
    # collection frees (open_and_close collects at its end): count from the
    # same collected state, or the count drops by them.
    gc.collect()
    live = process.live_count()
    open_and_close(ROOTS, tmp_path)
    assert fork_hooks == []
    assert atexit._ncallbacks() == exit_hooks
    assert process.live_count() == live


def test_memory_stays_flat_over_many_roots(tmp_path: Path) -> None:
    open_and_close(500, tmp_path)  # warm up: caches, interned strings, loguru
    tracemalloc.start()
    try:
        open_and_close(1_000, tmp_path)
        before = tracemalloc.get_traced_memory()[0]
        open_and_close(ROOTS - 1_000, tmp_path)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # 9,000 more trees: a leak of even 50 bytes per tree would show as 450 kB.
    assert after - before < 200_000, f"grew by {after - before} bytes over {ROOTS - 1_000} roots"


def test_a_closed_tree_leaves_the_registry() -> None:
    live = process.live_count()
    root = alamos.new("proc", exporters=[Background()], console=False)
    assert process.live_count() > live
    root.close()
    assert process.live_count() == live
