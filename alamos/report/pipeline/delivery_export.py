"""Exporting a batch, and isolating the records the database refuses for good.

Any exception from ``export`` is taken as transient (the database is down, a
lock timed out) and left to the delivery thread's retry.  But
:class:`alamos.RecordsRejected` says the database refused the batch's
*contents* and would refuse them again: then the batch is split in halves,
again and again (bisection: about ``2 log2(n)`` calls per bad record), to
find the records at fault; everything else is stored, and the refused
records go to the dead-letter file next to the spool
(:class:`~alamos.report.pipeline.dead_letters.DeadLetters`), counted as
dropped (``"rejected"``).  A refused batch replayed from the spool goes the
same way, so one bad record can never block an exporter, nor its spool.
"""

from __future__ import annotations

import logging

from alamos.core.errors import RecordsRejected
from alamos.core.records import Record
from alamos.report.pipeline.delivery_state import Batch, DeliveryState

__all__ = ["DeliveryExport", "Partial"]

log = logging.getLogger("alamos.report")


class Partial(Exception):
    """A transient failure in the middle of isolating rejected records:
    ``stored`` records were exported (and the refused ones dead-lettered)
    before ``error``; ``left`` were not."""

    def __init__(self, error: Exception, left: list[Record], stored: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.left = left
        self.stored = stored


class DeliveryExport(DeliveryState):
    """A delivery that exports with the isolation of rejected records, and
    accounts for what each export stored."""

    def _export(self, records: list[Record]) -> int:
        """Export ``records``; how many were stored.  If the database rejects
        them (:class:`RecordsRejected`), split them in halves until each
        refused record is alone, store the rest, and dead-letter the refused
        ones.  A transient failure is raised as is, or as :class:`Partial`
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
                        raise Partial(exc, left, stored) from exc
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

    def _exported(self, batch: Batch, stored: int) -> None:
        with self._cond:
            if not batch.settled:  # else a flush spooled it meanwhile: counted there
                self._stats.exported += stored
                if stored < len(batch.records):  # the rest was rejected: flush says so
                    self._drop_seqs.append(batch.seq)
            if self._inflight is batch:
                self._inflight = None
            self._settle_locked(batch)

    def _partly_exported(self, batch: Batch, partial: Partial) -> None:
        """Part of ``batch`` is dealt with: what is left is the batch now."""
        with self._spool_lock, self._cond:
            self._stats.exported += partial.stored
            if partial.stored + len(partial.left) < len(batch.records):
                self._drop_seqs.append(batch.seq)  # some were rejected: flush says so
            batch.records = partial.left
