"""Creating and closing experiment trees: :func:`alamos.new`.

Configuration is injected here, once per tree, and nowhere else: there is
no global provider to patch between tests.  The only process-wide things are
an ``atexit`` hook that flushes the roots still open, and fork handlers that
give a child process its own worker.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import warnings
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loguru import logger as _loguru

from alamos.core.errors import UnendedSpansError
from alamos.core.exporter import Exporter
from alamos.core.records import Record
from alamos.experiment.experiment import Experiment
from alamos.experiment.filter import coerce_filter
from alamos.experiment.keys import validate_key
from alamos.experiment.root import RootState
from alamos.report.pipeline.collector import Collector, metric_records, report_records, to_record
from alamos.trace.sampling import coerce_sampler

__all__ = ["UnendedSpansError", "close_tree", "new"]

ENV_DB = "ALAMOS_DB"
ENV_SPOOL = "ALAMOS_SPOOL_DIR"
ENV_CONSOLE = "ALAMOS_CONSOLE"

_OPEN: weakref.WeakSet[Experiment] = weakref.WeakSet()


def default_node() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def default_spool_dir() -> Path:
    env = os.environ.get(ENV_SPOOL)
    if env:
        return Path(env)
    return Path.cwd() / ".alamos" / "spool"


def _console_default() -> bool:
    value = os.environ.get(ENV_CONSOLE, "").strip().lower()
    return value not in ("0", "false", "no", "off")


def new(
    key: str,
    *,
    level: object = None,
    service: str | None = None,
    node: str | None = None,
    sampler: object = None,
    exporters: Sequence[Exporter] = (),
    db: str | None = None,
    debug: bool = False,
    strict: bool = False,
    console: bool | None = None,
    batch_size: int = 512,
    flush_interval: float = 0.5,
    max_queue: int = 100_000,
    metrics_interval: float = 10.0,
    report_interval: float = 60.0,
    spool_dir: str | os.PathLike[str] | None = None,
) -> Experiment:
    """Create the root of a new experiment tree.  See the README for every option."""
    validate_key(key)
    level_filter = coerce_filter(level)
    db_url = db if db is not None else (os.environ.get(ENV_DB) or None)
    all_exporters: list[Exporter] = list(exporters)
    for exporter in all_exporters:
        if not isinstance(exporter, Exporter):
            raise TypeError(
                f"{exporter!r} is not an exporter: it needs min_level, name, synchronous, "
                "export(records) and close() (see alamos.core.exporter.Exporter)"
            )
    if db_url:
        from alamos.report.sql import SQLExporter

        # The level filter already decides what is recorded; the shorthand
        # stores all of it (min_level="bench").  Pass exporters= for more control.
        all_exporters.append(SQLExporter(db_url, min_level="bench"))
    state = RootState(
        level_filter=level_filter,
        service=service if service is not None else key,
        node=node if node is not None else default_node(),
        sampler=coerce_sampler(sampler),
        exporters=all_exporters,
        debug=debug,
        strict=strict,
        console=_console_default() if console is None else console,
    )
    node_given = node is not None
    root_ref: Callable[[], Experiment | None] = lambda: None  # noqa: E731
    background = [e for e in all_exporters if not getattr(e, "synchronous", False)]
    dropped_counter: list[Any] = []

    def on_drop(count: int, reason: str) -> None:
        # The collector reports "queue_full" / "closed"; a delivery reports a
        # free-text reason, which is logged but kept out of the metric label
        # (label values must have a small, fixed set of values).
        label = reason if reason in ("queue_full", "closed") else "exporter_and_spool_failed"
        _loguru.bind(alamos=True).warning(
            "alamos dropped {} records ({}): see the README's 'What can be lost'", count, reason
        )
        if dropped_counter:
            dropped_counter[0].labels(label).inc(count)

    if background:
        from alamos.report.pipeline.delivery import Delivery

        spool_base = Path(spool_dir) if spool_dir is not None else default_spool_dir()
        # The hand-off to each delivery holds at most about max_queue records
        # (and never more than 64 batches): past that, batches go to the spool,
        # so memory stays bounded by max_queue even with a stalled exporter.
        pending = max(1, min(64, -(-max_queue // max(1, batch_size))))
        deliveries = [
            Delivery(
                e,
                spool_dir=spool_base / key / e.name,
                on_drop=on_drop,
                max_pending_batches=pending,
            )
            for e in background
        ]
        state.collector = Collector(
            state,
            lambda: root_ref(),
            deliveries,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_queue=max_queue,
            metrics_interval=metrics_interval,
            report_interval=report_interval,
            on_drop=on_drop,
        )
    state.emit = _make_emit(state)
    root = Experiment(state, key, None)
    root_ref = weakref.ref(root)
    state.index[root.path] = root
    root._refresh()
    root._announce()
    if background:  # only a queue or a spool can drop records
        dropped_counter.append(
            root.metrics.counter(
                "alamos_dropped_records",
                "Records alamos could not keep (queue full, or database and spool both failed)",
                labelnames=["reason"],
            )
        )
    if not node_given:
        # A weak reference: fork hooks live as long as the process, and must
        # not keep every tree (and its recorders) alive.
        state_ref = weakref.ref(state)

        def after_fork() -> None:
            forked = state_ref()
            if forked is not None:
                forked.node = default_node()

        os.register_at_fork(after_in_child=after_fork)
    _OPEN.add(root)
    return root


def _make_emit(state: RootState) -> Callable[[Any], None]:
    collector = state.collector
    sinks = state.sync_sinks
    if not sinks:
        if collector is None:
            return lambda item: None
        return collector.put

    def emit(item: Any) -> None:
        record = to_record(item, state.service, state.node)
        level = record.export_level
        for sink in sinks:
            if level >= sink.min_level:
                sink.export((record,))
        if collector is not None:
            collector.put(record)

    return emit


def close_tree(state: RootState, root: Experiment, timeout: float | None) -> None:
    """Close a tree: report unended spans (debug mode), export final metrics and
    reports, flush, stop the worker and close the exporters.  Idempotent."""
    with state.lock:
        if state.closed:
            return
        final: list[Record] = [*metric_records(root), *report_records(root)]
        unended = list(state.open_spans.values())
        state.closed = True
        state.refresh()  # everything is a no-op from now on
    for closer in state.closers:
        try:
            closer()
        except Exception as exc:
            warnings.warn(f"alamos: a close hook failed: {exc}", stacklevel=2)
    for record in final:
        for sink in state.sync_sinks:
            if record.export_level >= sink.min_level:
                sink.export((record,))
    if state.collector is not None:
        state.collector.close(timeout, final)
    for exporter in state.exporters:
        if getattr(exporter, "synchronous", False):
            try:
                exporter.close()
            except Exception as exc:
                warnings.warn(f"alamos: closing exporter {exporter!r} failed: {exc}", stacklevel=2)
    _OPEN.discard(root)
    if state.debug and unended:
        lines = [f"  {s.path}:{s.name} started at {s.location}" for s in unended]
        message = f"{len(unended)} span(s) started and never ended:\n" + "\n".join(lines)
        _loguru.bind(alamos=True).warning("alamos debug mode: {}", message)
        warnings.warn(message, ResourceWarning, stacklevel=3)
        if state.strict:
            raise UnendedSpansError(message, unended)


@atexit.register
def _close_open_roots() -> None:
    for root in list(_OPEN):
        with contextlib.suppress(Exception):  # interpreter shutdown: best effort
            root.close(timeout=5.0)
