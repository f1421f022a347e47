"""One collector per root: the worker behind the hand-off.

The instrumented threads put finished spans, log items and records into the
root's :class:`~alamos.core.handoff.Handoff` (``deque.append`` plus a length
check: no lock, no I/O, no record building).  The collector's worker wakes up
every ``flush_interval`` seconds, or as soon as a full batch is waiting,
drains the hand-off, turns each item into its record (``item.to_record``,
or the converter of its compact form behind a backlog: ``Handoff.records``;
the collector knows nothing about spans or logs), and hands each exporter's
share to its :class:`~alamos.report.pipeline.delivery.Delivery`, which
retries, spools and replays.

Metric and report snapshots reach it through :class:`Poller` objects that
the tree registers: each is run every ``interval`` seconds, and the ones
marked ``at_flush`` (metrics) also as a step of every :meth:`Collector.flush`;
the last snapshots at close through :meth:`Collector.poll_once`.  Pollers run
on the worker, never on a caller's thread, so a slow one (a report provider
is user code) cannot make ``flush`` or ``close`` outlast its timeout.  Every
list of records, a snapshot included, is handed on in batches of at most
``batch_size``.  The collector never walks the tree.

The hand-off is bounded by ``max_queue`` items.  When it is full (the
producers outrun the worker), new items are dropped and counted, never
blocking the caller; the worker reports the count through ``on_drop``.
While an exporter is slow or down, the worker keeps draining into the
spool, so the queue fills when the producers outrun the worker itself
(building records and spooling them costs it CPU, about 70,000 records a
second) or the local disk.

:meth:`Collector.close` returns within its timeout: the worker gets half of
it to empty the queue, the deliveries the rest (to store or spool what they
hold); what is still in memory at the deadline is dropped, counted
(``close_timeout``) and reported in a warning and in the
:class:`~alamos.report.pipeline.stats.CloseResult`, never lost silently.
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
from alamos.report.pipeline.stats import CloseResult, pipeline_stats

__all__ = ["Collector", "Observer", "Poller"]

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


@attrs.frozen(slots=True)
class Observer:
    """Code that sees every record the worker builds from the hand-off
    (finished spans, log lines, events), on the worker thread, before they
    are delivered: the live statistics and recording rules.  It never runs on
    an instrumented thread, so it costs the application's threads nothing but
    the worker's share of the CPU.  ``observe`` gets each batch as a list it
    must not change; an exception is logged and the records are delivered
    anyway.  Snapshots from pollers are not observed."""

    name: str
    observe: Callable[[Sequence[Record]], None]
    at_close: Callable[[], Iterable[Record]] | None = None
    """Records the observer still holds (the statistics of the last window),
    asked for once by the worker after its last drain at close, when no
    record can arrive any more, and delivered (not observed)."""


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
        self._observers: tuple[Observer, ...] = ()
        self._reset()
        process.track(self, process.Hooks(after_fork_in_child=Collector._after_fork))

    def _reset(self) -> None:
        self._cond = threading.Condition()
        #: Held by whoever takes items out of the hand-off (the worker, or
        #: close once the worker ran out of time), so that they never race.
        self._take_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closing = False
        self._abandoned = False  # close ran out of time: the worker takes no more
        self._dropped_seen = 0
        self._flush_req = 0
        self._flush_done = 0
        self._once: list[Callable[[], Iterable[Record]]] = []
        self._once_req = 0
        self._once_done = 0
        self._in_hand = 0  # records the worker took and has not handed on yet
        self.dropped_at_close = 0
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

    def add_observer(self, observer: Observer) -> None:
        """Show every record built from the hand-off to ``observer`` (see :class:`Observer`)."""
        with self._cond:
            self._observers = (*self._observers, observer)

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
                # close() takes the last snapshots itself (poll_once): poll no more.
                pollers = [] if self._closing else list(self._pollers)
                once, self._once = self._once, []
                once_req = self._once_req
            try:
                self._drain()
                for poll in once:
                    self._poll("final snapshot", poll)
                now = monotonic()
                flushing = req > self._flush_done
                for p in pollers:
                    if now >= due.setdefault(id(p), now + p.interval) or (p.at_flush and flushing):
                        due[id(p)] = now + p.interval
                        self._poll(p.name, p.poll)
                self._drain()
                self._report_drops()
            except Exception as exc:  # the worker must survive anything
                log.error("alamos: collector error (records kept flowing): %s", exc, exc_info=exc)
            with self._cond:
                self._flush_done = max(self._flush_done, req)
                self._once_done = max(self._once_done, once_req)
                self._cond.notify_all()
            if self._abandoned:
                self._discard_abandoned()
                return
            if stopping and not len(self.handoff):
                for observer in self._observers:
                    if observer.at_close is not None:
                        self._poll(f"{observer.name} at close", observer.at_close)
                return

    def _poll(self, name: str, poll: Callable[[], Iterable[Record]]) -> None:
        try:
            records = list(poll())
        except Exception as exc:  # a snapshot failing must not stop the others
            log.error("alamos: %s poller failed: %s", name, exc, exc_info=exc)
            return
        self._submit(records)

    def _drain(self) -> None:
        """Export what is queued now, in batches of ``batch_size``.

        Bounded by what is queued when it starts (producers faster than the
        worker must not keep a flush waiting forever), except that the last
        batch is topped up to a full one from what arrived meanwhile: a
        small batch costs a commit of its own, as much as a full one.
        """
        handoff = self.handoff
        size = self.batch_size
        left = len(handoff)
        while left > 0:
            with self._take_lock:  # once per batch: nothing next to building it
                if self._abandoned:
                    return
                items = handoff.take(size)
                self._in_hand = len(items)
            if not items:
                return
            left -= len(items)
            try:
                records = handoff.records(items, self.service, self.node)
                for observer in self._observers:
                    self._observe(observer, records)
                self._submit(records)
            finally:
                self._in_hand = 0
            # Let a delivery thread back in at once: it releases the GIL
            # around each SQLite call and would otherwise wait for it up to
            # the interpreter's switch interval (5 ms) while this loop runs.
            sleep(0)

    @staticmethod
    def _observe(observer: Observer, records: list[Record]) -> None:
        try:
            observer.observe(records)
        except Exception as exc:  # the records are delivered all the same
            log.error("alamos: %s observer failed: %s", observer.name, exc, exc_info=exc)

    def _submit(self, records: list[Record]) -> None:
        """Hand ``records`` to each delivery (its share by level), in batches
        of at most ``batch_size``: a snapshot of many label sets must not
        become one huge export or one huge spool line."""
        if not records:
            return
        self.processed += len(records)
        size = self.batch_size
        for start in range(0, len(records), size):
            chunk = records[start : start + size] if len(records) > size else records
            for delivery in self.deliveries:
                floor = delivery.exporter.min_level
                share = [r for r in chunk if r.export_level >= floor]
                if share:
                    delivery.submit(share)

    def _report_drops(self) -> None:
        with self._cond:
            dropped = self.handoff.dropped
            new = dropped - self._dropped_seen
            if new > 0:
                self._dropped_seen = dropped
        if new > 0:
            reason = "closed" if self._closing else "queue_full"
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
        again; then each delivery flushes.  False if ``timeout`` ran out
        (every wait is bounded by it)."""
        deadline = None if timeout is None else monotonic() + timeout
        with self._cond:
            if self._stopping and self._thread is None:
                return True
            self._flush_req += 1
            req = self._flush_req
        self._start()
        self.handoff.wake()
        if not self._wait(lambda: self._flush_done >= req, deadline):
            return False
        ok = True
        for delivery in self.deliveries:
            left = None if deadline is None else max(0.0, deadline - monotonic())
            ok = delivery.flush(left) and ok
        return ok

    def _wait(self, predicate: Callable[[], bool], deadline: float | None) -> bool:
        with self._cond:
            while not predicate():
                left = None if deadline is None else deadline - monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def poll_once(self, poll: Callable[[], Iterable[Record]], timeout: float | None) -> bool:
        """Have the worker run ``poll`` once and hand on what it returns (the
        last snapshots, at close: a report provider is user code, and runs on
        the worker, not on the thread that closes).  True once done; False if
        ``timeout`` ran out first (it still runs, when the worker gets to it)."""
        deadline = None if timeout is None else monotonic() + timeout
        with self._cond:
            if self._stopping:
                return False
            self._once.append(poll)
            self._once_req += 1
            ticket = self._once_req
        self._start()
        self.handoff.wake()
        return self._wait(lambda: self._once_done >= ticket, deadline)

    def close(self, timeout: float | None = 10.0) -> CloseResult:
        """Stop taking items, let the worker empty the queue (for half of
        ``timeout``), then close the deliveries (all at once, within what is
        left: see :meth:`Delivery.begin_close`).  Returns within ``timeout``;
        what is still in the queue when the worker's half runs out is dropped
        and counted (``close_timeout``), with a warning."""
        start = monotonic()
        deadline = None if timeout is None else start + timeout
        drain_until = None if timeout is None else start + timeout / 2
        self.handoff.close()  # items arriving from now on are dropped (counted)
        self._closing = True
        if len(self.handoff):
            self._start()
        with self._cond:
            self._stopping = True
            self._pollers.clear()
            thread = self._thread
            self._cond.notify_all()
        self.handoff.wake()
        timed_out = False
        if thread is not None and thread is not threading.current_thread():
            left = None if drain_until is None else max(0.0, drain_until - monotonic())
            thread.join(left)
            if thread.is_alive():
                timed_out = True
                self._abandon(deadline)
        self._thread = None
        self._report_drops()
        for delivery in self.deliveries:
            delivery.begin_close(deadline)
        for delivery in self.deliveries:
            delivery.finish_close()
            timed_out = timed_out or delivery.close_timed_out
        process.untrack(self)
        stats = pipeline_stats(self)
        durable = sum(s.exported + s.spooled for s in stats.exporters.values())
        return CloseResult(
            durable=durable,
            dropped=stats.dropped,
            pending=self._in_hand
            + len(self.handoff)
            + sum(d.close_pending for d in self.deliveries),
            spool_pending_bytes=stats.spool_pending_bytes,
            timed_out=timed_out,
        )

    def _abandon(self, deadline: float | None) -> None:
        """The worker did not empty the queue in time: it takes no more, and
        what is left is dropped and counted.  If the worker is building a
        batch right now (it holds the take lock), it does this itself
        after that batch, and close reports what it could not wait for as
        ``pending``."""
        left = None if deadline is None else max(0.0, deadline - monotonic())
        got = self._take_lock.acquire(timeout=-1 if left is None else left)
        self._abandoned = True  # under the lock if we got it: no batch is being taken
        if got:
            self._take_lock.release()
            self._discard_abandoned()

    def _discard_abandoned(self) -> None:
        with self._take_lock:
            items = self.handoff.take(len(self.handoff))
        if not items:
            return
        count = len(items)
        with self._cond:
            self.dropped_at_close += count
        log.warning(
            "alamos: close() ran out of time with %d records still queued: dropped "
            "(see the README's 'What can be lost')",
            count,
        )
        if self._on_drop is not None:
            self._on_drop(count, "close_timeout")
