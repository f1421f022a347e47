"""A layer's metrics as charts, and its latest reports.

Metric snapshots (``alamos_metrics``) hold each series' value at a time:
cumulative for counters and histograms.  So a counter is charted as its
rate between consecutive snapshots, a gauge as its value, and a histogram as
the p50 and p99 of the observations made *between* two snapshots,
interpolated inside the bucket as Prometheus' ``histogram_quantile`` does.
A counter that goes down was reset (the process restarted): that interval
counts from zero.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import attrs
from sqlalchemy import Connection, Text, cast, select

from alamos.dashboard.db import Window
from alamos.report.query.decode import decode_json
from alamos.report.sql.schema import metrics, reports

__all__ = ["MetricChart", "histogram_quantile", "latest_reports", "metric_charts"]

#: At most this many snapshots are read for one layer's charts.
MAX_SNAPSHOTS = 20_000


@attrs.frozen
class MetricChart:
    """One metric series (a name and a label set) as a chart."""

    name: str
    kind: str
    labels: str
    unit: str
    x: list[float]
    series: dict[str, list[float | None]]

    def to_json(self) -> dict[str, Any]:
        title = self.name + (f" {{{self.labels}}}" if self.labels else "")
        return {"title": title, "unit": self.unit, "x": self.x, "series": self.series}


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q`` quantile of observations counted in cumulative ``buckets``
    (upper bound -> count), linear inside the bucket; ``None`` if empty."""
    bounds = sorted(buckets)
    if not bounds:
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower  # the +Inf bucket: its lower bound, as Prometheus does
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside > 0 else 1.0)
        lower, below = bound, count
    return lower


def _bounds(raw: object) -> dict[float, float]:
    out: dict[float, float] = {}
    if isinstance(raw, dict):
        for le, count in raw.items():
            try:
                out[float(le)] = float(count)
            except (TypeError, ValueError):
                continue
    return out


def metric_charts(conn: Connection, path: str, window: Window) -> list[MetricChart]:
    """Every metric series of ``path`` with a snapshot in the window."""
    m = metrics.c
    query = (
        select(
            m.name,
            m.kind,
            cast(m.labels, Text).label("labels"),
            m.ts_ns,
            m.value,
            cast(m.buckets, Text).label("buckets"),
            m.node,
        )
        .where(m.path == path, m.ts_ns >= window.start_ns, m.ts_ns < window.end_ns)
        .order_by(m.name, m.ts_ns, m.id)
        .limit(MAX_SNAPSHOTS)
    )
    groups: dict[tuple[str, str, str, str], list[Any]] = {}
    for r in conn.execute(query):
        labels = decode_json(r.labels)
        text = ""
        if isinstance(labels, dict):
            text = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
        groups.setdefault((r.name, r.kind, text, r.node), []).append(r)
    nodes = {k[3] for k in groups}
    charts = []
    for (name, kind, labels, node), rows in sorted(groups.items()):
        shown = labels if len(nodes) < 2 else ", ".join(x for x in (labels, f"node={node}") if x)
        charts.append(_chart(name, kind, shown, rows))
    return charts


def _chart(name: str, kind: str, labels: str, rows: list[Any]) -> MetricChart:
    if kind == "gauge":
        x = [r.ts_ns / 1e9 for r in rows]
        return MetricChart(name, kind, labels, "value", x, {"value": [r.value for r in rows]})
    x, rates, p50, p99 = [], [], [], []
    for before, after in itertools.pairwise(rows):
        dt = (after.ts_ns - before.ts_ns) / 1e9
        if dt <= 0:
            continue
        x.append(after.ts_ns / 1e9)
        if kind == "histogram":
            old, new = _bounds(decode_json(before.buckets)), _bounds(decode_json(after.buckets))
            reset = any(new.get(b, 0.0) < c for b, c in old.items())
            delta = new if reset else {b: c - old.get(b, 0.0) for b, c in new.items()}
            p50.append(histogram_quantile(0.5, delta))
            p99.append(histogram_quantile(0.99, delta))
        else:
            a, b = before.value or 0.0, after.value or 0.0
            rates.append((b if b < a else b - a) / dt)
    if kind == "histogram":
        return MetricChart(name, kind, labels, "quantile", x, {"p50": p50, "p99": p99})
    return MetricChart(name, kind, labels, "per second", x, {"rate/s": rates})


def latest_reports(conn: Connection, path: str) -> list[tuple[str, int, Any]]:
    """``(key, ts_ns, report)``: the newest report of each key of ``path``."""
    r = reports.c
    query = (
        select(r.key, r.ts_ns, cast(r.report, Text).label("report"))
        .where(r.path == path)
        .order_by(r.ts_ns.desc(), r.id)
        .limit(200)
    )
    seen: dict[str, tuple[str, int, Any]] = {}
    for row in conn.execute(query):
        if row.key not in seen:
            seen[row.key] = (row.key, int(row.ts_ns), decode_json(row.report))
    return sorted(seen.values())
