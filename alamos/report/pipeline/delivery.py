"""Delivery of record batches to one background exporter, without losing any.

The collector's worker calls :meth:`Delivery.submit` with each batch.  A
``Delivery`` hands batches to its own thread (so a slow or stalled exporter
never stalls the collector), which calls ``exporter.export``.  When the
hand-off is full, or while the exporter is failing, batches go to an on-disk
:class:`~alamos.report.pipeline.spool.Spool` instead, and are replayed through the
exporter once it works again (and at start, for what earlier runs left).

Two kinds of failure.  Any exception from ``export`` is taken as transient
(the database is down, a lock timed out): retry, spool, replay.  But
:class:`alamos.RecordsRejected` says the database refused the batch's
*contents*: the records at fault are isolated and dead-lettered, the rest
stored (:mod:`~alamos.report.pipeline.delivery_export`).

Records are dropped only when both the exporter and the spool fail, when the
database rejects them, or when ``close(timeout)`` runs out before they could
be spooled; then ``on_drop(count, reason)`` is called and a warning logged.
Export order is not preserved (spooled batches come later) and a batch may be
exported more than once (export is idempotent by record id).

Every wait of the calling thread (:meth:`Delivery.flush`,
:meth:`Delivery.close`) is bounded by its timeout: the exporter is only ever
called from the delivery's own thread, and spooling from the caller's
thread stops at the deadline.

The class is built up in layers, one responsibility each:
:mod:`~alamos.report.pipeline.delivery_state` (the batches and their
settling: spooled, dropped), :mod:`~alamos.report.pipeline.delivery_export`
(exporting, isolating rejected records), and
:mod:`~alamos.report.pipeline.delivery_thread` (the thread: retry, backoff,
replay, its last steps at close).  This module holds what the collector
calls: submit, flush, and the close protocol.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from alamos.core import process
from alamos.core.records import Record
from alamos.report.pipeline.delivery_state import Batch, past, time_left
from alamos.report.pipeline.delivery_thread import DeliveryThread
from alamos.report.pipeline.stats import DeliveryStats

__all__ = ["Delivery", "DeliveryStats"]

log = logging.getLogger("alamos.report")


class Delivery(DeliveryThread):
    """Delivers batches to ``exporter`` from a thread, spooling to ``spool_dir``.

    ``spool_dir`` should be specific to the exporter: every batch in it is
    replayed through this exporter, and its dead-letter file is written
    there.  ``None`` means no spool (batches that cannot be handed off or
    exported are then kept in memory up to ``max_pending_batches``, then
    dropped; rejected records are only logged and counted).
    ``stall_timeout``: how long :meth:`flush` lets the exporter make progress
    before it spools what the exporter has not finished itself.
    ``on_drop(count, reason)``: ``reason`` is one of
    :data:`~alamos.report.pipeline.stats.DROP_REASONS`, then ``": "`` and the
    detail.
    """

    # -- the collector's side -------------------------------------------------

    def start(self) -> None:
        """Start the delivery thread (which first replays the spool)."""
        with self._cond:
            self._start_locked()

    def submit(self, records: Sequence[Record]) -> None:
        """Hand ``records`` over without blocking on the exporter.  Never raises."""
        if not records:
            return
        with self._cond:
            self._start_locked()
            self._seq += 1
            batch = Batch(self._seq, list(records))
            self._unsettled[batch.seq] = batch
            if not self._failing and not self._closed and len(self._queue) < self._max_pending:
                self._queue.append(batch)
                self._cond.notify_all()
                return
            reason = "exporter failing" if self._failing else "hand-off full"
            if self._closed:
                reason = "delivery closed"
        if self._spool_batch(batch):
            if self._finished and self._spool is not None:
                self._spool.close()  # leave no file locked after close
            return
        with self._cond:  # no spool: keep it in memory while there is room
            if not self._closed and len(self._queue) < self._max_pending:
                self._queue.append(batch)
                self._cond.notify_all()
                return
        self._drop(batch, "exporter_and_spool_failed", f"{reason} and {self._spool_problem()}")

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every batch submitted before the call is exported or in
        the spool.  False on timeout, or if one of them was dropped.  Returns
        within ``timeout``: what the exporter has not finished by half of it
        (at most ``stall_timeout``) is spooled from this thread, until the
        deadline."""
        now = time.monotonic()
        deadline = None if timeout is None else now + timeout
        grace = self._stall_timeout if timeout is None else min(self._stall_timeout, timeout / 2)
        with self._cond:
            target = self._seq
            done = self._wait_settled(target, now + grace, deadline)
        if not done:
            self._rescue(target, deadline)
            with self._cond:
                done = self._wait_settled(target, None, deadline)
        with self._cond:
            lost = any(self._flushed_upto < s <= target for s in self._drop_seqs)
            if done:  # else a batch may still be dropped: the next flush says so
                self._drop_seqs = [s for s in self._drop_seqs if s > target]
                self._flushed_upto = max(self._flushed_upto, target)
        return done and not lost

    def _wait_settled(self, target: int, until: float | None, deadline: float | None) -> bool:
        if deadline is not None and (until is None or deadline < until):
            until = deadline
        while any(s <= target for s in self._unsettled):
            if until is None:
                self._cond.wait()
                continue
            left = until - time.monotonic()
            if left <= 0:
                return False
            self._cond.wait(left)
        return True

    def _rescue(self, target: int, deadline: float | None) -> None:
        """Spool, from the calling thread, what the exporter has not finished
        (until ``deadline``: what is left stays with the delivery thread)."""
        if self._spool is None:
            return
        current = self._inflight
        if current is not None and current.seq <= target:
            self._spool_batch(current, deadline)  # the thread may still export it too: fine
        self._spool_queued(target, deadline)

    # -- close ------------------------------------------------------------------------

    def close(self, timeout: float | None = 10.0) -> bool:
        """Flush, try the exporter once more and replay the spool if it works,
        stop the thread, close the exporter and the spool.  Idempotent.
        Returns within ``timeout``; False if something was dropped (see
        :meth:`finish_close`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.begin_close(deadline):
            return True
        return self.finish_close()

    def begin_close(self, deadline: float | None) -> bool:
        """The first half of :meth:`close`, so that a collector can close all its
        deliveries at once, each within the same ``deadline``: from now on,
        submitted batches go straight to the spool, and the thread exports
        what it holds, then (see :meth:`_finish`) tries the exporter once more,
        replays the spool if it works and closes the exporter.  False if
        closed already."""
        with self._cond:
            if self._closed:
                return False
            self._closed = True
            now = time.monotonic()
            self._close_deadline = deadline
            left = None if deadline is None else max(0.0, deadline - now)
            self._close_grace = now + (
                self._stall_timeout if left is None else min(self._stall_timeout, left / 2)
            )
            self._close_target = self._seq
            self._start_locked(closing=True)  # a thread for the last steps, if none yet
            self._cond.notify_all()
        return True

    def finish_close(self) -> bool:
        """The second half of :meth:`close`: wait (until the grace point) for
        the exporter, spool what it has not finished, let the thread take its
        last steps until the deadline, then spool what is still in memory
        (until the deadline; past it, it is dropped and counted as
        ``close_timeout``).  True if nothing was dropped since the last
        flush, and nothing is left pending (a batch the thread was still
        exporting when the deadline passed: see ``close_pending``)."""
        deadline = self._close_deadline
        with self._cond:
            target = self._close_target
            done = self._wait_settled(target, self._close_grace, deadline)
        if not done:
            self._rescue(target, deadline)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(time_left(deadline))
        busy = thread is not None and thread.is_alive()
        with self._cond:
            leftover = sorted(self._unsettled.values(), key=lambda b: b.seq)
            # The batch the busy thread is exporting right now may yet be
            # stored: neither durable nor dropped, but pending.
            exporting = self._inflight if busy else None
        for batch in leftover:
            if batch is exporting:
                continue
            if past(deadline):
                self.close_timed_out = True
                self._drop(batch, "close_timeout", "still in memory when close() ran out of time")
            elif not self._spool_batch(batch, deadline):
                self._drop(
                    batch,
                    "exporter_and_spool_failed",
                    f"closed before delivery and {self._spool_problem()}",
                )
        if busy:
            self.close_timed_out = True
            log.warning(
                "alamos: exporter %r still busy when close() ran out of time; "
                "its thread closes it once its call returns",
                self.exporter.name,
            )
        with self._cond:
            if exporting is not None and not exporting.settled:
                self.close_pending = len(exporting.records)
            lost = any(s > self._flushed_upto for s in self._drop_seqs)
            self._drop_seqs.clear()
            self._flushed_upto = self._seq
            self._finished = True
        if self._spool is not None:
            self._spool.close()
        process.untrack(self)
        return not lost and not self.close_pending
