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
*contents* and would refuse them again: then the batch is split in halves,
again and again (bisection: about ``2 log2(n)`` calls per bad record), to
find the records at fault; everything else is stored, and the refused
records go to a dead-letter file next to the spool, counted as dropped
(``"rejected"``).  A refused batch replayed from the spool goes the same
way, so one bad record can never block an exporter, nor its spool.

Records are dropped only when both the exporter and the spool fail, when the
database rejects them, or when ``close(timeout)`` runs out before they could
be spooled; then ``on_drop(count, reason)`` is called and a warning logged.
Export order is not preserved (spooled batches come later) and a batch may be
exported more than once (export is idempotent by record id).

Every wait of the calling thread (:meth:`Delivery.flush`,
:meth:`Delivery.close`) is bounded by its timeout: the exporter is only ever
called from the delivery's own thread, and spooling from the caller's
thread stops at the deadline.
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
from alamos.core.errors import RecordsRejected
from alamos.core.exporter import Exporter
from alamos.core.records import Record
from alamos.report.pipeline.spool import DeadLetters, PartlyConsumed, ReplayStats, Spool
from alamos.report.pipeline.stats import DeliveryStats

__all__ = ["Delivery", "DeliveryStats"]

log = logging.getLogger("alamos.report")


class _Stop(Exception):
    """Raised into a replay to stop it when the delivery closes."""


class _Partial(Exception):
    """A transient failure in the middle of isolating rejected records:
    ``stored`` records were exported (and the refused ones dead-lettered)
    before ``error``; ``left`` were not."""

    def __init__(self, error: Exception, left: list[Record], stored: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.left = left
        self.stored = stored


class _Batch:
    __slots__ = ("records", "seq", "settled")

    def __init__(self, seq: int, records: list[Record]) -> None:
        self.seq = seq
        self.records = records
        self.settled = False  # exported, spooled or dropped


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


class Delivery:
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

    # -- the collector's side -------------------------------------------------

    def start(self) -> None:
        """Start the delivery thread (which first replays the spool)."""
        with self._cond:
            self._start_locked()

    def _start_locked(self, *, closing: bool = False) -> None:
        if self._thread is None and (closing or not self._closed):
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

    def _spool_queued(self, upto: int | None = None, deadline: float | None = None) -> None:
        """Move waiting batches to the spool, stopping at the first failure
        (or at ``deadline``).  A batch leaves the hand-off only once spooled,
        so it stays bounded."""
        with self._cond:
            queued = [b for b in self._queue if upto is None or b.seq <= upto]
        for b in queued:
            if _past(deadline) or not self._spool_batch(b, deadline):
                return
            with self._cond, contextlib.suppress(ValueError):
                self._queue.remove(b)

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
            thread.join(_left(deadline))
        busy = thread is not None and thread.is_alive()
        with self._cond:
            leftover = sorted(self._unsettled.values(), key=lambda b: b.seq)
            # The batch the busy thread is exporting right now may yet be
            # stored: neither durable nor dropped, but pending.
            exporting = self._inflight if busy else None
        for batch in leftover:
            if batch is exporting:
                continue
            if _past(deadline):
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

    # -- settling ---------------------------------------------------------------

    def _settle_locked(self, batch: _Batch) -> None:
        if not batch.settled:
            batch.settled = True
            self._unsettled.pop(batch.seq, None)
            self._cond.notify_all()

    def _spool_batch(self, batch: _Batch, deadline: float | None = None) -> bool:
        """Spool ``batch`` unless already settled; False if the spool failed,
        or if ``deadline`` passed while another thread was spooling."""
        spool = self._spool
        if spool is None:
            return batch.settled
        left = _left(deadline)
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

    def _drop(self, batch: _Batch, label: str, detail: str) -> None:
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

    # -- exporting, and isolating rejected records ------------------------------------

    def _export(self, records: list[Record]) -> int:
        """Export ``records``; how many were stored.  If the database rejects
        them (:class:`RecordsRejected`), split them in halves until each
        refused record is alone, store the rest, and dead-letter the refused
        ones.  A transient failure is raised as is, or as :class:`_Partial`
        once some records were dealt with."""
        try:
            self.exporter.export(records)
            return len(records)
        except RecordsRejected as exc:
            first = exc
        # (chunk, the rejection it is known to cause, or None: not tried yet)
        todo: list[tuple[list[Record], RecordsRejected | None]] = [(records, first)]
        rejected: list[tuple[Record, str]] = []
        stored = 0
        try:
            while todo:
                chunk, known = todo.pop()
                if known is None:
                    try:
                        self.exporter.export(chunk)
                    except RecordsRejected as exc:
                        known = exc
                    except Exception as exc:
                        left = [r for c, _ in (*todo, (chunk, None)) for r in c]
                        raise _Partial(exc, left, stored) from exc
                    else:
                        stored += len(chunk)
                        continue
                if len(chunk) == 1:
                    rejected.append((chunk[0], known.reason))
                    continue
                # Both halves are tried: a rejection may need two records
                # together (two rows with one key in one statement).
                mid = len(chunk) // 2
                todo.append((chunk[mid:], None))
                todo.append((chunk[:mid], None))
        finally:
            self._reject(rejected)
        return stored

    def _reject(self, rejected: list[tuple[Record, str]]) -> None:
        """Dead-letter and count records the database refused for good."""
        if not rejected:
            return
        count, name = len(rejected), self.exporter.name
        with self._cond:
            self._stats.rejected += count
            self._stats.dropped += count
        reason = rejected[0][1]
        where = "not kept (no spool folder)"
        if self._dead is not None:
            try:
                where = f"kept in {self._dead.append(rejected, name)}"
            except Exception as exc:
                where = f"not kept (dead-letter file failing: {exc})"
        log.warning(
            "alamos: the database refused %d records for exporter %r for good (%s); %s",
            count,
            name,
            reason,
            where,
        )
        self._report_drop(count, f"rejected: {reason}")

    # -- the delivery thread ----------------------------------------------------

    def _run(self) -> None:
        try:
            self._replay()
            while self._step():
                pass
            self._finish()
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

    def _exported(self, batch: _Batch, stored: int) -> None:
        with self._cond:
            if not batch.settled:  # else a flush spooled it meanwhile: counted there
                self._stats.exported += stored
                if stored < len(batch.records):  # the rest was rejected: flush says so
                    self._drop_seqs.append(batch.seq)
            if self._inflight is batch:
                self._inflight = None
            self._settle_locked(batch)

    def _partly_exported(self, batch: _Batch, partial: _Partial) -> None:
        """Part of ``batch`` is dealt with: what is left is the batch now."""
        with self._spool_lock, self._cond:
            self._stats.exported += partial.stored
            if partial.stored + len(partial.left) < len(batch.records):
                self._drop_seqs.append(batch.seq)  # some were rejected: flush says so
            batch.records = partial.left

    def _deliver(self, batch: _Batch) -> None:
        try:
            stored = self._export(batch.records)
        except _Partial as partial:
            self._partly_exported(batch, partial)
            self._fail(partial.error, batch)
            return
        except Exception as exc:
            self._fail(exc, batch)
            return
        self._exported(batch, stored)

    def _retry(self) -> None:
        held, proven = self._inflight, False
        if held is not None and not held.settled:
            try:
                stored = self._export(held.records)
            except _Partial as partial:
                self._partly_exported(held, partial)
                self._fail(partial.error)
                return
            except Exception as exc:
                self._fail(exc)
                return
            proven = True
            self._exported(held, stored)
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

    def _finish(self) -> None:
        """The thread's last steps, at close, until the close deadline: one more
        try for each batch still in memory (no spool, or a spool failing),
        then the spool: replayed if the exporter works now (this is what
        makes a healthy database complete when close returns, even right
        after an outage), then the exporter is closed."""
        deadline = self._close_deadline
        while not _past(deadline):
            with self._cond:
                held = [b for b in (self._inflight, *self._queue) if b is not None]
                batch = next((b for b in held if not b.settled), None)
                # Claimed in the same critical section in which it was found
                # unsettled: finish_close() skips the batch in flight, and
                # drops (settles) only batches not claimed, so a batch is
                # never both dropped and exported.
                self._inflight = batch
            if batch is None:
                break
            try:
                stored = self._export(batch.records)
            except _Partial as partial:
                self._partly_exported(batch, partial)
                break
            except Exception:
                break  # still failing: close spools it, or drops it and says so
            self._exported(batch, stored)
            with self._cond, contextlib.suppress(ValueError):
                self._queue.remove(batch)
        spool = self._spool
        if spool is not None and not _past(deadline):
            with self._cond:
                dirty = self._spool_dirty or self._failing
            if dirty or spool.pending() > 0:
                result = self._replay(lambda: _past(deadline), final=True)
                if result is None:
                    log.warning(
                        "alamos: exporter %r still failing at close; records wait in the "
                        "spool %s for the next start",
                        self.exporter.name,
                        spool.directory,
                    )
        try:
            self.exporter.close()
        except Exception:
            log.exception("alamos: closing exporter %r failed", self.exporter.name)

    def _replay(
        self, stop: Callable[[], bool] | None = None, *, final: bool = False
    ) -> ReplayStats | None:
        """Replay the spool through the exporter; None if the exporter failed.
        ``stop()`` (default: the delivery is stopping) ends it early.
        ``final``: at close, a failure is not retried (nothing is rescheduled)."""
        should_stop = stop if stop is not None else (lambda: self._stopping)
        with self._cond:
            self._spool_dirty = False
        spool = self._spool
        if spool is None:
            return ReplayStats()

        def consume(batch: list[Record]) -> None:
            if should_stop():
                raise _Stop
            try:
                stored = self._export(batch)
            except _Partial as partial:
                with self._cond:
                    self._stats.replayed += partial.stored
                try:  # what is left goes back to the spool, the rest is done
                    spool.append(partial.left)
                except Exception:
                    raise partial.error from None  # the whole line again, later
                with self._cond:
                    self._spool_dirty = True
                raise PartlyConsumed(partial.error) from None
            with self._cond:
                self._stats.replayed += stored

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
            if final:
                with self._cond:
                    self._stats.failures += 1
            else:
                self._fail(result.error)
        return None
