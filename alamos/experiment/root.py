"""State shared by every experiment of one tree.

There is no global state in alamos: everything a tree needs (its filter,
debug sessions, Prometheus registry, exporters and collector) hangs off one
:class:`RootState`, created by :func:`alamos.new` and reachable from every
experiment of the tree.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from alamos.core.exporter import Exporter
from alamos.core.level import Level
from alamos.experiment.filter import Filter
from alamos.experiment.session import DebugSession

if TYPE_CHECKING:
    from alamos.experiment.experiment import Experiment
    from alamos.report.pipeline.collector import Collector
    from alamos.trace.sampling import Sampler
    from alamos.trace.span import Span

__all__ = ["RootState"]


def _discard(item: object) -> None:
    return None


class RootState:
    """The shared state of one experiment tree."""

    def __init__(
        self,
        *,
        level_filter: Filter,
        service: str,
        node: str,
        sampler: Sampler,
        exporters: Sequence[Exporter],
        debug: bool,
        strict: bool,
        console: bool,
    ) -> None:
        self.filter = level_filter
        self.service = service
        self.node = node
        self.sampler = sampler
        self.debug = debug
        self.strict = strict
        self.console = console
        self.registry = CollectorRegistry(auto_describe=True)
        #: Every metric of the tree, enabled or not: only to catch name clashes.
        self.metric_names = CollectorRegistry(auto_describe=True)
        self.lock = threading.RLock()
        self.index: dict[str, Experiment] = {}
        self.sessions: list[DebugSession] = []
        self.exporters = list(exporters)
        self.sync_sinks = [e for e in self.exporters if getattr(e, "synchronous", False)]
        self.collector: Collector | None = None
        self.open_spans: dict[int, Span] = {}
        self.closed = False
        #: Called once at close (e.g. removing a loguru capture sink).
        self.closers: list[Callable[[], None]] = []
        self.emit: Callable[[Any], None] = _discard

    # -- filtering ------------------------------------------------------------

    def enabled(self, level: Level, path: str) -> bool:
        if self.filter.enabled(level, path):
            return True
        return any(level >= session.level and session.covers(path) for session in self.sessions)

    def session_for(self, path: str) -> str | None:
        """The id of the most recently started active session covering ``path``."""
        for session in reversed(self.sessions):
            if session.covers(path):
                return session.id
        return None

    def refresh(self) -> None:
        """Recompute every experiment's on/off booleans (filter or sessions changed)."""
        with self.lock:
            for exp in list(self.index.values()):
                exp._refresh()

    def set_filter(self, level_filter: Filter) -> None:
        with self.lock:
            self.filter = level_filter
            self.refresh()

    def add_session(self, session: DebugSession) -> None:
        with self.lock:
            self.sessions.append(session)
            self.refresh()

    def remove_session(self, session: DebugSession) -> None:
        with self.lock:
            with contextlib.suppress(ValueError):
                self.sessions.remove(session)
            self.refresh()

    # -- debug mode: spans that never ended -------------------------------------

    def track_open(self, span: Span) -> None:
        self.open_spans[id(span)] = span

    def untrack(self, span: Span) -> None:
        self.open_spans.pop(id(span), None)
