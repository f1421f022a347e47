"""Building a tree's export pipeline: exporters, deliveries, the collector.

This is where the parts of :mod:`alamos.report` meet the tree.  It decides:

* the exporters (``exporters=`` plus the ``db=`` shorthand, one
  :class:`~alamos.report.sql.SQLExporter` storing every recorded level);
* the hand-off sizing: each delivery holds at most about ``max_queue``
  records in memory (never more than 64 batches), past that batches go to
  the spool, so memory stays bounded by ``max_queue`` even with a stalled
  exporter;
* the ``put`` the instruments are built with (:mod:`~alamos.experiment.sinks`):
  the hand-off's own ``put`` when every exporter is a background one, else a
  function that also feeds the synchronous exporters (the
  :class:`~alamos.testing.Recorder`) at once;
* the pollers (metric and report snapshots) and the drop metric, once the
  root exists.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from alamos.core.exporter import Exporter
from alamos.experiment.config import Config
from alamos.experiment.root import RootState
from alamos.experiment.sinks import make_put
from alamos.experiment.snapshots import MetricSnapshots, report_records
from alamos.experiment.statistics import attach_statistics
from alamos.report.pipeline.collector import Collector, Poller
from alamos.report.pipeline.delivery import Delivery
from alamos.report.pipeline.stats import DROP_REASONS, drop_label

if TYPE_CHECKING:
    from alamos.experiment.experiment import Experiment

__all__ = ["attach_root", "build_pipeline", "exporters_of"]

log = logging.getLogger("alamos.report")


def exporters_of(config: Config) -> list[Exporter]:
    """``exporters=`` plus the exporter of the ``db=`` shorthand."""
    out: list[Exporter] = list(config.exporters)
    if config.db:
        # Imported here: SQLAlchemy doubles the time of `import alamos`, and a
        # tree without a database never needs it.
        from alamos.report.sql import SQLExporter

        # The level filter already decides what is recorded; the shorthand
        # stores all of it (min_level="bench").  Pass exporters= for more control.
        out.append(SQLExporter(config.db, min_level="bench"))
    return out


def build_pipeline(config: Config, state: RootState) -> None:
    """Give ``state`` its collector (if it has background exporters) and its ``put``."""
    background = [e for e in state.exporters if not getattr(e, "synchronous", False)]
    # Recording rules run on the worker: a tree with rules has one, even
    # without a background exporter (alamos.experiment.rules).
    if background or config.rules is not None:
        pending = max(1, min(64, -(-config.max_queue // config.batch_size)))
        on_drop = _on_drop(state)
        deliveries = [
            Delivery(
                e,
                spool_dir=config.spool_dir / config.key / e.name,
                on_drop=on_drop,
                max_pending_batches=pending,
            )
            for e in background
        ]
        state.collector = Collector(
            deliveries,
            service=state.service,
            node=state.node,
            batch_size=config.batch_size,
            flush_interval=config.flush_interval,
            max_queue=config.max_queue,
            on_drop=on_drop,
        )
        state.collector.handoff.set_max_bytes(config.max_queue_bytes)
        attach_statistics(config, state, state.collector)
    state.put = make_put(state, state.sync_sinks)


def attach_root(config: Config, state: RootState, root: Experiment) -> None:
    """Wire the pieces that need the root: snapshots and the drop metric."""
    metrics = MetricSnapshots(root)
    state.final_snapshot = lambda: [*metrics.full(), *report_records(root)]
    collector = state.collector
    if collector is None:
        return
    # Every series at a flush (and close), only the changed ones periodically
    # (see snapshots.py); the flush one first, so a periodic one due at the
    # same turn finds nothing changed.
    collector.add_poller(Poller("metrics at flush", math.inf, metrics.full, at_flush=True))
    collector.add_poller(Poller("metrics", config.metrics_interval, metrics.changed))
    collector.add_poller(Poller("reports", config.report_interval, lambda: report_records(root)))
    # Only the queue, close running out of time, a failing spool or the database
    # refusing records can drop them.
    state.drop_counter = root.metrics.counter(
        "alamos_dropped_records",
        "Records alamos could not keep, by reason: queue_full, closed (recorded after close), "
        "close_timeout, exporter_and_spool_failed, rejected (refused by the database)",
        labelnames=["reason"],
    )
    # Every reason's series exists from the start, at 0: a query (or an
    # alert) on it then finds 0 rather than nothing until the first drop.
    for reason in DROP_REASONS:
        state.drop_counter.labels(reason)


def _on_drop(state: RootState) -> Callable[[int, str], None]:
    # The label is one of the few fixed DROP_REASONS (a label must have few
    # values); the free-text detail after it is only logged.
    def on_drop(count: int, reason: str) -> None:
        label = drop_label(reason)
        log.warning(
            "alamos dropped %d records (%s): see the README's 'What can be lost'", count, reason
        )
        counter = state.drop_counter
        if counter is not None:
            counter.labels(label).inc(count)

    return on_drop
