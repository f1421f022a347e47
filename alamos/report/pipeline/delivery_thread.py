"""The delivery thread: exporting, retrying with backoff, replaying the spool.

One thread per delivery calls the exporter, so a slow or stalled exporter
never stalls the collector, and the callers' waits stay bounded.  While the
exporter fails, batches go to the spool, and the thread retries after a
backoff (``retry_initial``, doubling up to ``retry_max``, with jitter): the
batch it held, then a replay of the spool; once that works the exporter
counts as recovered.  The spool is also replayed at start (for what earlier
runs left), and one last time at close, if the exporter works then
(:meth:`DeliveryThread._finish`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from alamos.core.records import Record
from alamos.report.pipeline.delivery_export import DeliveryExport, Partial
from alamos.report.pipeline.delivery_state import Batch, past
from alamos.report.pipeline.spool import PartlyConsumed, ReplayStats

__all__ = ["DeliveryThread"]

log = logging.getLogger("alamos.report")


class _Stop(Exception):
    """Raised into a replay to stop it when the delivery closes."""


class DeliveryThread(DeliveryExport):
    """A delivery with its thread (started lazily, on the first submit)."""

    def _start_locked(self, *, closing: bool = False) -> None:
        if self._thread is None and (closing or not self._closed):
            self._thread = threading.Thread(
                target=self._run, name=f"alamos-delivery-{self.exporter.name}", daemon=True
            )
            self._thread.start()

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

    def _deliver(self, batch: Batch) -> None:
        try:
            stored = self._export(batch.records)
        except Partial as partial:
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
            except Partial as partial:
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

    def _fail(self, exc: Exception, batch: Batch | None = None) -> None:
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
        while not past(deadline):
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
            except Partial as partial:
                self._partly_exported(batch, partial)
                break
            except Exception:
                break  # still failing: close spools it, or drops it and says so
            self._exported(batch, stored)
            with self._cond, contextlib.suppress(ValueError):
                self._queue.remove(batch)
        spool = self._spool
        if spool is not None and not past(deadline):
            with self._cond:
                dirty = self._spool_dirty or self._failing
            if dirty or spool.pending() > 0:
                result = self._replay(lambda: past(deadline), final=True)
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
            except Partial as partial:
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
