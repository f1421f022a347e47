"""The experiment tree.

An experiment is one node of the tree, named by a dotted path
(``server.cesium``).  It owns span factories (``exp.trace``), a logger
(``exp.log``), metrics (``exp.metrics``) and attached reports, all filtered by
level.  ``root.sub("cesium")`` creates (or returns) a child.
"""

from __future__ import annotations

from collections.abc import Mapping
from time import time_ns
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from alamos.core.exporter import Exporter
from alamos.core.level import Level, LevelLike, parse_level
from alamos.core.records import ExperimentRecord
from alamos.core.scope import LiveScope, Scope
from alamos.experiment.filter import coerce_filter
from alamos.experiment.keys import validate_key, validate_path
from alamos.experiment.root import OpenSpans, RootState
from alamos.experiment.session import DebugSession
from alamos.log.logger import Logger
from alamos.metrics.factory import Metrics, NoopMetrics
from alamos.report.pipeline.stats import CloseResult, PipelineStats, pipeline_stats
from alamos.report.providers import Provider, call_provider
from alamos.trace.tracer import Tracer, check_ignore

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["Experiment"]


class Experiment:
    """One node of an experiment tree.  Create a tree with :func:`alamos.new`."""

    key: str
    path: str
    parent: Experiment | None

    def __init__(self, state: RootState, key: str, parent: Experiment | None) -> None:
        self._root_state = state
        self.key = key
        self.parent = parent
        self.path = key if parent is None else f"{parent.path}.{key}"
        self.root: Experiment = self if parent is None else parent.root
        self._children: dict[str, Experiment] = {}
        self._reports: dict[str, tuple[Any, Level]] = {}
        self._scope = LiveScope(Scope(self.path))
        tracked = state.open_spans if state.debug else None
        self.trace = Tracer(
            self._scope,
            state.put,
            state.sampler,
            None if tracked is None else tracked.add,
            None if tracked is None else tracked.discard,
        )
        self.log = Logger(self._scope, state.put, state.console, state.add_closer)
        self.metrics: Metrics | NoopMetrics = Metrics(
            self._scope, state.registry, state.metric_names, state.add_closer
        )
        self.created_ns = time_ns()

    # -- the tree -------------------------------------------------------------

    def sub(self, key: str) -> Experiment:
        """The child called ``key``, created on first use (thread-safe)."""
        try:
            child = self._children.get(key)
        except TypeError:  # unhashable: not a key, validate_key says why
            child = None
        if child is not None:
            return child
        validate_key(key, under=self.path)
        state = self._root_state
        with state.lock:
            child = self._children.get(key)
            if child is None:
                child = Experiment(state, key, self)
                child.trace.set_ignore(self.trace.ignore)
                child._refresh()
                self._children[key] = child
                state.index[child.path] = child
                if not state.closed:
                    child._announce()
        return child

    def find(self, path: str) -> Experiment | None:
        """The experiment at the full dotted ``path``, or ``None``."""
        if not isinstance(path, str):
            return None
        return self._root_state.index.get(path)

    @property
    def children(self) -> Mapping[str, Experiment]:
        """A read-only view of the children, by key."""
        return MappingProxyType(self._children)

    @property
    def registry(self) -> CollectorRegistry:
        """The Prometheus registry shared by the whole tree."""
        return self._root_state.registry

    @property
    def service(self) -> str:
        return self._root_state.service

    @property
    def node(self) -> str:
        return self._root_state.node

    @property
    def session_id(self) -> str | None:
        """The id of the debug session now covering this experiment, if any."""
        return self._scope.scope.session_id

    @property
    def open_spans(self) -> OpenSpans:
        """Spans of the tree started and not ended yet (tracked in debug mode
        only: ``alamos.new(..., debug=True)``)."""
        return self._root_state.open_spans

    def walk(self) -> list[Experiment]:
        """This experiment and all its descendants, parents first."""
        out: list[Experiment] = [self]
        i = 0
        while i < len(out):
            out.extend(out[i]._children.values())
            i += 1
        return out

    def _announce(self) -> None:
        state = self._root_state
        state.put(
            ExperimentRecord(
                self.path,
                None if self.parent is None else self.parent.path,
                self.key,
                state.service,
                state.node,
                self.created_ns,
            )
        )

    # -- levels ---------------------------------------------------------------

    def _enabled(self, level: Level) -> bool:
        # The scope _refresh() stored: the one answer for spans, logs,
        # metrics and reports, closed tree included.
        return self._scope.scope.enabled(level)

    def enabled(self, level: LevelLike) -> bool:
        """Whether records of ``level`` made here are kept right now (never
        once the tree is closed)."""
        return self._enabled(parse_level(level))

    def _refresh(self) -> None:
        state = self._root_state
        if state.closed:
            bench = debug = prod = False
        else:
            bench = state.enabled(Level.BENCH, self.path)
            debug = state.enabled(Level.DEBUG, self.path)
            prod = state.enabled(Level.PROD, self.path)
        self._scope.set(
            Scope(self.path, bench, debug, prod, state.session_for(self.path), state.put)
        )

    def set_level(self, spec: object) -> None:
        """Replace the tree's level filter at run time (a level, a spec string
        like ``"prod,server.cesium=debug"``, or a callable)."""
        self._root_state.set_filter(coerce_filter(spec))

    def debug_session(self, path: str | None = None, level: LevelLike = "debug") -> DebugSession:
        """Lower the threshold of the subtree at ``path`` (default: this
        experiment) to ``level`` while the returned session is open."""
        target = self.path if path is None else path
        try:
            validate_path(target)
        except ValueError as exc:
            raise ValueError(f"invalid debug session path: {exc}") from None
        return DebugSession(self._root_state, target, parse_level(level))

    # -- expected exceptions ----------------------------------------------------

    def ignore(self, *types: type[BaseException]) -> None:
        """Treat exceptions of ``types`` leaving a span of this experiment or
        of its subtree (children made later included) as *expected*: recorded
        as an ``exception`` event (``expected=True``), the span not marked as
        an error.  Adds to the types given before; ``alamos.new(...,
        ignore=...)`` does it for the whole tree, the span factories'
        ``ignore=`` for one span."""
        check_ignore(types)
        with self._root_state.lock:
            for exp in self.walk():
                known = exp.trace.ignore
                exp.trace.set_ignore(known + tuple(t for t in types if t not in known))

    # -- reports --------------------------------------------------------------

    def attach(self, key: str, provider: Provider, level: LevelLike = "prod") -> None:
        """Attach a report provider: a callable returning a dict, or an object
        with ``.report()``.  Attaching the same key again replaces it."""
        validate_key(key)
        if not callable(provider) and not callable(getattr(provider, "report", None)):
            raise TypeError(
                f"report provider for {key!r} must be a callable returning a dict "
                f"or an object with a .report() method, got {type(provider).__name__}"
            )
        self._reports[key] = (provider, parse_level(level))

    def detach(self, key: str) -> None:
        self._reports.pop(key, None)

    def report(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot of this subtree, filtered by level:
        ``{"key", "path", "reports", "metrics", "children"}``."""
        reports = {
            key: call_provider(provider)
            for key, (provider, level) in list(self._reports.items())
            if self._enabled(level)
        }
        metrics = {m.name: m.summary() for m in self.metrics if m.enabled}
        children = {key: child.report() for key, child in list(self._children.items())}
        return {
            "key": self.key,
            "path": self.path,
            "reports": reports,
            "metrics": metrics,
            "children": children,
        }

    def report_entries(self) -> list[tuple[str, str, Level, dict[str, Any]]]:
        """``(path, key, level, report)`` for every enabled provider of the subtree."""
        out = []
        for exp in self.walk():
            for key, (provider, level) in list(exp._reports.items()):
                if exp._enabled(level):
                    out.append((exp.path, key, level, call_provider(provider)))
        return out

    # -- lifecycle --------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._root_state.closed

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Return once everything recorded before the call is durable (in the
        database or the spool).  ``False`` if ``timeout`` ran out first, or if
        records were dropped since the last flush (:meth:`stats` says which).
        Always returns within ``timeout``: what a stalled exporter has not
        taken by half of it is spooled instead."""
        collector = self._root_state.collector
        if collector is None:
            return True
        return collector.flush(timeout)

    def stats(self) -> PipelineStats:
        """Counters of the tree's export pipeline in this process: queued,
        exported, spooled, replayed, dropped, torn spool lines skipped (see
        :class:`alamos.report.pipeline.stats.PipelineStats`).  Readable after close."""
        return pipeline_stats(self._root_state.collector)

    def close(self, timeout: float | None = 10.0) -> CloseResult:
        """Flush, stop the background worker and close the exporters (trying a
        failing exporter once more, and replaying the spool if it works).
        Closing twice is harmless.  Closing any experiment closes its whole
        tree.

        Returns within ``timeout`` (``None``: no limit).  What is still in
        memory when it runs out is dropped and counted, never lost silently:
        the :class:`~alamos.report.pipeline.stats.CloseResult` says how many
        records are durable (stored or spooled), dropped or still pending."""
        return self._root_state.close(timeout)

    # -- exporters added while the tree runs -------------------------------------

    @property
    def exporters(self) -> tuple[Exporter, ...]:
        """The tree's exporters: those it was made with, then the synchronous
        ones added by :meth:`add_exporter`."""
        state = self._root_state
        return (*state.exporters, *state.added_sinks)

    def add_exporter(self, exporter: Exporter) -> None:
        """Hand every record the tree makes from now on to ``exporter`` too,
        at once, in the recording thread (the whole tree, like :meth:`close`).
        Only a synchronous exporter (in memory, ``synchronous = True``, such as
        :class:`alamos.testing.Recorder`) can be added to a running tree;
        :meth:`alamos.testing.Recorder.attach` is the way to use it in tests.
        Adding one twice is harmless.  The tree does not close it."""
        self._root_state.add_sink(exporter)

    def remove_exporter(self, exporter: Exporter) -> bool:
        """Undo :meth:`add_exporter`; False if ``exporter`` was not added."""
        return self._root_state.remove_sink(exporter)

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Experiment:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await anyio.to_thread.run_sync(self.close)

    def __repr__(self) -> str:
        return f"<Experiment {self.path}>"
