"""Metric and report snapshots of a tree, as records.

The tree registers these with its collector as pollers (metrics every
``metrics_interval`` and at every flush, reports every ``report_interval``),
and takes them once more at close.  They walk the tree, which is why they
live here, in the composition root, and not in the pipeline.

Metric snapshots come from one :class:`MetricSnapshots` per tree, which
remembers what it exported last:

* the periodic snapshot (:meth:`MetricSnapshots.changed`) exports only the
  series whose value changed since the previous snapshot: a server with
  thousands of idle series does not write them all again every 10 s;
* a flush and close (:meth:`MetricSnapshots.full`) export every series: they
  are the points where the caller asks for the current state to be durable,
  so the database then holds every series' value at that instant (the last
  one is the final value of each series);
* the first snapshot of a metric (a new tree, or a metric just enabled)
  exports all of its series, since nothing was exported before.

The memory of the last values is one small tuple per series, so it is
bounded like the series themselves: at most ``cardinality_limit`` + 1 per
metric (see :mod:`alamos.metrics.metric`).  A series that disappears
(``prometheus.remove``) or a metric that is filtered out is forgotten.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from time import time_ns
from types import MappingProxyType
from typing import TYPE_CHECKING

from alamos.core.ids import new_record_id
from alamos.core.records import MetricRecord, ReportRecord

if TYPE_CHECKING:
    from alamos.experiment.experiment import Experiment
    from alamos.metrics.metric import Sample

__all__ = ["MetricSnapshots", "report_records"]

#: What a NaN value is compared as: NaN != NaN, and an unchanged NaN gauge is unchanged.
_NAN = "NaN"

#: One series' value as compared between snapshots.
_Values = tuple[Hashable, ...]


class MetricSnapshots:
    """The metric snapshots of one tree, remembering the last exported value
    of every series (thread-safe: the worker and ``close`` both take them)."""

    def __init__(self, root: Experiment) -> None:
        self._root = root
        self._lock = threading.Lock()
        #: (path, metric name) → {label values: the values last exported}.
        self._last: dict[tuple[str, str], dict[tuple[tuple[str, str], ...], _Values]] = {}

    def changed(self) -> list[MetricRecord]:
        """The series that changed since the previous snapshot (all of a
        metric's series the first time)."""
        return self._take(full=False)

    def full(self) -> list[MetricRecord]:
        """Every series of every enabled metric."""
        return self._take(full=True)

    def _take(self, full: bool) -> list[MetricRecord]:
        root = self._root
        ts = time_ns()
        service, node = root.service, root.node
        out: list[MetricRecord] = []
        with self._lock:
            last = self._last
            for exp in root.walk():
                for metric in exp.metrics:
                    key = (exp.path, metric.name)
                    if not metric.enabled:
                        last.pop(key, None)
                        continue
                    before = last.get(key, {})
                    now: dict[tuple[tuple[str, str], ...], _Values] = {}
                    for s in metric.samples():
                        labels = s["labels"]
                        series = tuple(labels.items())
                        values = _values(s)
                        now[series] = values
                        if not full and before.get(series) == values:
                            continue
                        out.append(
                            MetricRecord(
                                new_record_id(),
                                ts,
                                exp.path,
                                metric.name,
                                metric.kind,
                                MappingProxyType(dict(labels)),
                                s["value"],
                                s["sum"],
                                s["count"],
                                MappingProxyType(s["buckets"])
                                if s["buckets"] is not None
                                else None,
                                service,
                                node,
                                metric.level,
                            )
                        )
                    last[key] = now  # series gone since are forgotten
        return out


def _values(s: Sample) -> _Values:
    """What decides whether a series changed: value, sum, count and buckets
    (a bucket's bounds are fixed, so its counts in order suffice)."""
    value, total = s["value"], s["sum"]
    buckets = s["buckets"]
    return (
        _NAN if value != value else value,
        _NAN if total != total else total,
        s["count"],
        None if buckets is None else tuple(buckets.values()),
    )


def report_records(root: Experiment) -> list[ReportRecord]:
    """One record per enabled report provider in the tree."""
    ts = time_ns()
    return [
        ReportRecord(new_record_id(), ts, path, key, report, root.service, root.node, level)
        for path, key, level, report in root.report_entries()
    ]
