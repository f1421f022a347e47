"""Delivery of record batches to one background exporter, without losing any.

The collector's worker calls :meth:`Delivery.submit` with each batch.  A
``Delivery`` hands batches to its own thread (so a slow or stalled exporter
never stalls the collector), which calls ``exporter.export``.  When the
hand-off is full, or while the exporter is failing, batches go to an on-disk
:class:`~alamos.report.pipeline.spool.Spool` instead, and are replayed through the
exporter once it works again (and at start, for what earlier runs left).

Records are dropped only when both the exporter and the spool fail; then
``on_drop(count, reason)`` is called and a warning logged.  Export order is
not preserved (spooled batches come later) and a batch may be exported more
than once (export is idempotent by record id).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from alamos.core import process
from alamos.core.exporter import Exporter
from alamos.core.records import Record
from alamos.report.pipeline.spool import ReplayStats, Spool

__all__ = ["Delivery", "DeliveryStats"]

log = logging.getLogger("alamos.report")


@attrs.define
class DeliveryStats:
    """Record counts: ``exported`` straight from the hand-off, ``spooled`` to
    disk, ``replayed`` from the spool, ``dropped`` (neither exported nor
    spooled, see ``on_drop``); ``torn_lines``: unreadable spool lines skipped;
    ``failures``: failed ``export`` calls."""

    exported: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0
    torn_lines: int = 0
    failures: int = 0


class _Stop(Exception):
    """Raised into a replay to stop it when the delivery closes."""


class _Batch:
    __slots__ = ("records", "seq", "settled")

    def __init__(self, seq: int, records: list[Record]) -> None:
        self.seq = seq
        self.records = records
        self.settled = False  # exported, spooled or dropped


class Delivery:
    """Delivers batches to ``exporter`` from a thread, spooling to ``spool_dir``.

    ``spool_dir`` should be specific to the exporter: every batch in it is
    replayed through this exporter.  ``None`` means no spool (batches that
    cannot be handed off or exported are then kept in memory up to
    ``max_pending_batches``, then dropped).  ``stall_timeout``: how long
    :meth:`flush` lets the exporter make progress before it spools what the
    exporter has not finished itself.
    """

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
        process.track(self, process.Hooks(after_fork_in_child=Delivery._reset))

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._spool_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._queue: deque[_Batch] = deque()
        self._unsettled: dict[int, _Batch] = {}
        self._inflight: _Batch | None = None  # exporting, or held for retry
        self._seq = self._flushed_upto = self._outage_failures = 0
        self._failing = self._spool_failing = self._stopping = False
        self._spool_dirty = True  # replay once at start
        self._spool_error = "spool failing"
        self._backoff, self._retry_at = self._retry_initial, 0.0
        self._drop_seqs: list[int] = []  # dropped since the last flush
        self._stats = DeliveryStats()

    @property
    def stats(self) -> DeliveryStats:
        with self._cond:
            return attrs.evolve(self._stats)

    @property
    def spool(self) -> Spool | None:
        return self._spool

    # -- the collector's side -------------------------------------------------

    def start(self) -> None:
        """Start the delivery thread (which first replays the spool)."""
        with self._cond:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(
                target=self._run, name=f"alamos-delivery-{self.exporter.name}", daemon=True
            )
            self._thread.start()

    def submit(self, records: Sequence[Record]) -> None:
        """Hand ``records`` over without blocking on the exporter.  Never raises."""
        if not records:
            return
        with self._cond:
            self._start_locked()
            self._seq += 1
            batch = _Batch(self._seq, list(records))
            self._unsettled[batch.seq] = batch
            if not self._failing and not self._closed and len(self._queue) < self._max_pending:
                self._queue.append(batch)
                self._cond.notify_all()
                return
            reason = "exporter failing" if self._failing else "hand-off full"
            if self._closed:
                reason = "delivery closed"
        if self._spool_batch(batch):
            if self._closed and self._spool is not None:
                self._spool.close()  # leave no file locked after close
            return
        with self._cond:  # no spool: keep it in memory while there is room
            if not self._closed and len(self._queue) < self._max_pending:
                self._queue.append(batch)
                self._cond.notify_all()
                return
        self._drop(batch, f"{reason} and {self._spool_problem()}")

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every batch submitted before the call is exported or in
        the spool.  False on timeout, or if one of them was dropped."""
        now = time.monotonic()
        deadline = None if timeout is None else now + timeout
        grace = self._stall_timeout if timeout is None else min(self._stall_timeout, timeout / 2)
        with self._cond:
            target = self._seq
            done = self._wait_settled(target, now + grace, deadline)
        if not done:
            self._rescue(target)
            with self._cond:
                done = self._wait_settled(target, None, deadline)
        with self._cond:
            lost = any(self._flushed_upto < s <= target for s in self._drop_seqs)
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

    def _rescue(self, target: int) -> None:
        """Spool, from the calling thread, what the exporter has not finished."""
        if self._spool is None:
            return
        current = self._inflight
        if current is not None and current.seq <= target:
            self._spool_batch(current)  # the thread may still export it too: fine
        self._spool_queued(target)

    def _spool_queued(self, upto: int | None = None) -> None:
        """Move waiting batches to the spool, stopping at the first failure.
        A batch leaves the hand-off only once spooled, so it stays bounded."""
        with self._cond:
            queued = [b for b in self._queue if upto is None or b.seq <= upto]
        for b in queued:
            if not self._spool_batch(b):
                return
            with self._cond, contextlib.suppress(ValueError):
                self._queue.remove(b)

    def close(self, timeout: float | None = 10.0) -> bool:
        """Flush, stop the thread, close the exporter and the spool.  Idempotent.
        Returns what ``flush`` returned (False if something was not delivered)."""
        with self._cond:
            if self._closed:
                return True
            self._closed = True
            thread = self._thread
        deadline = None if timeout is None else time.monotonic() + timeout
        ok = self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        with self._cond:
            leftover = list(self._unsettled.values())
        lost = [b for b in leftover if not self._spool_batch(b)]
        for batch in lost:
            self._drop(batch, f"closed before delivery and {self._spool_problem()}")
        if thread is not None and thread.is_alive():
            log.warning("alamos: exporter %r still busy at close; not closed", self.exporter.name)
        else:
            self._replay_before(deadline)
            try:
                self.exporter.close()
            except Exception:
                log.exception("alamos: closing exporter %r failed", self.exporter.name)
        if self._spool is not None:
            self._spool.close()
        process.untrack(self)
        return ok and not lost

    # -- settling ---------------------------------------------------------------

    def _settle_locked(self, batch: _Batch) -> None:
        if not batch.settled:
            batch.settled = True
            self._unsettled.pop(batch.seq, None)
            self._cond.notify_all()

    def _spool_batch(self, batch: _Batch) -> bool:
        """Spool ``batch`` unless already settled; False if the spool failed."""
        spool = self._spool
        if spool is None:
            return batch.settled
        with self._spool_lock:  # never spool one batch twice (flush vs thread)
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

    def _spool_problem(self) -> str:
        return "no spool" if self._spool is None else self._spool_error

    def _drop(self, batch: _Batch, reason: str) -> None:
        count = len(batch.records)
        with self._cond:
            if batch.settled:
                return
            self._stats.dropped += count
            self._drop_seqs.append(batch.seq)
            self._settle_locked(batch)
        name = self.exporter.name
        log.warning("alamos: dropped %d records for exporter %r: %s", count, name, reason)
        if self._on_drop is not None:
            try:
                self._on_drop(count, reason)
            except Exception:
                log.exception("alamos: on_drop callback failed")

    # -- the delivery thread ----------------------------------------------------

    def _run(self) -> None:
        try:
            self._replay()
            while self._step():
                pass
        except Exception:  # a bug: say so; flush and close still spool what is left
            log.exception("alamos: delivery thread for %r died", self.exporter.name)

    def _step(self) -> bool:
        with self._cond:
            while not (self._stopping or self._failing or self._queue or self._spool_dirty):
                self._cond.wait()
            if self._stopping:
                return False
            if self._failing:
                while not self._stopping and (left := self._retry_at - time.monotonic()) > 0:
                    self._cond.wait(left)
                if self._stopping:
                    return False
                failing, batch = True, None
            else:
                while self._queue and self._queue[0].settled:  # spooled by a flush
                    self._queue.popleft()
                failing, batch = False, self._queue.popleft() if self._queue else None
                self._inflight = batch
        if failing:
            self._retry()
        elif batch is not None:
            self._deliver(batch)
        else:
            self._replay()
        return True

    def _deliver(self, batch: _Batch) -> None:
        try:
            self.exporter.export(batch.records)
        except Exception as exc:
            self._fail(exc, batch)
            return
        with self._cond:
            self._stats.exported += len(batch.records)
            self._inflight = None
            self._settle_locked(batch)

    def _retry(self) -> None:
        held, proven = self._inflight, False
        if held is not None and not held.settled:
            try:
                self.exporter.export(held.records)
            except Exception as exc:
                self._fail(exc)
                return
            proven = True
            with self._cond:
                self._stats.exported += len(held.records)
                self._settle_locked(held)
        with self._cond:
            self._inflight = None
        result = self._replay()
        if result is None or self._stopping:
            return
        if not proven and result.batches == 0 and result.files_skipped:
            # Nothing proved the exporter works, and spool files are busy in
            # another process: keep spooling, and look again later.
            with self._cond:
                self._schedule_retry_locked()
            return
        with self._cond:
            self._failing = False
            self._backoff = self._retry_initial
            failures = self._stats.failures - self._outage_failures
        name = self.exporter.name
        log.warning("alamos: exporter %r recovered after %d failed tries", name, failures)

    def _schedule_retry_locked(self) -> None:
        self._backoff = min(self._backoff * 2, self._retry_max)
        self._retry_at = time.monotonic() + self._backoff * (0.5 + self._random.random() / 2)

    def _fail(self, exc: Exception, batch: _Batch | None = None) -> None:
        """An export failed: spool the batch and the hand-off, schedule a retry."""
        with self._cond:
            self._stats.failures += 1
            first = not self._failing
            if first:  # the first retry waits retry_initial (with jitter), then doubling
                self._failing, self._backoff = True, self._retry_initial / 2
                self._outage_failures = self._stats.failures - 1
            self._schedule_retry_locked()
        if first:
            name, err = self.exporter.name, f"{type(exc).__name__}: {exc}"
            where = self._spool.directory if self._spool is not None else "memory"
            log.warning("alamos: exporter %r failing (%s); keeping records in %s", name, err, where)
        if batch is not None:
            spooled = self._spool_batch(batch)
            with self._cond:
                self._inflight = None if spooled or batch.settled else batch  # else: held
        self._spool_queued()

    def _replay_before(self, deadline: float | None) -> None:
        """At close, with the thread stopped: if the exporter is healthy, replay
        what the spool holds (batches a slow flush spooled, say) until
        ``deadline``, so that a healthy database is complete when close returns
        rather than at the next start.  What is left stays in the spool."""
        spool = self._spool
        if spool is None or self._failing or spool.pending() == 0:
            return
        self._replay(lambda: deadline is not None and time.monotonic() >= deadline)

    def _replay(self, stop: Callable[[], bool] | None = None) -> ReplayStats | None:
        """Replay the spool through the exporter; None if the exporter failed.
        ``stop()`` (default: the delivery is stopping) ends it early."""
        should_stop = stop if stop is not None else (lambda: self._stopping)
        with self._cond:
            self._spool_dirty = False
        spool = self._spool
        if spool is None:
            return ReplayStats()

        def consume(batch: list[Record]) -> None:
            if should_stop():
                raise _Stop
            self.exporter.export(batch)
            with self._cond:
                self._stats.replayed += len(batch)

        try:
            result = spool.replay(consume)
        except Exception as exc:  # the spool folder itself is unreadable
            log.warning("alamos: cannot replay spool %s: %s", spool.directory, exc)
            return ReplayStats()
        with self._cond:
            self._stats.torn_lines += result.torn_lines
        if result.torn_lines:
            torn, where = result.torn_lines, spool.directory
            log.warning("alamos: skipped %d unreadable lines in spool %s", torn, where)
        if result.error is None:
            return result
        with self._cond:
            self._spool_dirty = True
        if not isinstance(result.error, _Stop):
            self._fail(result.error)
        return None
