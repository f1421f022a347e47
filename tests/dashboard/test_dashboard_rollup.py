"""The tree and layer queries over long windows, from the span statistics,
against the same queries over the raw spans, on a real SQLite file and a
real PostgreSQL database: counts and errors exact, p50/p99 within 1%, the
edges and the paths without statistics read from the spans, the slowest
spans exact, the cache of summed sketches checked against the rows."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import create_engine

from alamos.core.level import Level
from alamos.core.records import SpanRecord
from alamos.dashboard import queries, rollup
from alamos.dashboard.db import Database, Filters, Window
from alamos.dashboard.sketch_cache import SketchCache
from alamos.report.sql import SQLExporter
from alamos.stats.live import LiveStats

MINUTE = 60_000_000_000
T0 = 1_700_000_040_000_000_000  # a minute boundary
HOURS = 3
#: The page's window: starts 20 s into the first minute, ends 6 min after the
#: last span (so the last minutes are read from the spans).
WINDOW = Window("custom", T0 + 20 * 10**9, T0 + HOURS * 60 * MINUTE + 6 * MINUTE)
NOW = WINDOW.end_ns


def _span(i: int, path: str, start: int, duration: int, status: str) -> SpanRecord:
    return SpanRecord(
        f"{i + 1:032x}",
        f"{i + 1:016x}",
        None,
        path,
        "op",
        Level.PROD,
        start,
        start + duration,
        status,
        "E" if status == "error" else None,
        {},
        (),
        "svc",
        "n1",
    )


def _workload() -> tuple[list[SpanRecord], list[SpanRecord]]:
    """``(with statistics, without)``: 6 spans a minute of ``svc.api`` over
    3 h (durations 1..997 ms, one error in 7), and of ``svc.db``, whose tree
    kept no statistics, 2 a minute."""
    covered, bare = [], []
    i = 0
    for m in range(HOURS * 60):
        for k in range(6):
            start = T0 + m * MINUTE + k * 10 * 10**9
            duration = ((m * 6 + k) * 37 % 997 + 1) * 1_000_000
            covered.append(_span(i, "svc.api", start, duration, "error" if i % 7 == 0 else "ok"))
            i += 1
        for k in range(2):
            start = T0 + m * MINUTE + k * 30 * 10**9
            bare.append(_span(i, "svc.db", start, (m % 50 + 1) * 100_000, "ok"))
            i += 1
    return covered, bare


@pytest.fixture
def url(db_url: str) -> str:
    covered, bare = _workload()
    exporter = SQLExporter(db_url)
    exporter.export([*covered, *bare])
    live = LiveStats(MINUTE, lambda: ("svc", "n1"))
    for j in range(0, len(covered), 50):
        live.observe(covered[j : j + 50])
    exporter.export(live.emit())
    exporter.close()
    return db_url


def _exact(durations: list[int], percent: int) -> int:
    ordered = sorted(durations)
    return ordered[max(1, -(-percent * len(ordered) // 100)) - 1]


def test_long_window_counts_exact_and_percentiles_within_one_percent(url: str) -> None:
    covered, bare = _workload()
    in_window = [s for s in covered if WINDOW.start_ns <= s.start_ns < WINDOW.end_ns]
    engine = create_engine(Database(url).url)
    with engine.connect() as conn:
        cov = rollup.cover(conn, WINDOW, NOW)
        assert cov is not None
        assert cov.paths == frozenset({"svc.api"})
        # b: 2 min (LAG_NS) before now, on a minute
        assert (cov.a_ns, cov.b_ns) == (T0 + MINUTE, T0 + (HOURS * 60 + 4) * MINUTE)
        rows = {r.path: r for r in queries.tree_rows(conn, WINDOW, Filters(), now_ns=NOW)}
    engine.dispose()
    api = rows["svc.api"]
    assert len(in_window) == 1078  # 3 h of 6 a minute, less the first 2 (before 20 s)
    assert (api.spans, api.errors) == (1078, sum(s.status == "error" for s in in_window))
    assert api.errors == 153
    assert api.approx is True
    durations = [s.end_ns - s.start_ns for s in in_window]
    for got, percent in ((api.p50_ns, 50), (api.p99_ns, 99)):
        assert got is not None
        assert abs(got - _exact(durations, percent)) <= 0.01 * _exact(durations, percent)
    assert sum(api.spark) == 1078
    db = rows["svc.db"]  # no statistics: read from the spans, exact
    bare_in = [s.end_ns - s.start_ns for s in bare if s.start_ns >= WINDOW.start_ns]
    assert (db.spans, db.approx) == (359, False)  # 2 a minute, less the first (before 20 s)
    assert db.p99_ns == _exact(bare_in, 99)


def test_short_window_reads_the_spans(url: str) -> None:
    engine = create_engine(Database(url).url)
    short = Window("custom", T0, T0 + 60 * MINUTE)
    with engine.connect() as conn:
        assert rollup.cover(conn, short, NOW) is None
        api = {r.path: r for r in queries.tree_rows(conn, short, Filters(), now_ns=NOW)}["svc.api"]
    engine.dispose()
    assert (api.spans, api.approx) == (360, False)


def test_layer_series_and_slowest_spans_match_the_spans(url: str) -> None:
    engine = create_engine(Database(url).url)
    cache = SketchCache()
    with engine.connect() as conn:
        series = queries.layer_series(conn, "svc.api", WINDOW, Filters(), now_ns=NOW, cache=cache)
        slowest = queries.slowest_spans(conn, "svc.api", WINDOW, Filters(), now_ns=NOW)
        # The same window seen as "now" long after: raw scan of everything.
        raw = queries.slowest_spans(conn, "svc.api", WINDOW, Filters(), now_ns=0)
    engine.dispose()
    assert series["latency"].approx is True
    step = WINDOW.step_ns(queries.CHART_BUCKETS) / 1e9
    total = sum(v or 0.0 for v in series["throughput"].series["spans/s"]) * step
    assert math.isclose(total, 1078)
    assert sum(v or 0.0 for v in series["errors"].series["errors"]) == 153
    assert [(r.trace_id, r.duration_ns) for r in slowest] == [
        (r.trace_id, r.duration_ns) for r in raw
    ]
    assert len(slowest) == 10
    assert slowest[0].duration_ns == 997_000_000


def test_the_cache_is_used_and_a_late_row_makes_a_unit_stale(url: str) -> None:
    engine = create_engine(Database(url).url)
    cache = SketchCache()
    with engine.connect() as conn:
        first = queries.tree_rows(conn, WINDOW, Filters(), now_ns=NOW, cache=cache)
        # One piece an hour (no hour rows here: the minutes' sums): the part
        # of the first hour from minute 1 on, two whole hours, and the 4
        # covered minutes of the last.
        assert cache.misses == 4 and cache.hits == 0
        again = queries.tree_rows(conn, WINDOW, Filters(), now_ns=NOW, cache=cache)
        assert cache.hits == 4
    assert [(r.path, r.spans, r.p50_ns, r.p99_ns) for r in first] == [
        (r.path, r.spans, r.p50_ns, r.p99_ns) for r in again
    ]
    # A late span of minute 10, and the row its tree writes for it.
    late = _span(10**6, "svc.api", T0 + 10 * MINUTE + 1, 5_000_000_000, "ok")
    exporter = SQLExporter(url)
    live = LiveStats(MINUTE, lambda: ("svc", "n1"))
    live.observe([late])
    exporter.export([late, *live.emit()])
    exporter.close()
    with engine.connect() as conn:
        after = {
            r.path: r for r in queries.tree_rows(conn, WINDOW, Filters(), now_ns=NOW, cache=cache)
        }
    engine.dispose()
    assert cache.hits == 4 + 3 and cache.misses == 5  # the first hour read again
    api = after["svc.api"]
    assert api.spans == 1079
    assert api.p99_ns is not None and api.p99_ns >= 0.99 * 997_000_000
