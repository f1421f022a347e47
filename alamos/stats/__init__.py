"""alamos.stats: windowed span statistics (count, errors, mean/m2, min/max,
sum and a quantile sketch per path, name and status and window), kept live
on the collector's worker and merged exactly across windows, processes and
nodes.

* :mod:`~alamos.stats.live`: the observer the tree runs on its collector's
  worker (``stats_interval=``, ``stats_attributes=`` of :func:`alamos.new`);
* :mod:`~alamos.stats.merging`: :func:`merge` (rows into one
  :class:`SpanStats`) and :func:`group_by`;
* :mod:`~alamos.stats.read`: :func:`read_stats` (rows from the database)
  and :func:`summarize` (what ``alamos stats`` prints);
* :mod:`~alamos.stats.sketch`: the DDSketch of the durations, stored as text.

It sits beside the instruments and the export side: it imports the ground
floor (:mod:`alamos.core`) and, to read stored statistics back, the storage
side (:mod:`alamos.report.sql`); the tree (:mod:`alamos.experiment`) wires it
to the collector as an observer.  See docs/stats.md.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alamos.stats.merging import AttributeStats, SpanStats, group_by, merge
    from alamos.stats.read import Summary, read_stats, summarize
    from alamos.stats.sketch import RELATIVE_ACCURACY

__all__ = [
    "RELATIVE_ACCURACY",
    "AttributeStats",
    "SpanStats",
    "Summary",
    "group_by",
    "merge",
    "read_stats",
    "summarize",
]

# Imported on first use: the tree imports alamos.stats.live only, and
# reading (SQLAlchemy) or the sketch's protobuf (50 ms) are not needed there.
_WHERE = {
    "RELATIVE_ACCURACY": "sketch",
    "AttributeStats": "merging",
    "SpanStats": "merging",
    "group_by": "merging",
    "merge": "merging",
    "Summary": "read",
    "read_stats": "read",
    "summarize": "read",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'alamos.stats' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"alamos.stats.{module}"), name)
