"""One collector per root: a bounded queue and a background worker.

The instrumented thread only ever does ``deque.append`` (plus a length
check) when a span ends or a log is emitted: no lock, no I/O, no record
building.  The worker wakes up every ``flush_interval`` seconds, or as soon
as the queue holds ``batch_size`` items (the producer signals once per batch,
not once per item: signalling a ``threading.Event`` takes its lock, which is
what made OpenTelemetry's BatchSpanProcessor contend), then drains the queue,
builds the records, and hands each exporter's share to its
:class:`~alamos.report.pipeline.delivery.Delivery`, which retries, spools and replays.

The queue is bounded by ``max_queue`` items.  When it is full (the producers
outrun the worker), new items are dropped and counted, never blocking the
caller; the worker logs a warning with the count and increments the root's
``alamos_dropped_records`` counter.  While an exporter is slow or down, the
worker keeps draining into the spool, so the queue only fills if the
producers outrun the local disk.
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from random import getrandbits
from time import monotonic, sleep, time_ns
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from loguru import logger as _loguru

from alamos.core.records import MetricRecord, Record, ReportRecord, new_log_record
from alamos.trace.span import Span, span_record

if TYPE_CHECKING:
    from alamos.experiment.experiment import Experiment
    from alamos.experiment.root import RootState
    from alamos.report.pipeline.delivery import Delivery

__all__ = ["Collector", "metric_records", "report_records", "to_record"]

_EMPTY: Any = MappingProxyType({})


def _new_id() -> str:
    return getrandbits(128).to_bytes(16, "big").hex()  # 32 hex digits, fast


def _hex(n: int, size: int) -> str:
    """``n`` as ``2 * size`` lower-case hex digits (more if it does not fit)."""
    try:
        return n.to_bytes(size, "big").hex()
    except OverflowError:
        return f"{n:0{2 * size}x}"


def to_record(item: Any, service: str, node: str) -> Record:
    """Turn a queued item (a finished Span, a log tuple, or a record) into a record."""
    if type(item) is Span:
        return span_record(item, service, node)
    if type(item) is tuple:
        _, ts, path, level, text, tid, sid, attrs, location, session = item
        return new_log_record(
            _new_id(),
            ts,
            path,
            level,
            text,
            None if tid is None else _hex(tid, 16),
            None if sid is None else _hex(sid, 8),
            MappingProxyType(attrs) if attrs else _EMPTY,
            location,
            service,
            node,
            session,
        )
    return item  # type: ignore[no-any-return]


def metric_records(root: Experiment, ts_ns: int | None = None) -> list[MetricRecord]:
    """One record per enabled metric and label set in the tree."""
    ts = time_ns() if ts_ns is None else ts_ns
    service, node = root.service, root.node
    out: list[MetricRecord] = []
    for exp in root.walk():
        for metric in exp.metrics:
            if not metric.enabled:
                continue
            for s in metric.samples():
                out.append(
                    MetricRecord(
                        _new_id(),
                        ts,
                        exp.path,
                        metric.name,
                        metric.kind,
                        MappingProxyType(dict(s["labels"])),
                        s["value"],
                        s["sum"],
                        s["count"],
                        MappingProxyType(s["buckets"]) if s["buckets"] is not None else None,
                        service,
                        node,
                        metric.level,
                    )
                )
    return out


def report_records(root: Experiment, ts_ns: int | None = None) -> list[ReportRecord]:
    ts = time_ns() if ts_ns is None else ts_ns
    return [
        ReportRecord(_new_id(), ts, path, key, report, root.service, root.node, level)
        for path, key, level, report in root.report_entries()
    ]


class Collector:
    """The queue and worker of one root.  Created by :func:`alamos.new` when
    the tree has background exporters."""

    def __init__(
        self,
        state: RootState,
        root_getter: Callable[[], Experiment | None],
        deliveries: Sequence[Delivery],
        *,
        batch_size: int = 512,
        flush_interval: float = 0.5,
        max_queue: int = 100_000,
        metrics_interval: float = 10.0,
        report_interval: float = 60.0,
        on_drop: Callable[[int, str], None] | None = None,
    ) -> None:
        if batch_size < 1 or max_queue < 1:
            raise ValueError("batch_size and max_queue must be at least 1")
        if flush_interval <= 0 or metrics_interval <= 0 or report_interval <= 0:
            raise ValueError("flush_interval, metrics_interval and report_interval must be > 0")
        self._state = state
        self._root = root_getter
        self.deliveries = list(deliveries)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.metrics_interval = metrics_interval
        self.report_interval = report_interval
        self._on_drop = on_drop
        self._reset()
        ref = weakref.ref(self)

        def after_fork() -> None:
            collector = ref()
            if collector is not None:
                collector._reset()

        os.register_at_fork(after_in_child=after_fork)

    def _reset(self) -> None:
        """Fresh queue and no worker (at creation, and in a forked child: the
        parent's queued items belong to the parent, which exports them)."""
        self._q: deque[Any] = deque()
        self._limit = self.max_queue
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closing = False
        self._dropped = itertools.count()
        self._dropped_seen = 0
        self._flush_req = 0
        self._flush_done = 0
        self.processed = 0

    # -- the hot path -------------------------------------------------------------

    def put(self, item: Any) -> None:
        """Queue one item.  Never blocks; drops (and counts) when full."""
        q = self._q
        n = len(q)
        if n >= self._limit:
            next(self._dropped)  # itertools.count: atomic under the GIL
            return
        q.append(item)
        if n == self.batch_size or self._thread is None:
            self._kick(n)

    def _kick(self, n: int) -> None:
        """After an append that made the queue ``n + 1`` long: wake the worker
        once per batch, or start it on first use.  (``Span.__exit__`` inlines
        ``put`` and calls this too.)"""
        if n == self.batch_size:
            self._wake.set()
        elif self._thread is None:
            self._start()

    # -- the worker -----------------------------------------------------------------

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None or self._stopping:
                return
            thread = threading.Thread(
                target=self._run, name=f"alamos-collector-{self._state.service}", daemon=True
            )
            self._thread = thread
            thread.start()

    def _run(self) -> None:
        now = monotonic()
        next_metrics = now + self.metrics_interval
        next_report = now + self.report_interval
        while True:
            if len(self._q) < self.batch_size:  # else a full batch is waiting: go on
                timeout = max(0.0, min(self.flush_interval, next_metrics - monotonic()))
                self._wake.wait(timeout)
            self._wake.clear()
            with self._cond:
                req = self._flush_req
                stopping = self._stopping
            try:
                self._drain()
                now = monotonic()
                root = None if self._closing else self._root()  # close() brings the last ones
                if root is not None and (req > self._flush_done or now >= next_metrics):
                    self._submit(list(metric_records(root)))
                    next_metrics = now + self.metrics_interval
                if root is not None and now >= next_report:
                    self._submit(list(report_records(root)))
                    next_report = now + self.report_interval
                self._drain()
                self._report_drops()
            except Exception as exc:  # the worker must survive anything
                _loguru.bind(alamos=True).opt(exception=exc).error(
                    "alamos collector error (records kept flowing): {}", exc
                )
            with self._cond:
                self._flush_done = max(self._flush_done, req)
                self._cond.notify_all()
            if stopping and not self._q:
                return

    def _drain(self) -> None:
        """Export what is queued now, in batches of ``batch_size``.

        Bounded by what is queued when it starts (producers faster than the
        worker must not keep a flush waiting forever), except that the last
        batch is topped up to a full one from what arrived meanwhile: a
        small batch costs a commit of its own, as much as a full one.
        """
        q = self._q
        pop = q.popleft
        state = self._state
        service, node = state.service, state.node
        size = self.batch_size
        left = len(q)
        while left > 0:
            n = min(size, len(q))
            left -= n
            self._submit([to_record(pop(), service, node) for _ in range(n)])
            # Let a delivery thread back in at once: it releases the GIL
            # around each SQLite call and would otherwise wait for it up to
            # the interpreter's switch interval (5 ms) while this loop runs.
            sleep(0)

    def _submit(self, records: list[Record]) -> None:
        if not records:
            return
        self.processed += len(records)
        for delivery in self.deliveries:
            floor = delivery.exporter.min_level
            share = [r for r in records if r.export_level >= floor]
            if share:
                delivery.submit(share)

    def _report_drops(self) -> None:
        # itertools.count has no read: copy() is not public, so read via repr.
        dropped = _count_value(self._dropped)
        new = dropped - self._dropped_seen
        if new > 0:
            self._dropped_seen = dropped
            reason = "closed" if self._stopping else "queue_full"
            if self._on_drop is not None:
                self._on_drop(new, reason)

    @property
    def dropped(self) -> int:
        return _count_value(self._dropped)

    @property
    def queued(self) -> int:
        return len(self._q)

    # -- flush and close ------------------------------------------------------------

    def flush(self, timeout: float | None = 10.0) -> bool:
        deadline = None if timeout is None else monotonic() + timeout
        with self._cond:
            if self._stopping and self._thread is None:
                return True
            self._flush_req += 1
            req = self._flush_req
        self._start()
        self._wake.set()
        with self._cond:
            while self._flush_done < req:
                left = None if deadline is None else deadline - monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        ok = True
        for delivery in self.deliveries:
            left = None if deadline is None else max(0.0, deadline - monotonic())
            ok = delivery.flush(left) and ok
        return ok

    def close(self, timeout: float | None = 10.0, final: Sequence[Record] = ()) -> bool:
        """Submit ``final`` records, flush, stop the worker and close deliveries."""
        deadline = None if timeout is None else monotonic() + timeout
        self._limit = 0  # items arriving from now on are dropped (counted)
        self._closing = True  # ``final`` holds the last snapshots: take no more
        for record in final:
            self._q.append(record)
        ok = self.flush(timeout)
        with self._cond:
            self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            left = None if deadline is None else max(0.1, deadline - monotonic())
            thread.join(left)
        self._thread = None
        self._report_drops()
        for delivery in self.deliveries:
            left = None if deadline is None else max(0.1, deadline - monotonic())
            delivery.close(left)
        return ok


def _count_value(counter: itertools.count[int]) -> int:
    text = repr(counter)  # "count(5)"
    return int(text[text.index("(") + 1 : -1])
