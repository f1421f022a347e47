"""``root.stats()``: the counters of a tree's export pipeline.

A snapshot of what the collector and each background exporter's delivery
have done in this process: records exported, spooled, replayed, dropped,
torn spool lines skipped at replay, and what is still waiting (in the queue,
or in the spool).  Useful in tests, health checks and dashboards; reading it
takes the pipeline's locks briefly and scans the spool folders, so it is not
meant for a hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

import attrs

from alamos.report.pipeline.delivery import DeliveryStats

if TYPE_CHECKING:
    from alamos.report.pipeline.collector import Collector

__all__ = ["DeliveryStats", "PipelineStats", "pipeline_stats"]


@attrs.frozen(slots=True)
class PipelineStats:
    """The export pipeline of one tree, as counted in this process."""

    queued: int = 0
    """Items waiting in the collector's in-memory queue now."""
    dropped_queue_full: int = 0
    """Items dropped because the queue was full (or arrived after close)."""
    exporters: Mapping[str, DeliveryStats] = attrs.field(factory=lambda: MappingProxyType({}))
    """Per background exporter (by name): exported, spooled, replayed, dropped,
    torn_lines and failures (failed ``export`` calls)."""
    spool_pending_bytes: int = 0
    """Bytes of spooled batches not yet replayed, in every exporter's spool
    folder (files other processes left included)."""

    @property
    def dropped(self) -> int:
        """Every record lost: queue full, plus exporter-and-spool failures."""
        return self.dropped_queue_full + sum(s.dropped for s in self.exporters.values())

    @property
    def torn_lines(self) -> int:
        """Unreadable spool lines skipped (and counted) during replay."""
        return sum(s.torn_lines for s in self.exporters.values())

    @property
    def exported(self) -> int:
        """Records exported, straight or replayed from the spool (a record
        exported by two exporters counts twice)."""
        return sum(s.exported + s.replayed for s in self.exporters.values())


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
    )
