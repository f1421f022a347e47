"""State shared by every experiment of one tree, and closing the tree.

Everything a tree needs (its filter, debug sessions, Prometheus registries,
exporters, the hand-off to its collector, the spans debug mode tracks) hangs
off one :class:`RootState`, created by :func:`alamos.new` and reachable from
every experiment of the tree.  The few things that are per process by nature
(fork and exit hooks) live in :mod:`alamos.core.process`, where the root
registers itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from alamos.core import process
from alamos.core.errors import UnendedSpansError
from alamos.core.exporter import Exporter
from alamos.core.handoff import Put
from alamos.core.level import Level
from alamos.core.records import Record
from alamos.experiment.filter import Filter
from alamos.experiment.session import DebugSession
from alamos.experiment.sinks import discard, make_put
from alamos.report.pipeline.collector import Collector
from alamos.report.pipeline.stats import CloseResult
from alamos.trace.sampling import Sampler
from alamos.trace.span import Span

if TYPE_CHECKING:
    from alamos.experiment.experiment import Experiment

__all__ = ["OpenSpans", "RootState", "default_node"]

log = logging.getLogger("alamos")

#: How long the exit hooks (atexit, and multiprocessing's finalizers in a
#: child) give close().
EXIT_TIMEOUT = 5.0
#: multiprocessing runs finalizers of higher priority first; its own
#: (a Pool's: 15, a Queue's feeder thread: -5 and None) bracket ours, so the
#: tree is closed before a Queue's feeder thread is joined.
MP_EXIT_PRIORITY = 10
#: The share of close's timeout given to the last snapshots (a report
#: provider is user code: it must not take all of it).
_SNAPSHOT_SHARE = 0.25


def default_node() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class OpenSpans:
    """Debug mode's record of spans started and not ended yet (``root.open_spans``)."""

    __slots__ = ("_spans",)

    def __init__(self) -> None:
        self._spans: dict[int, Span] = {}

    def add(self, span: Span) -> None:
        self._spans[id(span)] = span

    def discard(self, span: Span) -> None:
        """Forget ``span`` (it ended, or a test reported it already)."""
        self._spans.pop(id(span), None)

    def snapshot(self) -> list[Span]:
        """The spans open now, oldest first."""
        # dict.copy() is atomic under the GIL: spans may end meanwhile.
        return sorted(self._spans.copy().values(), key=lambda s: s.start_ns)

    def __len__(self) -> int:
        return len(self._spans)


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
        #: The synchronous exporters: those given to ``alamos.new`` (closed
        #: with the tree), then those added while it runs (:meth:`add_sink`,
        #: not closed: they belong to whoever attached them).
        self.sync_sinks: tuple[Exporter, ...] = tuple(
            e for e in self.exporters if getattr(e, "synchronous", False)
        )
        self._own_sinks = self.sync_sinks
        self.collector: Collector | None = None
        self.open_spans = OpenSpans()
        self.closed = False
        #: Called once at close (e.g. removing a loguru capture sink).
        self.closers: list[Callable[[], None]] = []
        #: Where instruments hand finished spans, log items and records
        #: (:func:`~alamos.experiment.sinks.make_put`).
        self.put: Put = discard
        #: The last metric and report snapshots, taken at close.
        self.final_snapshot: Callable[[], list[Record]] = list
        #: ``alamos_dropped_records`` (a Counter), with background exporters.
        self.drop_counter: Any = None
        #: Set once close() has begun; ``close_result`` once it has returned.
        self.closing: threading.Event | None = None
        self.close_result: CloseResult | None = None
        self._node_given = True

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
        """Recompute every experiment's scope (filter or sessions changed)."""
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

    # -- synchronous exporters added while the tree runs ------------------------

    def add_sink(self, sink: Exporter) -> None:
        """Hand every record made from now on to ``sink`` as well, at once, in
        the recording thread.  ``sink`` must be synchronous (an in-memory
        exporter: a background one needs a delivery, which only ``alamos.new``
        builds).  Every instrument of the tree gets the new ``put`` with its
        scope (see :mod:`alamos.core.scope`)."""
        if not getattr(sink, "synchronous", False):
            raise ValueError(
                f"{sink!r} is a background exporter: only a synchronous exporter (such as "
                "alamos.testing.Recorder) can be added to a running tree; pass background "
                "exporters to alamos.new(exporters=[...])"
            )
        with self.lock:
            if any(s is sink for s in self.sync_sinks):
                return
            self._set_sinks((*self.sync_sinks, sink))

    def remove_sink(self, sink: Exporter) -> bool:
        """Stop handing records to ``sink`` (added by :meth:`add_sink`); False
        if it was not added.  ``sink`` is not closed."""
        with self.lock:
            if not any(s is sink for s in self.added_sinks):
                return False
            self._set_sinks(tuple(s for s in self.sync_sinks if s is not sink))
            return True

    @property
    def added_sinks(self) -> tuple[Exporter, ...]:
        """The synchronous exporters added by :meth:`add_sink`."""
        return self.sync_sinks[len(self._own_sinks) :]

    def _set_sinks(self, sinks: tuple[Exporter, ...]) -> None:
        self.sync_sinks = sinks
        self.put = make_put(self, sinks)
        self.refresh()

    def add_closer(self, closer: Callable[[], None]) -> bool:
        """Call ``closer`` when the tree closes; False (and not kept) if it is
        closed already."""
        with self.lock:
            if self.closed:
                return False
            self.closers.append(closer)
            return True

    # -- process hooks ----------------------------------------------------------

    def track_process(self, node_given: bool) -> None:
        """Register the fork and exit hooks of this tree (once, at creation)."""
        self._node_given = node_given
        process.track(
            self,
            process.Hooks(after_fork_in_child=RootState._after_fork, at_exit=RootState._at_exit),
        )
        mp = sys.modules.get("multiprocessing")
        if mp is not None and mp.parent_process() is not None:
            self._add_mp_finalizer()  # made inside a multiprocessing child

    def _after_fork(self) -> None:
        if not self._node_given:
            self.node = default_node()
            if self.collector is not None:
                self.collector.node = self.node
        # A multiprocessing child ends with os._exit: atexit never runs there,
        # so the tree would never be flushed.  multiprocessing runs its own
        # finalizers instead, but it clears them right after the fork and then
        # calls the after-fork callbacks registered with it: register there.
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is not None:
            mp_util.register_after_fork(self, RootState._add_mp_finalizer)

    def _add_mp_finalizer(self) -> None:
        """Close this tree when a multiprocessing child process exits."""
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is not None and not self.closed:
            mp_util.Finalize(
                self, _close_at_exit, args=(weakref.ref(self),), exitpriority=MP_EXIT_PRIORITY
            )

    def _at_exit(self) -> None:
        _close_at_exit(weakref.ref(self))

    # -- close ----------------------------------------------------------------------

    def close(self, timeout: float | None) -> CloseResult:
        """Close the tree: take the last metric and report snapshots, report
        unended spans (debug mode), flush, stop the worker and close the
        exporters.  Idempotent (a second call returns the first one's result,
        waiting for it within its own ``timeout``).  Returns within
        ``timeout``: snapshots run on the collector's worker, and every wait
        is bounded (see :meth:`alamos.report.pipeline.collector.Collector.close`)."""
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        with self.lock:
            closing = self.closing
            if closing is None:
                self.closing = threading.Event()
        if closing is not None:  # closed, or closing in another thread
            closing.wait(timeout)
            return self.close_result or self._result_so_far()
        try:
            return self._close(start, deadline)
        finally:
            assert self.closing is not None
            self.closing.set()

    def _close(self, start: float, deadline: float | None) -> CloseResult:
        collector = self.collector
        if collector is not None:
            # The last snapshots, taken on the worker while the tree is still
            # open (closed metrics take no samples); bounded by a share of the
            # timeout.
            share = None if deadline is None else (deadline - start) * _SNAPSHOT_SHARE
            collector.poll_once(self._final_records, share)
            with self.lock:
                unended = self.open_spans.snapshot()
                self.closed = True
                self.refresh()  # everything is a no-op from now on
            final: list[Record] = []
        else:
            with self.lock:
                final = self.final_snapshot()
                unended = self.open_spans.snapshot()
                self.closed = True
                self.refresh()  # everything is a no-op from now on
        for closer in self.closers:
            try:
                closer()
            except Exception:
                log.exception("alamos: a close hook failed")
        self.closers.clear()
        self._to_sync_sinks(final)
        result = CloseResult()
        if collector is not None:
            result = collector.close(None if deadline is None else deadline - time.monotonic())
        for exporter in self._own_sinks:
            try:
                exporter.close()
            except Exception:
                log.exception("alamos: closing exporter %r failed", exporter)
        process.untrack(self)
        self.final_snapshot = list
        self.close_result = result
        if self.debug and unended:
            self._report_unended(unended)
        return result

    def _final_records(self) -> list[Record]:
        """The last snapshots (run on the collector's worker): they also go
        to the synchronous exporters."""
        records = self.final_snapshot()
        self._to_sync_sinks(records)
        return records

    def _to_sync_sinks(self, records: list[Record]) -> None:
        for record in records:
            for sink in self.sync_sinks:
                if record.export_level >= sink.min_level:
                    sink.export((record,))

    def _result_so_far(self) -> CloseResult:
        """For a close that waited for another one still running."""
        collector = self.collector
        if collector is None:
            return CloseResult()
        return CloseResult(pending=collector.queued, timed_out=True)

    def _report_unended(self, unended: list[Span]) -> None:
        lines = [f"  {s.path}:{s.name} started at {s.location}" for s in unended]
        message = f"{len(unended)} span(s) started and never ended:\n" + "\n".join(lines)
        log.warning("alamos debug mode: %s", message)
        # Also a ResourceWarning, as Python reports an unclosed file: a span
        # never ended is a bug in the calling code, and pytest shows it.
        warnings.warn(message, ResourceWarning, stacklevel=4)
        if self.strict:
            raise UnendedSpansError(message, unended)


def _close_at_exit(ref: weakref.ReferenceType[RootState]) -> None:
    """The exit hooks: close the tree if it is still alive (interpreter
    shutdown, or a multiprocessing child ending: best effort, bounded)."""
    state = ref()
    if state is not None:
        with contextlib.suppress(Exception):
            state.close(timeout=EXIT_TIMEOUT)
