"""Statistics through the real pipeline into real SQLite and PostgreSQL:
exact counts, the merge equal to the raw spans, the documented SQL, replays."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

import alamos
from alamos.core.errors import TraceQueryError
from alamos.report.sql import SQLExporter
from alamos.stats import merge, read_stats, summarize
from alamos.stats.live import LiveStats

from .support import MINUTE, T0, attribute_reference, close, reference, workload

#: The SQL of docs/stats.md, "Merging in SQL" (kept word for word).
DOC_SQL = """
SELECT path, name,
       SUM(count)                      AS count,
       SUM(errors)                     AS errors,
       SUM(count * mean_ns) / SUM(count) AS mean_ns,
       MIN(min_ns)                     AS min_ns,
       MAX(max_ns)                     AS max_ns
FROM alamos_span_stats
WHERE window_start_ns >= :since AND window_start_ns < :until
GROUP BY path, name
ORDER BY path, name
"""


def query(url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def test_a_tree_stores_the_statistics_of_everything_it_recorded(
    db_url: str, tmp_path: Path
) -> None:
    root = alamos.new(
        "svc",
        db=db_url,
        spool_dir=tmp_path / "spool",
        console=False,
        level="debug",
        stats_attributes=("bytes",),
    )
    api = root.sub("api")
    for i in range(300):
        with api.trace.prod("write") as s:
            s.set("bytes", i * 3)
            if i % 10 == 0:
                s.set_status("error", "boom")
        if i == 199:
            assert root.flush(30)
            # A flush makes the statistics of what came before it durable.
            assert sum(r.count for r in read_stats(db_url)) == 200
    with root.sub("db").trace.debug("query"):
        pass
    root.close(30)
    rows = read_stats(db_url)
    spans = query(db_url, "SELECT path, name, status, start_ns, duration_ns FROM alamos_spans")
    assert len(spans) == 301
    by_name = {(s.path, s.name): s for s in summarize(rows)}
    assert set(by_name) == {("svc.api", "write"), ("svc.db", "query")}
    write = by_name[("svc.api", "write")].stats
    durations = [s["duration_ns"] for s in spans if s["name"] == "write"]
    ref = reference(durations)
    assert (write.count, write.errors) == (300, 30)
    assert (write.sum_ns, write.min_ns, write.max_ns) == (ref["sum"], ref["min"], ref["max"])
    assert close(write.mean_ns, ref["mean"], 1e-12) and close(write.m2, ref["m2"], 1e-9)
    b = write.attributes["bytes"]
    assert (b.count, b.sum, b.min, b.max) == (300, 3 * sum(range(300)), 0, 897)
    assert close(b.mean, 448.5) and close(b.m2, 9 * 300 * (300**2 - 1) / 12)
    query_row = by_name[("svc.db", "query")].stats
    assert (query_row.count, query_row.errors) == (1, 0)
    assert {r.level for r in rows if r.name == "query"} == {alamos.Level.DEBUG}
    # Each row: exactly the raw spans of its group and window.
    for r in rows:
        members = [
            s["duration_ns"]
            for s in spans
            if (s["path"], s["name"], s["status"]) == (r.path, r.name, r.status)
            and r.window_start_ns <= s["start_ns"] < r.window_start_ns + r.window_ns
        ]
        assert r.window_ns == 60 * 10**9
        # Several rows may share a window (one before the flush, one after).
        same = [
            x
            for x in rows
            if (x.path, x.name, x.status, x.window_start_ns)
            == (r.path, r.name, r.status, r.window_start_ns)
        ]
        assert sum(x.count for x in same) == len(members)
        assert sum(x.sum_ns for x in same) == sum(members)
    assert root.stats().dropped == 0


def test_no_statistics_when_switched_off(sqlite_url: str, tmp_path: Path) -> None:
    root = alamos.new(
        "svc", db=sqlite_url, spool_dir=tmp_path / "spool", console=False, stats_interval=None
    )
    with root.trace.prod("x"):
        pass
    root.close(30)
    assert read_stats(sqlite_url) == []
    assert query(sqlite_url, "SELECT count(*) AS n FROM alamos_spans") == [{"n": 1}]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stats_interval": 0}, "stats_interval"),
        ({"stats_interval": "60"}, "stats_interval"),
        ({"stats_interval": True}, "stats_interval"),
        ({"stats_attributes": "bytes"}, "stats_attributes"),
        ({"stats_attributes": ("bytes", "")}, "stats_attributes"),
    ],
)
def test_bad_options_are_refused_clearly(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        alamos.new("svc", console=False, **options)


def test_five_minute_windows_re_aggregate_to_the_raw_spans(db_url: str) -> None:
    """Rows of five 60 s windows (and of two processes) merged in Python and
    in the documented SQL equal the figures of the stored raw spans."""
    spans = workload(4000)
    exporter = SQLExporter(db_url)
    exporter.export(spans)
    rows = []
    for node, part in (("n1", spans[:2500]), ("n2", spans[2500:])):
        live = LiveStats(MINUTE, lambda node=node: ("svc", node), ("bytes", "ratio"))
        for i in range(0, len(part), 256):
            live.observe(part[i : i + 256])
        rows += live.emit()
    exporter.export(rows)
    exporter.export(rows[:7])  # a replay stores nothing twice
    exporter.close()
    assert query(db_url, "SELECT count(*) AS n FROM alamos_span_stats") == [{"n": len(rows)}]
    since, until = T0, T0 + 5 * MINUTE
    stored = read_stats(db_url, since_ns=since, until_ns=until)
    assert len(stored) == len(rows)
    assert sorted(r.id for r in stored) == sorted(r.id for r in rows)
    got = merge(stored)
    raw = query(
        db_url,
        "SELECT duration_ns FROM alamos_spans WHERE start_ns >= :s AND start_ns < :u",
        s=since,
        u=until,
    )
    ref = reference([r["duration_ns"] for r in raw])
    assert (got.count, got.errors) == (4000, len(range(0, 4000, 7)))
    assert (got.sum_ns, got.min_ns, got.max_ns) == (ref["sum"], ref["min"], ref["max"])
    assert close(got.mean_ns, ref["mean"], 1e-12) and close(got.m2, ref["m2"], 1e-9)
    for name in ("bytes", "ratio"):
        a = attribute_reference(spans, name)
        m = got.attributes[name]
        assert (m.count, m.min, m.max) == (a["count"], a["min"], a["max"])
        assert close(m.mean, a["mean"]) and close(m.m2, a["m2"])
    # The documented SQL: count, errors, mean, min, max per (path, name).
    documented = query(db_url, DOC_SQL, since=since, until=until)
    truth = query(
        db_url,
        "SELECT path, name, count(*) AS count, "
        "SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors, "
        "MIN(duration_ns) AS min_ns, MAX(duration_ns) AS max_ns, "
        "SUM(duration_ns) AS total FROM alamos_spans "
        "WHERE start_ns >= :s AND start_ns < :u GROUP BY path, name ORDER BY path, name",
        s=since,
        u=until,
    )
    assert len(documented) == len(truth) == 4
    for d, t in zip(documented, truth, strict=True):
        assert (d["path"], d["name"]) == (t["path"], t["name"])
        assert int(d["count"]) == int(t["count"]) and int(d["errors"]) == int(t["errors"])
        assert (int(d["min_ns"]), int(d["max_ns"])) == (int(t["min_ns"]), int(t["max_ns"]))
        assert close(float(d["mean_ns"]), int(t["total"]) / int(t["count"]), 1e-12)
    # One window of the five, and a path's subtree.
    third = read_stats(db_url, since_ns=T0 + 2 * MINUTE, until_ns=T0 + 3 * MINUTE)
    assert {r.window_start_ns for r in third} == {T0 + 2 * MINUTE}
    window = [s.duration_ns for s in spans if T0 + 2 * MINUTE <= s.start_ns < T0 + 3 * MINUTE]
    assert merge(third).count == len(window) and merge(third).sum_ns == sum(window)
    db_rows = read_stats(db_url, path="svc.db")
    assert {r.path for r in db_rows} == {"svc.db"}
    assert merge(db_rows).count == sum(1 for s in spans if s.path == "svc.db")
    assert len(read_stats(db_url, path="svc")) == len(rows)
    assert read_stats(db_url, path="svc.d") == []
    assert math.isfinite(got.stddev_ns)


def test_reading_a_database_without_statistics_says_so(tmp_path: Path) -> None:
    with pytest.raises(TraceQueryError, match="no SQLite database"):
        read_stats(f"sqlite:///{tmp_path}/missing.db")
    db = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alamos_spans (span_id TEXT)"))
    engine.dispose()
    with pytest.raises(TraceQueryError, match="no alamos_span_stats table"):
        read_stats(f"sqlite:///{db}")
