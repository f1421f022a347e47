"""The tree and layer pages over 24 h and 7 d with and without the tier
rows (``alamos_span_stats_1h``, ``alamos_log_stats``), on a real SQLite
file and a real PostgreSQL database: the same counts, errors and log counts,
p50/p99 within 1% of the spans'; an hour whose hour rows are missing or do
not add up falls back to its minute rows; logs of a path without log
statistics are counted from the logs.  The tier rows are inserted here
(summed from the minute rows and the logs as the statistics observer sums
them), so these tests do not depend on the writer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, delete, insert, select, update

from alamos.core.level import Level
from alamos.core.records import SpanRecord
from alamos.dashboard import queries
from alamos.dashboard.db import Database, Filters, Window
from alamos.dashboard.sketch_cache import SketchCache
from alamos.report.sql import SQLExporter
from alamos.report.sql.schema import log_stats, logs, span_stats, span_stats_1h
from alamos.stats.live import LiveStats
from alamos.stats.sketch import BinSum, encode, merge_all

MINUTE = 60 * 10**9
HOUR = 60 * MINUTE
T0 = 472_223 * HOUR  # an hour boundary (2023-11-14)
HOURS = 26
NOW = T0 + HOURS * HOUR + 5 * MINUTE
DAY = Window("24h", NOW - 24 * HOUR, NOW + 1)
WEEK = Window("7d", NOW - 7 * 24 * HOUR, NOW + 1)
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


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


def _workload() -> list[SpanRecord]:
    """``svc.api``: 3 spans a minute over 26 h, durations 1..997 ms, one
    error in 7 (its tree keeps statistics)."""
    out = []
    for m in range(HOURS * 60):
        for k in range(3):
            i = m * 3 + k
            duration = (i * 37 % 997 + 1) * 1_000_000
            out.append(
                _span(
                    i,
                    "svc.api",
                    T0 + m * MINUTE + k * 20 * 10**9,
                    duration,
                    "ok" if i % 7 else "error",
                )
            )
    return out


def _logs() -> list[dict[str, Any]]:
    """One log a minute of ``svc.api`` and of ``svc.db``, levels in turn."""
    return [
        {
            "id": f"l-{path}-{m}",
            "ts_ns": T0 + m * MINUTE + 7 * 10**9,
            "path": path,
            "level": LEVELS[m % len(LEVELS)],
            "message": f"m{m}",
            "attributes": {},
            "service": "svc",
            "node": "n1",
        }
        for m in range(HOURS * 60)
        for path in ("svc.api", "svc.db")
    ]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    spans = _workload()
    exporter = SQLExporter(db_url)
    exporter.export(spans)
    live = LiveStats(MINUTE, lambda: ("svc", "n1"))
    for j in range(0, len(spans), 60):
        live.observe(spans[j : j + 60])
    exporter.export(live.emit())
    exporter.close()
    eng = create_engine(Database(db_url).url)
    with eng.begin() as conn:
        conn.execute(insert(logs), _logs())
    yield eng
    eng.dispose()


def _add_hour_rows(eng: Engine, split: int | None = None) -> None:
    """The hour rows of the minute rows; an hour ``split`` as two partial
    rows (a restart mid-hour)."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    with eng.begin() as conn:
        for r in conn.execute(select(span_stats)):
            part = int(r.window_start_ns - r.window_start_ns // HOUR * HOUR >= 30 * MINUTE)
            hour = r.window_start_ns // HOUR * HOUR
            key = (r.path, r.name, r.status, r.level, r.service, r.node, hour)
            groups.setdefault((*key, part if hour == split else 0), []).append(r)
        rows = []
        for (path, name, status, level, service, node, hour, part), rs in groups.items():
            n = sum(r.count for r in rs)
            total = sum(r.sum_ns for r in rs)
            rows.append(
                {
                    "id": f"h-{path}-{name}-{status}-{level}-{hour}-{part}",
                    "window_start_ns": hour,
                    "window_ns": HOUR,
                    "path": path,
                    "name": name,
                    "status": status,
                    "level": level,
                    "count": n,
                    "errors": sum(r.errors for r in rs),
                    "sum_ns": total,
                    "mean_ns": total / n,
                    "m2": 0.0,
                    "min_ns": min(r.min_ns for r in rs),
                    "max_ns": max(r.max_ns for r in rs),
                    "sketch": encode(merge_all(r.sketch for r in rs)),
                    "attributes": None,
                    "service": service,
                    "node": node,
                }
            )
        conn.execute(insert(span_stats_1h), rows)


def _add_log_rows(eng: Engine, path: str) -> None:
    """``path``'s logs counted per minute, as ``alamos_log_stats`` rows."""
    counted: dict[tuple[int, str], int] = {}
    for log in _logs():
        if log["path"] == path:
            key = (log["ts_ns"] // MINUTE * MINUTE, log["level"])
            counted[key] = counted.get(key, 0) + 1
    with eng.begin() as conn:
        conn.execute(
            insert(log_stats),
            [
                {
                    "id": f"ls-{path}-{start}-{level}",
                    "window_start_ns": start,
                    "window_ns": MINUTE,
                    "path": path,
                    "level": level,
                    "count": n,
                    "service": "svc",
                    "node": "n1",
                }
                for (start, level), n in counted.items()
            ],
        )


def _tree(
    eng: Engine, window: Window, cache: SketchCache | None = None, f: Filters | None = None
) -> dict[str, Any]:
    with eng.connect() as conn:
        rows = queries.tree_rows(conn, window, f or Filters(), now_ns=NOW, cache=cache)
    return {r.path: (r.spans, r.errors, r.p50_ns, r.p99_ns, r.logs, r.spark) for r in rows}


def _exact(durations: list[int], percent: int) -> int:
    ordered = sorted(durations)
    return ordered[max(1, -(-percent * len(ordered) // 100)) - 1]


def _check_api(got: tuple[Any, ...], window: Window, counts_only: bool = False) -> None:
    """Counts and errors exact, p50/p99 within 1% of the spans'."""
    spans = [s for s in _workload() if window.start_ns <= s.start_ns < window.end_ns]
    durations = [s.end_ns - s.start_ns for s in spans]
    assert got[:2] == (len(spans), sum(s.status == "error" for s in spans))
    if counts_only:
        return
    for value, percent in ((got[2], 50), (got[3], 99)):
        assert abs(value - _exact(durations, percent)) <= 0.01 * _exact(durations, percent)


def _log_counts(path: str, window: Window) -> dict[str, int]:
    out: dict[str, int] = {}
    for log in _logs():
        if log["path"] == path and window.start_ns <= log["ts_ns"] < window.end_ns:
            out[log["level"]] = out.get(log["level"], 0) + 1
    return out


@pytest.mark.parametrize("window", [DAY, WEEK], ids=["24h", "7d"])
def test_tree_same_with_and_without_tier_rows(engine: Engine, window: Window) -> None:
    before = _tree(engine, window)
    _add_hour_rows(engine)
    _add_log_rows(engine, "svc.api")
    after = _tree(engine, window)
    cached = SketchCache()
    assert _tree(engine, window, cached) == _tree(engine, window, cached) == after
    assert before == after  # the hour sketches are the minutes' bins summed: equal quantiles
    _check_api(after["svc.api"], window)
    minutes = 24 * 60 - 5 if window is DAY else HOURS * 60  # the day starts at T0 + 2 h 5 min
    assert after["svc.api"][0] == 3 * minutes
    for path in ("svc.api", "svc.db"):  # svc.db: no log statistics, counted from the logs
        assert after.get(path, (0, 0, 0, 0, {}))[4] == _log_counts(path, window)
    assert sum(after["svc.api"][4].values()) == minutes


def _lie(engine: Engine, hour: int, count_delta: int) -> None:
    """Give the hour rows of ``hour`` the sketch of 10 s durations (and
    ``count_delta`` more spans): p99 tells whether they were read."""
    slow = BinSum()
    slow.add_durations([10**10] * 180)
    with engine.begin() as conn:
        conn.execute(
            update(span_stats_1h)
            .where(span_stats_1h.c.window_start_ns == hour)
            .values(sketch=encode(slow.sketch()), count=span_stats_1h.c.count + count_delta)
        )


def test_an_hour_is_read_from_its_hour_rows_only_when_they_add_up(engine: Engine) -> None:
    hour = T0 + 10 * HOUR
    _add_hour_rows(engine, split=hour)  # a restart: two partial rows, which add up
    _lie(engine, hour, 0)  # counts still add up: this hour's rows are read
    lied = _tree(engine, DAY)["svc.api"]
    assert lied[3] >= 0.99 * 10**10
    _check_api(lied, DAY, counts_only=True)  # counts and errors from the minute rows
    _lie(engine, hour, 1)  # more spans than the minute rows: the minutes are read
    _check_api(_tree(engine, DAY)["svc.api"], DAY)
    _lie(engine, hour, -1)
    assert _tree(engine, DAY)["svc.api"][3] >= 0.99 * 10**10
    with engine.begin() as conn:  # killed mid-hour: one partial row only
        conn.execute(delete(span_stats_1h).where(span_stats_1h.c.id.like("%-1")))
    _check_api(_tree(engine, DAY)["svc.api"], DAY)


def test_layer_chart_of_whole_hours_with_and_without_hour_rows(engine: Engine) -> None:
    # 60 buckets of one hour each, on hour boundaries: the hour rows fit them.
    window = Window("custom", T0 - 34 * HOUR, T0 + 26 * HOUR)
    with engine.connect() as conn:
        before = queries.layer_series(conn, "svc.api", window, Filters(), now_ns=NOW)
    _add_hour_rows(engine)
    _lie(engine, T0 + 10 * HOUR, 0)
    with engine.connect() as conn:
        after = queries.layer_series(conn, "svc.api", window, Filters(), now_ns=NOW)
    assert after["throughput"].series == before["throughput"].series
    assert after["errors"].series == before["errors"].series
    # Each bucket's p50/p99 as from the minute rows (the same bins summed),
    # but the lying hour's, which shows its hour rows were read.
    lat, raw = after["latency"].series, before["latency"].series
    for i in range(34, 60):
        assert after["throughput"].series["spans/s"][i] == 180 / 3600
        p99 = lat["p99 ms"][i]
        assert p99 is not None
        if i == 34 + 10:
            assert p99 >= 0.99 * 10_000
            continue
        assert (lat["p50 ms"][i], p99) == (raw["p50 ms"][i], raw["p99 ms"][i])


def test_layer_24h_same_with_and_without_tier_rows(engine: Engine) -> None:
    with engine.connect() as conn:
        before = queries.layer_series(conn, "svc.api", DAY, Filters(), now_ns=NOW)
        _add_hour_rows(engine)
        after = queries.layer_series(conn, "svc.api", DAY, Filters(), now_ns=NOW)
    assert {k: s.series for k, s in before.items()} == {k: s.series for k, s in after.items()}
    assert sum(after["errors"].series["errors"]) == sum(
        s.status == "error" for s in _workload() if s.start_ns >= DAY.start_ns
    )


def test_service_filter_reaches_the_tier_rows(engine: Engine) -> None:
    """The filters hold on the statistics rows (minute, hour and log rows) as on the records."""
    _add_hour_rows(engine)
    _add_log_rows(engine, "svc.api")
    assert _tree(engine, DAY, f=Filters(service="svc")) == _tree(engine, DAY)
    # Every record and every statistics row is of service svc: nothing left.
    assert _tree(engine, DAY, f=Filters(service="other")) == {}
