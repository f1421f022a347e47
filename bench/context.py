"""What every suite shares: a scratch directory, the run's settings, cleanups,
and the small helpers that build quiet roots and discarding exporters."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import alamos
from alamos.core.level import Level, parse_level
from alamos.core.records import Record

__all__ = [
    "ALAMOS_ENV",
    "BenchContext",
    "DiscardExporter",
    "collector_of",
    "quiet_root",
]

#: Environment variables that would change what alamos.new does; the harness
#: ignores them (see :meth:`BenchContext.isolate_env`).
ALAMOS_ENV = ("ALAMOS_DB", "ALAMOS_LEVEL", "ALAMOS_CONSOLE", "ALAMOS_SPOOL_DIR")

#: A huge interval: the collector's worker sleeps through the timed loops.
QUIET_SECONDS = 3600.0


class DiscardExporter:
    """A background exporter that drops every batch (counting them)."""

    synchronous = False

    def __init__(self, name: str = "discard", min_level: str = "bench") -> None:
        self.name = name
        self.min_level: Level = parse_level(min_level)
        self.exported = 0

    def export(self, records: Sequence[Record]) -> None:
        self.exported += len(records)

    def close(self) -> None:
        return None


@dataclass
class BenchContext:
    """Per-run state shared by the suites."""

    quick: bool = False
    gc_in_loop: bool = False
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="alamos-bench-")))
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    ignored_env: dict[str, str] = field(default_factory=dict)

    def isolate_env(self) -> None:
        """Drop ALAMOS_* settings from this process's environment, so that every
        root is configured only by the arguments the benchmarks pass."""
        for name in ALAMOS_ENV:
            value = os.environ.pop(name, None)
            if value is not None:
                self.ignored_env[name] = value

    def path(self, name: str) -> Path:
        return self.tmp / name

    def on_close(self, fn: Callable[[], None]) -> None:
        self.cleanups.append(fn)

    def close(self) -> None:
        for fn in reversed(self.cleanups):
            with contextlib.suppress(Exception):
                fn()
        self.cleanups.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)


#: ``compact_at`` of the quiet roots: past any calibrated repeat.
NO_COMPACTION = 1 << 40


def quiet_root(
    ctx: BenchContext,
    key: str,
    *,
    level: str = "prod",
    compact_at: int = NO_COMPACTION,
    **kwargs: Any,
) -> Any:
    """A root with a real background exporter (:class:`DiscardExporter`) whose
    worker sleeps while the timed loops run: spans are queued and stay queued
    until :meth:`flush` (called between repeats).  ``max_queue`` is large
    enough for any calibrated repeat; :func:`collector_of` gives the collector
    so callers can check ``dropped``.

    The hand-off stores items in their compact form once ``compact_at`` are
    queued (:mod:`alamos.core.handoff`, "Compaction"), which a live worker
    keeps the queue far below; a repeat queues up to a million, so by
    default the quiet roots never compact, and measure the common put.  The
    ``*_backlog`` cases pass ``compact_at=0``: every put compacts, as behind
    a backlog."""
    options: dict[str, Any] = {
        "level": level,
        "exporters": [DiscardExporter()],
        "console": False,
        "batch_size": 1 << 30,
        "flush_interval": QUIET_SECONDS,
        "metrics_interval": QUIET_SECONDS,
        "report_interval": QUIET_SECONDS,
        "max_queue": 4_000_000,
        "spool_dir": ctx.path(f"spool-{key}"),
        # No live statistics: their window check wakes the worker every few
        # seconds, and it would drain the queue during the timed loops (the
        # memory case caught it).  The e2e cases turn them on explicitly.
        "stats_interval": None,
    }
    options.update(kwargs)
    root = alamos.new(key, **options)
    ctx.on_close(lambda: root.close(timeout=30))
    collector_of(root).handoff.set_compact_at(compact_at)
    return root


def collector_of(root: Any) -> Any:
    """The root's collector (``None`` without background exporters)."""
    return root._root_state.collector
