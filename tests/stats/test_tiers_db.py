"""The statistics tiers in real SQLite and PostgreSQL: hour rows read back
equal the merge of the window rows read back, the log counts equal
``count(*)`` of the stored logs, the documented complete-hour SQL, replays
that store nothing twice, and a real tree writing both at close."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text

import alamos
from alamos.core.records import Record, SpanRecord
from alamos.report.pipeline.codec import dumps_batch, loads_batch
from alamos.report.sql import SQLExporter, schema
from alamos.stats.hours import HOUR_NS
from alamos.stats.live import LiveStats

from .support import MINUTE
from .tiers import BEGIN, H0, check_hours_equal_minutes, run, spans_and_logs

#: The SQL of docs/stats.md, "Tiers" (kept word for word).
COMPLETE_HOURS = """
SELECT h.hour, h.count, m.count AS window_count
FROM (SELECT window_start_ns AS hour, SUM(count) AS count
      FROM alamos_span_stats_1h
      WHERE window_start_ns >= :since AND window_start_ns < :until
      GROUP BY window_start_ns) h
JOIN (SELECT window_start_ns - window_start_ns % 3600000000000 AS hour, SUM(count) AS count
      FROM alamos_span_stats
      WHERE window_start_ns >= :since AND window_start_ns < :until
      GROUP BY window_start_ns - window_start_ns % 3600000000000) m
  ON m.hour = h.hour
ORDER BY h.hour
"""

#: The log counts of docs/stats.md, "Tiers", and the same from the raw logs.
LOG_COUNTS = """
SELECT path, level, SUM(count) AS n FROM alamos_log_stats
WHERE window_start_ns >= :since AND window_start_ns < :until
GROUP BY path, level ORDER BY path, level
"""
RAW_LOG_COUNTS = """
SELECT path, level, count(*) AS n FROM alamos_logs
WHERE ts_ns >= :since AND ts_ns < :until
GROUP BY path, level ORDER BY path, level
"""
PER_WINDOW = """
SELECT window_start_ns AS w, path, level, SUM(count) AS n FROM alamos_log_stats
GROUP BY window_start_ns, path, level ORDER BY w, path, level
"""
RAW_PER_WINDOW = """
SELECT ts_ns - ts_ns % 60000000000 AS w, path, level, count(*) AS n FROM alamos_logs
GROUP BY ts_ns - ts_ns % 60000000000, path, level ORDER BY w, path, level
"""


def _url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = create_engine(_url(url))
    try:
        with engine.connect() as conn:
            return [
                tuple(int(v) if type(v) is not str else v for v in r)
                for r in conn.execute(text(sql), params)
            ]
    finally:
        engine.dispose()


def table_rows(url: str, table: Any) -> list[dict[str, Any]]:
    engine = create_engine(_url(url))
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(table))]
    finally:
        engine.dispose()


def export(url: str, batches: list[list[Record]]) -> None:
    exporter = SQLExporter(url)
    try:
        for batch in batches:
            exporter.export(batch)
    finally:
        exporter.close()


def counts(url: str) -> tuple[int, ...]:
    tables = ("alamos_span_stats", "alamos_span_stats_1h", "alamos_log_stats")
    return tuple(query(url, f"SELECT count(*) FROM {t}")[0][0] for t in tables)


def test_stored_tiers_equal_the_window_rows_and_the_raw_logs(db_url: str) -> None:
    records = spans_and_logs()
    rows = run(LiveStats(MINUTE, lambda: ("svc", "n1"), ("bytes",)), records)
    export(db_url, [records[i : i + 512] for i in range(0, len(records), 512)] + [list(rows)])
    assert counts(db_url) == (1085, 33, 1557)
    # Hour rows read back equal their window rows read back, merged.
    minutes = table_rows(db_url, schema.span_stats)
    hours = table_rows(db_url, schema.span_stats_1h)
    assert check_hours_equal_minutes(minutes, hours) == 32
    # Every hour is complete: its rows' counts add up to its window rows'.
    since, until = BEGIN - BEGIN % HOUR_NS, H0 + 3 * HOUR_NS
    complete = query(db_url, COMPLETE_HOURS, since=since, until=until)
    assert [(h - H0) // HOUR_NS for h, _, _ in complete] == [-1, 0, 1, 2]
    assert [(n, m) for _, n, m in complete] == [(774, 774), (2429, 2429), (2415, 2415), (382, 382)]
    # The log counts: per window, and over the whole range, as count(*) of the logs.
    assert query(db_url, PER_WINDOW) == query(db_url, RAW_PER_WINDOW)
    by_level = query(db_url, LOG_COUNTS, since=since, until=until)
    assert by_level == query(db_url, RAW_LOG_COUNTS, since=since, until=until)
    assert sum(n for _, _, n in by_level) == 4000 and len(by_level) == 12
    # A replay of every statistics row, through the spool's codec, stores nothing twice.
    export(db_url, [loads_batch(dumps_batch(rows[:700])), loads_batch(dumps_batch(rows))])
    assert counts(db_url) == (1085, 33, 1557)


def test_a_dead_process_leaves_an_incomplete_hour(db_url: str) -> None:
    """Killed mid-hour: the window rows it emitted are stored, no hour row;
    the documented SQL then shows the hour without its row (readers fall
    back to the window rows), while a second process's hour row counts only
    its own spans."""
    records = [r for r in spans_and_logs() if type(r) is SpanRecord]
    first = [s for s in records if s.end_ns < H0 + 30 * MINUTE and s.start_ns >= H0]
    dead = LiveStats(MINUTE, lambda: ("svc", "n1"))
    dead.observe(first)
    emitted = dead.emit(H0 + 30 * MINUTE)  # windows emitted, then the process dies
    alive = LiveStats(MINUTE, lambda: ("svc", "n2"))
    alive.observe(first[:100])
    export(db_url, [emitted, alive.close()])
    (row,) = query(db_url, COMPLETE_HOURS, since=H0, until=H0 + HOUR_NS)
    assert row[0] == H0 and row[1] == 100 and row[2] == len(first) + 100


def test_a_tree_writes_the_log_counts_and_its_partial_hour_at_close(
    db_url: str, tmp_path: Path
) -> None:
    root = alamos.new("svc", db=db_url, spool_dir=tmp_path / "spool", console=False)
    api = root.sub("api")
    for i in range(120):
        with api.trace.prod("write"):
            if i % 4 == 0:
                api.log.warning("slow {}", i)
            else:
                api.log.info("ok {}", i)
        if i == 59:
            assert root.flush(30)  # a flush: window rows, no hour row
            assert counts(db_url)[1] == 0
    root.log.error("done")
    root.close(30)
    (spans,) = query(db_url, "SELECT count(*) FROM alamos_spans")[0]
    assert spans == 120
    stats = table_rows(db_url, schema.span_stats)
    hours = table_rows(db_url, schema.span_stats_1h)
    assert sum(r["count"] for r in hours) == sum(r["count"] for r in stats) == 120
    assert check_hours_equal_minutes(stats, hours) >= 1
    logs = query(db_url, LOG_COUNTS, since=0, until=2**62)
    assert logs == query(db_url, RAW_LOG_COUNTS, since=0, until=2**62)
    assert logs == [("svc", "ERROR", 1), ("svc.api", "INFO", 90), ("svc.api", "WARNING", 30)]
    assert query(db_url, PER_WINDOW) == query(db_url, RAW_PER_WINDOW)
    assert root.stats().dropped == 0
