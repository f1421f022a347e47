"""The tree and layer pages' queries (SQLAlchemy Core: every value bound).

Percentiles are exact and nearest-rank: the p-th percentile of ``n``
durations is the ``ceil(p * n)``-th smallest (see :func:`_scan` for why
they are picked in Python rather than with window functions).  Time
series are counted in equal buckets of the window, ``(t - start) // step``
in integer arithmetic on both databases.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import attrs
from sqlalchemy import Connection, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from alamos.dashboard import logcounts, rollup, tiers
from alamos.dashboard.db import Filters, Window
from alamos.dashboard.search import status_is
from alamos.dashboard.sketch_cache import SketchCache
from alamos.report.query.logs import log_level_at_least
from alamos.report.sql.schema import experiments, logs, spans
from alamos.stats.sketch import BinSum, quantile

__all__ = [
    "LayerRow",
    "Series",
    "filter_options",
    "layer_logs",
    "layer_series",
    "recent_errors",
    "slowest_spans",
    "tree_rows",
]

#: Sparkline buckets on the tree page, chart buckets on the layer page.
SPARK_BUCKETS = 30
CHART_BUCKETS = 60


@attrs.define
class _Group:
    """The spans of one group (a path, a time bucket): count, errors, durations."""

    errors: int = 0
    durations: list[int] = attrs.field(factory=list)

    def rank(self, percent: int) -> int:
        """The nearest-rank ``percent``-th percentile: the ``ceil(percent/100 * n)``-th
        smallest duration (integer arithmetic, so 99% of 100 is the 99th)."""
        k = max(1, -(-percent * len(self.durations) // 100))
        return self.durations[k - 1]

    def add(self, other: _Group) -> None:
        self.durations += other.durations
        self.errors += other.errors

    def figures(self, summed: rollup.StatsGroup | None) -> tuple[int, int, int | None, int | None]:
        """Spans, errors, p50 and p99 (ns) of these spans plus, where the
        statistics cover the group, their rows ``summed`` (p50/p99 then from
        the sketches, within 1%)."""
        self.durations.sort()
        if summed is None:
            return len(self.durations), self.errors, self.rank(50), self.rank(99)
        summed.bins.add_durations(self.durations)
        p50, p99 = _sketch_ranks(summed.bins)
        return summed.count + len(self.durations), summed.errors + self.errors, p50, p99


def _scan(
    conn: Connection, key: ColumnElement[Any], where: Sequence[ColumnElement[bool]]
) -> dict[Any, _Group]:
    """The spans matching ``where``, grouped by ``key``, durations sorted.

    One pass over ``(key, duration, status)`` that the covering index
    ``ix_alamos_spans_path_start_cover`` answers without reading the table;
    the sort is Python's.  Measured on 41,670 spans (1 h of the 1,000,000 of
    scripts/dashboard_bench.py): 45 ms, where ROW_NUMBER() OVER (PARTITION BY
    path ORDER BY duration_ns) took 438 ms in SQLite (it sorts in a temp
    b-tree and then aggregates again).
    """
    s = spans.c
    groups: dict[Any, _Group] = {}
    rows = conn.execute(select(key, s.duration_ns, s.status).where(*where))
    for k, duration, status in rows:
        group = groups.get(k)
        if group is None:
            group = groups[k] = _Group()
        group.durations.append(duration)
        if status == "error":
            group.errors += 1
    for group in groups.values():
        group.durations.sort()
    return groups


@attrs.define
class LayerRow:
    """One experiment on the tree page, over the window."""

    path: str
    depth: int
    known: bool = False
    """Recorded in ``alamos_experiments`` (else only seen in spans or logs)."""
    spans: int = 0
    errors: int = 0
    p50_ns: int | None = None
    p99_ns: int | None = None
    logs: dict[str, int] = attrs.field(factory=dict)
    spark: list[int] = attrs.field(factory=list)
    rate: float = 0.0
    approx: bool = False
    """p50/p99 from the statistics' sketches: within 1% (see :mod:`~alamos.dashboard.rollup`)."""

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.spans if self.spans else None

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]


def filter_options(conn: Connection) -> dict[str, list[str]]:
    """The services and nodes to offer in the filters (from the experiments)."""
    e = experiments.c
    services = conn.execute(select(e.service).distinct().order_by(e.service)).scalars()
    nodes = conn.execute(select(e.node).distinct().order_by(e.node)).scalars()
    return {"service": list(services), "node": list(nodes)}


def tree_rows(
    conn: Connection,
    window: Window,
    f: Filters,
    now_ns: int | None = None,
    cache: SketchCache | None = None,
) -> list[LayerRow]:
    """Every experiment (and its ancestors) as a row, in tree order."""
    e, s = experiments.c, spans.c
    rows: dict[str, LayerRow] = {}

    def row(path: str) -> LayerRow:
        found = rows.get(path)
        if found is None:
            found = rows[path] = LayerRow(path, path.count("."))
        return found

    known = select(e.path).where(*f.conditions(experiments))
    for path in conn.execute(known).scalars():
        row(path).known = True
    now = time.time_ns() if now_ns is None else now_ns
    cov = rollup.cover(conn, window, now)
    step = window.step_ns(SPARK_BUCKETS)
    spark: dict[str, list[int]] = {}

    def count_spark(path: str, b: Any, n: int) -> None:
        line = spark.get(path)
        if line is None:
            line = spark[path] = [0] * SPARK_BUCKETS
        line[min(max(int(b), 0), SPARK_BUCKETS - 1)] += n

    # (where, time range) of each raw read: everything, or the paths the
    # statistics do not cover over the window and the covered ones at the edges.
    raw = [([], window)] if cov is None else cov.reads(window, s.path, rollup.paths_in(conn))
    groups: dict[str, _Group] = {}
    for extra, part in raw:
        where = [*extra, *f.spans_in(part)]
        for path, group in _scan(conn, s.path, where).items():
            groups.setdefault(path, _Group()).add(group)
        bucket = ((s.start_ns - window.start_ns) // step).label("b")
        counted = select(s.path, bucket, func.count().label("n")).where(*where)
        for r in conn.execute(counted.group_by(s.path, bucket)):
            count_spark(r.path, r.b, int(r.n))
    stats: dict[str, rollup.StatsGroup] = {}
    if cov is not None:
        found = tiers.pieces(conn, cov, f, window.start_ns, step)
        for p in found:
            count_spark(p.path, p.bucket, p.count)
        hours = tiers.whole_hours(found)
        sums = tiers.sketches(conn, cov, f, hours, SketchCache() if cache is None else cache)
        stats = tiers.grouped(hours, sums, lambda p: p.path)
    for path in groups.keys() | stats.keys():
        got = row(path)
        summed = stats.get(path)
        got.spans, got.errors, got.p50_ns, got.p99_ns = groups.get(path, _Group()).figures(summed)
        got.approx = summed is not None
        got.rate = got.spans / window.seconds
    for path, line in spark.items():
        row(path).spark = line
    for path, levels in logcounts.logs_by_level(conn, window, f, now).items():
        row(path).logs = levels
    for path in list(rows):
        parts = path.split(".")
        for i in range(1, len(parts)):
            row(".".join(parts[:i]))
    return [rows[p] for p in sorted(rows, key=lambda p: p.split("."))]


def _sketch_ranks(bins: BinSum) -> tuple[int | None, int | None]:
    """p50 and p99 of summed sketches, in whole ns (within 1%)."""
    sketch = bins.sketch()
    out = []
    for q in (0.5, 0.99):
        v = quantile(sketch, q)
        out.append(None if v is None else round(v))
    return out[0], out[1]


@attrs.frozen
class Series:
    """A chart: x in seconds since the epoch, and named y series."""

    x: list[float]
    series: dict[str, list[float | None]]
    approx: bool = False
    """Some values come from the statistics' sketches (within 1%)."""

    def to_json(self, title: str, unit: str) -> dict[str, Any]:
        return {"title": title, "unit": unit, "x": self.x, "series": self.series}


def layer_series(
    conn: Connection,
    path: str,
    window: Window,
    f: Filters,
    now_ns: int | None = None,
    cache: SketchCache | None = None,
) -> dict[str, Series]:
    """``latency`` (p50/p99 ms), ``throughput`` (spans/s) and ``errors`` per bucket."""
    s = spans.c
    step = window.step_ns(CHART_BUCKETS)
    bucket = ((s.start_ns - window.start_ns) // step).label("b")
    x = [(window.start_ns + i * step) / 1e9 for i in range(CHART_BUCKETS)]
    p50: list[float | None] = [None] * CHART_BUCKETS
    p99: list[float | None] = [None] * CHART_BUCKETS
    n: list[float | None] = [0.0] * CHART_BUCKETS
    err: list[float | None] = [0.0] * CHART_BUCKETS
    now = time.time_ns() if now_ns is None else now_ns
    cov = rollup.cover(conn, window, now, path=path)
    parts = [window] if cov is None else [Window("edge", lo, hi) for lo, hi in cov.spans(window)]
    raw: dict[int, _Group] = {}
    for part in parts:
        for b, group in _scan(conn, bucket, [s.path == path, *f.spans_in(part)]).items():
            raw.setdefault(min(max(int(b), 0), CHART_BUCKETS - 1), _Group()).add(group)
    stats: dict[int, rollup.StatsGroup] = {}
    if cov is not None:
        found = tiers.pieces(conn, cov, f, window.start_ns, step, path=path)
        held = SketchCache() if cache is None else cache
        sums = tiers.sketches(conn, cov, f, found, held, (window.start_ns, step), path=path)
        stats = tiers.grouped(found, sums, lambda p: min(max(p.bucket, 0), CHART_BUCKETS - 1))
    for i in raw.keys() | stats.keys():
        count, errors, lo, hi = raw.get(i, _Group()).figures(stats.get(i))
        p50[i] = None if lo is None else lo / 1e6
        p99[i] = None if hi is None else hi / 1e6
        n[i] = count / (step / 1e9)
        err[i] = float(errors)
    return {
        "latency": Series(x, {"p50 ms": p50, "p99 ms": p99}, approx=bool(stats)),
        "throughput": Series(x, {"spans/s": n}),
        "errors": Series(x, {"errors": err}),
    }


_SPAN_COLUMNS = (
    spans.c.trace_id,
    spans.c.span_id,
    spans.c.name,
    spans.c.start_ns,
    spans.c.duration_ns,
    spans.c.status,
    spans.c.error,
    spans.c.service,
    spans.c.node,
)


def slowest_spans(
    conn: Connection,
    path: str,
    window: Window,
    f: Filters,
    limit: int = 10,
    now_ns: int | None = None,
) -> list[Any]:
    """The ``limit`` longest spans of ``path`` in the window (longest first,
    then by trace and span id).  Over a long window, only the statistics
    windows that can hold them are read (:func:`rollup.slowest_windows`)."""
    s = spans.c
    now = time.time_ns() if now_ns is None else now_ns
    cov = rollup.cover(conn, window, now, path=path)
    found = None if cov is None else rollup.slowest_windows(conn, cov, f, path, limit)
    order = (s.duration_ns.desc(), s.trace_id, s.span_id)
    if cov is None or found is None:
        query = select(*_SPAN_COLUMNS).where(s.path == path, *f.spans_in(window))
        return list(conn.execute(query.order_by(*order).limit(limit)))
    ranges, floor = found
    parts = [Window("part", lo, hi) for lo, hi in (*ranges, *cov.spans(window))]
    rows: list[Any] = []
    for part in parts:
        where = [s.path == path, *f.spans_in(part)]
        if (part.start_ns, part.end_ns) in ranges:
            where.append(s.duration_ns >= floor)
        rows += conn.execute(select(*_SPAN_COLUMNS).where(*where).order_by(*order).limit(limit))
    rows.sort(key=lambda r: (-r.duration_ns, r.trace_id, r.span_id))
    return rows[:limit]


def recent_errors(
    conn: Connection, path: str, window: Window, f: Filters, limit: int = 10
) -> list[Any]:
    s = spans.c
    query = (
        select(*_SPAN_COLUMNS)
        .where(s.path == path, status_is("error"), *f.spans_in(window))
        .order_by(s.start_ns.desc(), s.trace_id, s.span_id)
        .limit(limit)
    )
    return list(conn.execute(query))


def layer_logs(
    conn: Connection,
    path: str,
    window: Window,
    f: Filters,
    log_level: str = "",
    text: str = "",
    limit: int = 100,
) -> list[Any]:
    """The newest logs of ``path``: at ``log_level`` or above, holding ``text``."""
    lg = logs.c
    where = [lg.path == path, *f.logs_in(window)]
    if log_level:
        where.append(lg.level.in_(log_level_at_least(log_level)))
    if text:
        where.append(lg.message.contains(text, autoescape=True))
    query = (
        select(lg.id, lg.ts_ns, lg.level, lg.message, lg.trace_id, lg.span_id, lg.service)
        .where(*where)
        .order_by(lg.ts_ns.desc(), lg.id)
        .limit(limit)
    )
    return list(conn.execute(query))


def exists_path(conn: Connection, path: str) -> bool:
    """True if ``path`` is an experiment, or has spans or logs."""
    for table in (experiments, spans, logs):
        q = select(literal(1)).where(table.c.path == path).limit(1)
        if conn.execute(q).first() is not None:
            return True
    return False
