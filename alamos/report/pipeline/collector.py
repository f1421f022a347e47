"""One collector per root: the worker behind the hand-off.

The instrumented threads put finished spans, log items and records into the
root's :class:`~alamos.core.handoff.Handoff` (``deque.append`` plus a length
check: no lock, no I/O, no record building).  The collector's worker wakes up
every ``flush_interval`` seconds, or as soon as a full batch is waiting,
drains the hand-off, turns each item into its record (``item.to_record``:
the collector knows nothing about spans or logs), and hands each exporter's
share to its :class:`~alamos.report.pipeline.delivery.Delivery`, which
retries, spools and replays.

Metric and report snapshots reach it through :class:`Poller` objects that
the tree registers: each is run every ``interval`` seconds, and the ones
marked ``at_flush`` (metrics) also as a step of every :meth:`Collector.flush`.
The collector never walks the tree.

The hand-off is bounded by ``max_queue`` items.  When it is full (the
producers outrun the worker), new items are dropped and counted, never
blocking the caller; the worker reports the count through ``on_drop``.
While an exporter is slow or down, the worker keeps draining into the
spool, so the queue only fills if the producers outrun the local disk.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from time import monotonic, sleep

import attrs

from alamos.core import process
from alamos.core.handoff import Handoff
from alamos.core.records import Record
from alamos.report.pipeline.delivery import Delivery

__all__ = ["Collector", "Poller"]

log = logging.getLogger("alamos.report")


@attrs.frozen(slots=True)
class Poller:
    """A source of records the worker asks for now and then (metric samples,
    report snapshots).  ``poll`` runs on the worker thread and must not raise
    for long: an exception is logged and the worker goes on."""

    name: str
    interval: float
    poll: Callable[[], Iterable[Record]]
    at_flush: bool = False
    """Also poll as a step of every flush (so a flush makes metrics durable)."""


class Collector:
    """The hand-off and worker of one root.  Built by the experiment package
    when the tree has background exporters."""

    def __init__(
        self,
        deliveries: Sequence[Delivery],
        *,
        service: str,
        node: str,
        batch_size: int = 512,
        flush_interval: float = 0.5,
        max_queue: int = 100_000,
        on_drop: Callable[[int, str], None] | None = None,
    ) -> None:
        if flush_interval <= 0:
            raise ValueError(f"flush_interval must be > 0 (got {flush_interval})")
        self.handoff = Handoff(max_queue, batch_size, self._start)
        self.deliveries = list(deliveries)
        #: Carried by every record built here (``node`` changes in a forked child).
        self.service = service
        self.node = node
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self._on_drop = on_drop
        self._pollers: list[Poller] = []
        self._reset()
        process.track(self, process.Hooks(after_fork_in_child=Collector._after_fork))

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closing = False
        self._dropped_seen = 0
        self._flush_req = 0
        self._flush_done = 0
        self.processed = 0

    def _after_fork(self) -> None:
        # The parent exports what it had queued; the child starts afresh and
        # starts its own worker on first use.
        self.handoff.reset()
        self._reset()

    def add_poller(self, poller: Poller) -> None:
        """Ask the worker to run ``poller`` (see :class:`Poller`)."""
        with self._cond:
            self._pollers.append(poller)

    # -- the worker -------------------------------------------------------------

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None or self._stopping:
                return
            thread = threading.Thread(
                target=self._run, name=f"alamos-collector-{self.service}", daemon=True
            )
            self._thread = thread
            thread.start()

    def _run(self) -> None:
        now = monotonic()
        due = {id(p): now + p.interval for p in self._pollers}
        while True:
            next_due = min(due.values(), default=now + self.flush_interval)
            self.handoff.wait(max(0.0, min(self.flush_interval, next_due - monotonic())))
            with self._cond:
                req = self._flush_req
                stopping = self._stopping
                pollers = list(self._pollers)
            try:
                self._drain()
                now = monotonic()
                flushing = req > self._flush_done
                for p in pollers:
                    if self._closing:  # close() brings the last snapshots itself
                        break
                    if now >= due.setdefault(id(p), now + p.interval) or (p.at_flush and flushing):
                        due[id(p)] = now + p.interval
                        self._submit(list(p.poll()))
                self._drain()
                self._report_drops()
            except Exception as exc:  # the worker must survive anything
                log.error("alamos: collector error (records kept flowing): %s", exc, exc_info=exc)
            with self._cond:
                self._flush_done = max(self._flush_done, req)
                self._cond.notify_all()
            if stopping and not len(self.handoff):
                return

    def _drain(self) -> None:
        """Export what is queued now, in batches of ``batch_size``.

        Bounded by what is queued when it starts (producers faster than the
        worker must not keep a flush waiting forever), except that the last
        batch is topped up to a full one from what arrived meanwhile: a
        small batch costs a commit of its own, as much as a full one.
        """
        handoff = self.handoff
        service, node = self.service, self.node
        size = self.batch_size
        left = len(handoff)
        while left > 0:
            items = handoff.take(size)
            left -= len(items)
            self._submit([item.to_record(service, node) for item in items])
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
        dropped = self.handoff.dropped
        new = dropped - self._dropped_seen
        if new > 0:
            self._dropped_seen = dropped
            reason = "closed" if self._stopping else "queue_full"
            if self._on_drop is not None:
                self._on_drop(new, reason)

    @property
    def dropped(self) -> int:
        return self.handoff.dropped

    @property
    def queued(self) -> int:
        return len(self.handoff)

    # -- flush and close ------------------------------------------------------------

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Return once everything put before the call, and a fresh snapshot of
        the ``at_flush`` pollers, is exported or spooled.  The steps: the
        worker drains the hand-off, polls the ``at_flush`` pollers, drains
        again; then each delivery flushes.  False if ``timeout`` ran out."""
        deadline = None if timeout is None else monotonic() + timeout
        with self._cond:
            if self._stopping and self._thread is None:
                return True
            self._flush_req += 1
            req = self._flush_req
        self._start()
        self.handoff.wake()
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
        """Submit ``final`` records (the last snapshots), flush, stop the
        worker and close the deliveries."""
        deadline = None if timeout is None else monotonic() + timeout
        self.handoff.close()  # items arriving from now on are dropped (counted)
        self._closing = True  # ``final`` holds the last snapshots: poll no more
        for record in final:
            self.handoff.force(record)
        ok = self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._pollers.clear()
        self.handoff.wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            left = None if deadline is None else max(0.1, deadline - monotonic())
            thread.join(left)
        self._thread = None
        self._report_drops()
        for delivery in self.deliveries:
            left = None if deadline is None else max(0.1, deadline - monotonic())
            delivery.close(left)
        process.untrack(self)
        return ok
