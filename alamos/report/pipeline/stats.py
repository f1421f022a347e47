"""``root.stats()`` and ``root.close()``: what a tree's export pipeline did.

:class:`PipelineStats` is a snapshot of what the collector and each
background exporter's delivery have done in this process: records exported,
spooled, replayed, dropped (and why), torn spool lines skipped at replay,
and what is still waiting (in the queue, or in the spool).  Useful in tests,
health checks and dashboards; reading it takes the pipeline's locks briefly
and scans the spool folders, so it is not meant for a hot path.

:class:`CloseResult` is what ``close()`` returns: how many records are
durable and how many are not, so that a caller that gave ``close`` a short
timeout learns what that cost instead of losing records silently.

:data:`DROP_REASONS` are the values of the ``reason`` label of the drop
metric: a fixed, small set (a label must have few values); the free-text
detail of each drop goes to the warning that reports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from alamos.report.pipeline.collector import Collector

__all__ = [
    "DROP_REASONS",
    "CloseResult",
    "DeliveryStats",
    "PipelineStats",
    "drop_label",
    "pipeline_stats",
]

#: Why records were dropped, as the drop metric's ``reason`` label:
#:
#: * ``queue_full``: the in-memory queue was full (producers outran the worker);
#: * ``closed``: recorded after ``close()`` began;
#: * ``close_timeout``: still in memory when ``close(timeout)`` ran out;
#: * ``exporter_and_spool_failed``: the exporter failed and the spool too;
#: * ``rejected``: the database refused the record for good (it is kept in
#:   the dead-letter file next to the spool).
DROP_REASONS = ("queue_full", "closed", "close_timeout", "exporter_and_spool_failed", "rejected")


def drop_label(reason: str) -> str:
    """The :data:`DROP_REASONS` label of an ``on_drop`` reason.  A reason is a
    label, optionally followed by ``": "`` and a detail; anything else counts
    as ``exporter_and_spool_failed`` (what a delivery drops otherwise)."""
    label = reason.partition(":")[0]
    return label if label in DROP_REASONS else "exporter_and_spool_failed"


@attrs.define
class DeliveryStats:
    """Record counts of one background exporter's delivery: ``exported``
    straight from the hand-off, ``spooled`` to disk, ``replayed`` from the
    spool, ``dropped`` (neither stored nor spooled, see ``on_drop``; includes
    ``rejected``), ``rejected`` (refused by the database for good and written
    to the dead-letter file), ``torn_lines`` (unreadable spool lines skipped)
    and ``failures`` (failed ``export`` calls)."""

    exported: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0
    torn_lines: int = 0
    failures: int = 0
    rejected: int = 0


@attrs.frozen(slots=True)
class PipelineStats:
    """The export pipeline of one tree, as counted in this process."""

    queued: int = 0
    """Items waiting in the collector's in-memory queue now."""
    dropped_queue_full: int = 0
    """Items dropped because the queue was full (or arrived after close)."""
    exporters: Mapping[str, DeliveryStats] = attrs.field(factory=lambda: MappingProxyType({}))
    """Per background exporter (by name): exported, spooled, replayed, dropped,
    rejected, torn_lines and failures (failed ``export`` calls)."""
    spool_pending_bytes: int = 0
    """Bytes of spooled batches not yet replayed, in every exporter's spool
    folder (files other processes left included)."""
    dropped_at_close: int = 0
    """Items still in the queue when ``close(timeout)`` ran out (counted, with
    a warning, as ``reason="close_timeout"``)."""

    @property
    def dropped(self) -> int:
        """Every record lost: queue full, close timeout, and each delivery's
        drops (exporter and spool failing, rejected by the database)."""
        delivered = sum(s.dropped for s in self.exporters.values())
        return self.dropped_queue_full + self.dropped_at_close + delivered

    @property
    def rejected(self) -> int:
        """Records the database refused for good (in the dead-letter files)."""
        return sum(s.rejected for s in self.exporters.values())

    @property
    def torn_lines(self) -> int:
        """Unreadable spool lines skipped (and counted) during replay."""
        return sum(s.torn_lines for s in self.exporters.values())

    @property
    def exported(self) -> int:
        """Records exported, straight or replayed from the spool (a record
        exported by two exporters counts twice)."""
        return sum(s.exported + s.replayed for s in self.exporters.values())


@attrs.frozen(slots=True)
class CloseResult:
    """What ``root.close()`` returns: whether every record made in this
    process is durable, and the counts.

    Counts are per exporter (a record two exporters receive counts twice) and
    cover the tree's whole life in this process, so that
    ``durable + dropped + pending`` accounts for every record handed to the
    pipeline (a spooled record that the database rejects when it is
    replayed counts as durable and as dropped).
    """

    durable: int = 0
    """Records stored by an exporter or written to the spool (``fsync``-ed),
    from where the next start replays them."""
    dropped: int = 0
    """Records lost, counted (see :attr:`PipelineStats.dropped` and the
    warnings): queue full, close timeout, exporter and spool failing, and
    records the database rejected (those are in the dead-letter file)."""
    pending: int = 0
    """Records neither durable nor dropped when ``close`` returned: still in
    the hands of a worker that had not finished when the timeout ran out.
    They may still be spooled or stored; nothing counts them later."""
    spool_pending_bytes: int = 0
    """Bytes left in the spool for the next start (0 once the database has
    everything)."""
    timed_out: bool = False
    """``close`` ran out of time before everything was stored or spooled."""

    @property
    def complete(self) -> bool:
        """Nothing was lost: every record is durable (stored or spooled)."""
        return self.dropped == 0 and self.pending == 0


def pipeline_stats(collector: Collector | None) -> PipelineStats:
    """The stats of ``collector`` (all zero for a tree without one)."""
    if collector is None:
        return PipelineStats()
    exporters: dict[str, DeliveryStats] = {}
    pending = 0
    for delivery in collector.deliveries:
        exporters[delivery.exporter.name] = delivery.stats
        if delivery.spool is not None:
            pending += delivery.spool.pending()
    return PipelineStats(
        queued=collector.queued,
        dropped_queue_full=collector.dropped,
        exporters=MappingProxyType(exporters),
        spool_pending_bytes=pending,
        dropped_at_close=collector.dropped_at_close,
    )
