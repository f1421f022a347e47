"""Metric and report snapshots of a tree, as records.

The tree registers these with its collector as pollers (metrics every
``metrics_interval`` and at every flush, reports every ``report_interval``),
and takes them once more at close.  They walk the tree, which is why they
live here, in the composition root, and not in the pipeline.
"""

from __future__ import annotations

from time import time_ns
from types import MappingProxyType
from typing import TYPE_CHECKING

from alamos.core.ids import new_record_id
from alamos.core.records import MetricRecord, ReportRecord

if TYPE_CHECKING:
    from alamos.experiment.experiment import Experiment

__all__ = ["metric_records", "report_records"]


def metric_records(root: Experiment) -> list[MetricRecord]:
    """One record per enabled metric and label set in the tree."""
    ts = time_ns()
    service, node = root.service, root.node
    out: list[MetricRecord] = []
    for exp in root.walk():
        for metric in exp.metrics:
            if not metric.enabled:
                continue
            for s in metric.samples():
                out.append(
                    MetricRecord(
                        new_record_id(),
                        ts,
                        exp.path,
                        metric.name,
                        metric.kind,
                        MappingProxyType(dict(s["labels"])),
                        s["value"],
                        s["sum"],
                        s["count"],
                        MappingProxyType(s["buckets"]) if s["buckets"] is not None else None,
                        service,
                        node,
                        metric.level,
                    )
                )
    return out


def report_records(root: Experiment) -> list[ReportRecord]:
    """One record per enabled report provider in the tree."""
    ts = time_ns()
    return [
        ReportRecord(new_record_id(), ts, path, key, report, root.service, root.node, level)
        for path, key, level, report in root.report_entries()
    ]
