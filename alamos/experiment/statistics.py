"""Wiring the live statistics (:mod:`alamos.stats`) to a tree's collector.

The statistics run only where there is a collector, i.e. when the tree has a
background exporter (a database): they are rows for the database, computed
on the collector's worker.  A tree whose only exporters are synchronous (the
test :class:`~alamos.testing.Recorder`) has no worker, and computes none: its
instrumented thread would pay for them.

* the observer counts every batch of finished spans and logs the worker builds;
* a poller emits the windows, and the hours, that have ended (every
  ``stats_interval``, at most every 5 s, so a window's rows follow its end
  by at most that);
* a flush poller emits every window held at each flush, so a flush makes the
  statistics of everything recorded before it durable (an hour's row waits
  for its hour to end);
* at close, the worker asks the observer once more after its last drain:
  every window, and the part of the current hour it saw.
"""

from __future__ import annotations

import math
import time

from alamos.experiment.config import Config
from alamos.experiment.root import RootState
from alamos.report.pipeline.collector import Collector, Observer, Poller

__all__ = ["EMIT_EVERY", "attach_statistics"]

#: Most seconds between two checks for windows that have ended.
EMIT_EVERY = 5.0


def attach_statistics(config: Config, state: RootState, collector: Collector) -> None:
    """Count ``collector``'s spans into windowed statistics (see the module doc)."""
    interval = config.stats_interval
    if interval is None:
        return
    # Imported here: `import alamos` stays without ddsketch (a tree without a
    # background exporter never needs it).
    from alamos.stats.live import LiveStats

    live = LiveStats(
        round(interval * 1e9),
        lambda: (state.service, state.node),
        config.stats_attributes,
    )
    collector.add_observer(Observer("statistics", live.observe, at_close=live.close))
    collector.add_poller(Poller("statistics at flush", math.inf, live.emit, at_flush=True))
    collector.add_poller(
        Poller("statistics", min(interval, EMIT_EVERY), lambda: live.emit(time.time_ns()))
    )
