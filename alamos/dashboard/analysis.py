"""The analysis page's sections besides the frame budgets: the span
statistics of the window, the stored spikes, and the recording rules' latest
series.

* **Statistics**: the rows of ``alamos_span_stats`` whose windows overlap
  the page's window (of a layer and the ones below it, if one is chosen),
  merged per span name and path (or per path) by :func:`alamos.stats.summarize`,
  with the figures ``alamos stats`` prints.
* **Spikes**: the newest rows of ``alamos_spikes`` whose frame started in
  the window (``alamos budgets --store-spikes`` and ``budget_report(...,
  store_spikes=True)`` write them), each linking to its trace.
* **Recording rules**: for each rule of the ``--rules`` file, the latest
  sample in the window of each of its series in ``alamos_metrics``: the live
  rows (the tree's root path, service and node) and the backfilled ones
  (service ``alamos-rules``) alike, each series told apart by its path,
  service, node and labels.

A database written before these tables existed shows a note in the section,
not an error page.
"""

from __future__ import annotations

import json
import math
from typing import Any

import attrs
from sqlalchemy import Connection, Text, cast, func, inspect, select

from alamos.dashboard.db import Window
from alamos.report.query import StoredSpike
from alamos.report.query.decode import decode_json
from alamos.report.sql.schema import experiments, metrics, span_stats, spans, spikes
from alamos.rules import Rule, RuleSet
from alamos.stats import read_stats, summarize

__all__ = [
    "MAX_BUDGET_FRAMES",
    "MAX_RULE_SAMPLES",
    "MAX_SPIKES",
    "MAX_STAT_LINES",
    "BudgetScope",
    "RuleSeries",
    "RuleView",
    "StatLine",
    "StatsSection",
    "budget_scope",
    "frame_names",
    "layer_paths",
    "rule_views",
    "statistics",
    "stored_spikes",
]

#: The frame budgets cover at most this many frames, the window's newest
#: (``?frames=all``: every one).  The walk below each frame is what the
#: analysis page spends its time on: 8,334 frames (41,670 spans) of 1 h on
#: scripts/dashboard_bench.py took 0.5 to 0.9 s; 2,000 take a quarter of it.
MAX_BUDGET_FRAMES = 2000
#: Root span names offered as frames (the most frequent in the window).
MAX_FRAME_NAMES = 30
#: Lines of the statistics table (busiest first); the rest are counted.
MAX_STAT_LINES = 100
#: Stored spikes listed (newest first); the rest are counted.
MAX_SPIKES = 50
#: Samples read per rule (newest first) to find each series' latest.
MAX_RULE_SAMPLES = 20_000


def frame_names(conn: Connection, window: Window) -> list[str]:
    """The most frequent root span names of ``window``: the frames to offer."""
    s = spans.c
    n = func.count().label("n")
    query = (
        select(s.name, n)
        .where(
            s.parent_span_id.is_(None), s.start_ns >= window.start_ns, s.start_ns < window.end_ns
        )
        .group_by(s.name)
        .order_by(n.desc(), s.name)
        .limit(MAX_FRAME_NAMES)
    )
    return [r.name for r in conn.execute(query)]


def layer_paths(conn: Connection) -> list[str]:
    """Every experiment path (for the statistics' layer filter)."""
    e = experiments.c
    return [r.path for r in conn.execute(select(e.path).order_by(e.path))]


@attrs.frozen
class BudgetScope:
    """Which frames of the window the budgets cover."""

    since_ns: int
    """The frames that started from here to the window's end."""
    frames: int
    """Frames of that name in the whole window."""
    limited: bool
    """True when only the newest :data:`MAX_BUDGET_FRAMES` are covered."""


def budget_scope(conn: Connection, frame: str, window: Window, limit: int | None) -> BudgetScope:
    """The newest ``limit`` frames named ``frame`` in ``window`` (``None``:
    all): from the start of the ``limit``-th newest on (two index range reads
    on ``(name, start_ns)``)."""
    s = spans.c
    where = (s.name == frame, s.start_ns >= window.start_ns, s.start_ns < window.end_ns)
    total = int(conn.execute(select(func.count()).select_from(spans).where(*where)).scalar_one())
    if limit is None or total <= limit:
        return BudgetScope(window.start_ns, total, False)
    nth = conn.execute(
        select(s.start_ns).where(*where).order_by(s.start_ns.desc()).offset(limit - 1).limit(1)
    ).scalar_one()
    return BudgetScope(int(nth), total, True)


@attrs.frozen
class StatLine:
    """One line of the statistics table (times in ns)."""

    path: str
    name: str | None
    count: int
    errors: int
    error_rate: float
    mean_ns: float
    stddev_ns: float | None
    p50_ns: float | None
    p99_ns: float | None
    max_ns: int | None


@attrs.frozen
class StatsSection:
    lines: list[StatLine]
    rows: int
    """Statistics rows merged."""
    windows: int
    """Distinct statistics windows among them."""
    more: int
    """Lines left out (past :data:`MAX_STAT_LINES`)."""
    missing: str | None = None
    """Why there is nothing to show (no statistics table), or None."""


def statistics(
    conn: Connection, url: str, window: Window, path: str | None, by: str
) -> StatsSection:
    """The statistics of ``window`` (of ``path`` and below), per name or path
    (``by``); ``conn`` checks that the table is there."""
    if not inspect(conn).has_table(span_stats.name):
        return StatsSection(
            [],
            0,
            0,
            0,
            missing="This database has no alamos_span_stats table: it was written by an "
            "alamos before the span statistics.",
        )
    rows = read_stats(url, path=path, since_ns=window.start_ns, until_ns=window.end_ns)
    summaries = summarize(rows, by="path" if by == "path" else "name")
    lines = []
    for s in summaries[:MAX_STAT_LINES]:
        st = s.stats
        stddev = st.stddev_ns
        lines.append(
            StatLine(
                path=s.path,
                name=s.name,
                count=st.count,
                errors=st.errors,
                error_rate=st.error_rate,
                mean_ns=st.mean_ns,
                stddev_ns=None if math.isnan(stddev) else stddev,
                p50_ns=st.quantile(0.5),
                p99_ns=st.quantile(0.99),
                max_ns=st.max_ns,
            )
        )
    windows = len({(r.window_start_ns, r.window_ns) for r in rows})
    return StatsSection(lines, len(rows), windows, max(0, len(summaries) - MAX_STAT_LINES))


def stored_spikes(conn: Connection, window: Window) -> tuple[list[StoredSpike], int] | None:
    """The newest :data:`MAX_SPIKES` stored spikes whose frame started in
    ``window``, and how many there are; None without an ``alamos_spikes`` table."""
    if not inspect(conn).has_table(spikes.name):
        return None
    c = spikes.c
    where = (c.start_ns >= window.start_ns, c.start_ns < window.end_ns)
    total = conn.execute(select(func.count()).select_from(spikes).where(*where)).scalar_one()
    rows = conn.execute(
        select(spikes)
        .where(*where)
        .order_by(c.start_ns.desc(), c.trace_id, c.span_id)
        .limit(MAX_SPIKES)
    )
    found = [StoredSpike.from_row(r) for r in rows]
    return found, int(total)


@attrs.frozen
class RuleSeries:
    """The latest sample of one series of a rule."""

    path: str
    service: str
    node: str
    labels: str
    """``key="value", ...`` sorted by key."""
    ts_ns: int
    value: float | None
    """A counter's value."""
    count: float | None
    """A histogram's count of observations."""
    sum: float | None
    """A histogram's sum (seconds)."""

    @property
    def mean(self) -> float | None:
        if self.count is None or self.sum is None or self.count <= 0:
            return None
        return self.sum / self.count


@attrs.frozen
class RuleView:
    """A rule of the ``--rules`` file and its series' latest samples."""

    rule: Rule
    series: list[RuleSeries]
    cut: bool
    """True if more than :data:`MAX_RULE_SAMPLES` samples were in the window
    (series whose latest sample is older than those are not shown)."""


def _labels(raw: Any) -> str:
    value = decode_json(raw)
    if not isinstance(value, dict):
        return ""
    return ", ".join(f"{k}={json.dumps(str(v))}" for k, v in sorted(value.items()))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def rule_views(conn: Connection, rules: RuleSet, window: Window) -> list[RuleView]:
    """Each rule with the latest sample in ``window`` of each of its series."""
    m = metrics.c
    out = []
    for rule in rules:
        query = (
            select(
                m.ts_ns,
                m.path,
                m.service,
                m.node,
                cast(m.labels, Text).label("labels"),
                m.value,
                m.sum,
                m.count,
            )
            .where(m.name == rule.metric, m.ts_ns >= window.start_ns, m.ts_ns < window.end_ns)
            .order_by(m.ts_ns.desc(), m.id)
            .limit(MAX_RULE_SAMPLES + 1)
        )
        rows = conn.execute(query).all()
        latest: dict[tuple[str, str, str, str], RuleSeries] = {}
        for r in rows[:MAX_RULE_SAMPLES]:
            labels = _labels(r.labels)
            key = (r.path, r.service, r.node, labels)
            if key in latest:
                continue
            histogram = rule.kind == "histogram"
            latest[key] = RuleSeries(
                path=r.path,
                service=r.service,
                node=r.node,
                labels=labels,
                ts_ns=int(r.ts_ns),
                value=None if histogram else _float(r.value),
                count=_float(r.count) if histogram else None,
                sum=_float(r.sum) if histogram else None,
            )
        series = sorted(latest.values(), key=lambda s: (s.path, s.service, s.node, s.labels))
        out.append(RuleView(rule, series, len(rows) > MAX_RULE_SAMPLES))
    return out
