"""A delivery's state: its batches, and how each is settled.

The base of :class:`~alamos.report.pipeline.delivery.Delivery`.  A batch is
*settled* once it is exported, spooled or dropped, exactly once: whichever
thread gets there first (the delivery's thread exporting it, a flush or a
close spooling it from the caller's thread) settles it under the
condition's lock, and the others then leave it alone.  This base class holds
every field of a delivery (one ``_reset`` sets them all, also in a forked
child) and the settling paths shared by the thread and the callers:
spooling a batch (never twice), and dropping one (counted, logged,
``on_drop``).  The subclasses add, in order, exporting with the isolation of
rejected records (:mod:`~alamos.report.pipeline.delivery_export`), the
delivery thread (:mod:`~alamos.report.pipeline.delivery_thread`) and the
public calls (:mod:`~alamos.report.pipeline.delivery`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import attrs

from alamos.core import process
from alamos.core.exporter import Exporter
from alamos.core.records import Record
from alamos.report.pipeline.dead_letters import DeadLetters
from alamos.report.pipeline.spool import Spool
from alamos.report.pipeline.stats import DeliveryStats

__all__ = ["Batch", "DeliveryState", "past", "time_left"]

log = logging.getLogger("alamos.report")


class Batch:
    """Records submitted together, numbered in order of submission (``seq``)."""

    __slots__ = ("records", "seq", "settled")

    def __init__(self, seq: int, records: list[Record]) -> None:
        self.seq = seq
        self.records = records
        self.settled = False  # exported, spooled or dropped


def time_left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` (a ``time.monotonic()`` value), or None: no deadline."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def past(deadline: float | None) -> bool:
    """Whether ``deadline`` (None: never) has passed."""
    return deadline is not None and time.monotonic() >= deadline


class DeliveryState:
    """The fields of a delivery, and settling its batches (see the module doc;
    the arguments are described on :class:`~alamos.report.pipeline.delivery.Delivery`)."""

    def __init__(
        self,
        exporter: Exporter,
        *,
        spool_dir: Path | None,
        max_pending_batches: int = 64,
        retry_initial: float = 0.05,
        retry_max: float = 5.0,
        on_drop: Callable[[int, str], None] | None = None,
        stall_timeout: float = 2.0,
    ) -> None:
        self.exporter = exporter
        self._spool = Spool(spool_dir) if spool_dir is not None else None
        self._dead = DeadLetters(spool_dir) if spool_dir is not None else None
        self._max_pending = max(1, max_pending_batches)
        self._retry_initial = retry_initial
        self._retry_max = max(retry_max, retry_initial)
        self._on_drop = on_drop
        self._stall_timeout = stall_timeout
        self._random = random.Random()
        self._closed = False
        self._reset()
        # In a forked child, the parent delivers what it had; the child starts
        # afresh (thread, hand-off, stats), lazily on its first submit.  Its
        # Spool resets itself likewise.
        process.track(self, process.Hooks(after_fork_in_child=DeliveryState._reset))

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._spool_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._queue: deque[Batch] = deque()
        self._unsettled: dict[int, Batch] = {}
        self._inflight: Batch | None = None  # exporting, or held for retry
        self._seq = self._flushed_upto = self._outage_failures = 0
        self._failing = self._spool_failing = self._stopping = False
        self._spool_dirty = True  # replay once at start
        self._spool_error = "spool failing"
        self._backoff, self._retry_at = self._retry_initial, 0.0
        self._drop_seqs: list[int] = []  # dropped since the last flush
        self._stats = DeliveryStats()
        # close() in two steps (begin_close, finish_close): see there.
        self._close_deadline: float | None = None
        self._close_grace: float | None = None
        self._close_target = 0
        self._finished = False
        #: Set by close: it ran out of time; and the records of the batch its
        #: thread was still exporting then (stored later, or spooled if that
        #: export fails: never dropped, but not known to be durable).
        self.close_timed_out = False
        self.close_pending = 0

    @property
    def stats(self) -> DeliveryStats:
        with self._cond:
            return attrs.evolve(self._stats)

    @property
    def spool(self) -> Spool | None:
        return self._spool

    @property
    def dead_letters(self) -> DeadLetters | None:
        """Where records the database refused for good are written."""
        return self._dead

    # -- settling ---------------------------------------------------------------

    def _settle_locked(self, batch: Batch) -> None:
        if not batch.settled:
            batch.settled = True
            self._unsettled.pop(batch.seq, None)
            self._cond.notify_all()

    def _spool_batch(self, batch: Batch, deadline: float | None = None) -> bool:
        """Spool ``batch`` unless already settled; False if the spool failed,
        or if ``deadline`` passed while another thread was spooling."""
        spool = self._spool
        if spool is None:
            return batch.settled
        left = time_left(deadline)
        # Never spool one batch twice (flush vs thread); bounded for callers.
        if not self._spool_lock.acquire(timeout=-1 if left is None else left):
            return batch.settled
        try:
            if batch.settled:
                return True
            try:
                spool.append(batch.records)
            except Exception as exc:
                with self._cond:
                    first, self._spool_failing = not self._spool_failing, True
                    self._spool_error = f"spool failing: {exc}"
                if first:
                    log.warning("alamos: spool %s failing: %s", spool.directory, exc)
                return False
            with self._cond:
                self._stats.spooled += len(batch.records)
                self._spool_dirty = True
                self._spool_failing = False
                self._settle_locked(batch)
            return True
        finally:
            self._spool_lock.release()

    def _spool_problem(self) -> str:
        return "no spool" if self._spool is None else self._spool_error

    def _drop(self, batch: Batch, label: str, detail: str) -> None:
        count = len(batch.records)
        with self._cond:
            if batch.settled:
                return
            self._stats.dropped += count
            self._drop_seqs.append(batch.seq)
            self._settle_locked(batch)
        name = self.exporter.name
        log.warning("alamos: dropped %d records for exporter %r: %s", count, name, detail)
        self._report_drop(count, f"{label}: {detail}")

    def _report_drop(self, count: int, reason: str) -> None:
        if self._on_drop is not None:
            try:
                self._on_drop(count, reason)
            except Exception:
                log.exception("alamos: on_drop callback failed")

    def _spool_queued(self, upto: int | None = None, deadline: float | None = None) -> None:
        """Move waiting batches to the spool, stopping at the first failure
        (or at ``deadline``).  A batch leaves the hand-off only once spooled,
        so it stays bounded."""
        with self._cond:
            queued = [b for b in self._queue if upto is None or b.seq <= upto]
        for b in queued:
            if past(deadline) or not self._spool_batch(b, deadline):
                return
            with self._cond, contextlib.suppress(ValueError):
                self._queue.remove(b)
