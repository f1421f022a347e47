"""``alamos gc --dry-run`` on a database made by ``alamos demo``: the CLI,
run for real on what the demo exported (spans across layers, logs, metric
samples, span statistics), prints a summary that matches the database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from .history import snapshot

GC = ["gc", "--ttl", "1ms", "--keep-last", "2", "--dry-run"]


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160"}
    env.pop("ALAMOS_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "alamos.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _scalar(url: str, sql: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar() or 0)
    finally:
        engine.dispose()


def _handlers(url: str) -> dict[tuple[str, str, str], int]:
    """Traces per handler (the root span's service, path, name), by SQL."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT service, path, name, COUNT(DISTINCT trace_id) FROM alamos_spans "
                    "WHERE parent_span_id IS NULL GROUP BY service, path, name"
                )
            ).all()
    finally:
        engine.dispose()
    return {(r[0], r[1], r[2]): int(r[3]) for r in rows}


def test_gc_dry_run_on_a_demo_database(tmp_path: Path) -> None:
    demo = _cli(tmp_path, "demo", "--seconds", "1")
    assert demo.returncode == 0, demo.stderr
    db = tmp_path / "alamos.db"
    url = f"sqlite:///{db}"
    before = snapshot(url)
    handlers = _handlers(url)
    traces = _scalar(
        url,
        "SELECT COUNT(*) FROM (SELECT trace_id FROM alamos_spans UNION "
        "SELECT trace_id FROM alamos_logs WHERE trace_id IS NOT NULL)",
    )
    assert handlers and traces > sum(min(2, n) for n in handlers.values())

    # Everything is older than 1 ms by now: the last 2 traces of every
    # handler are kept, every other trace goes; so do the untraced logs, the
    # metric samples and the statistics rows.
    result = _cli(tmp_path, *GC, "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    dry = json.loads(result.stdout)
    kept = sum(min(2, n) for n in handlers.values())
    assert dry["traces"]["last"] == kept
    assert dry["traces"]["delete"] == traces - kept
    assert sum(dry["traces"].values()) == traces
    assert dry["rows"]["metrics"] == _scalar(url, "SELECT COUNT(*) FROM alamos_metrics")
    stats_rows = _scalar(url, "SELECT COUNT(*) FROM alamos_span_stats")
    assert stats_rows > 0
    assert dry["rows"]["statistics:alamos_span_stats"] == stats_rows
    # The hourly tier (the demo's partial hours, written at close) and the log counts.
    for table in ("alamos_span_stats_1h", "alamos_log_stats"):
        rows = _scalar(url, f"SELECT COUNT(*) FROM {table}")
        assert rows > 0, table
        assert dry["rows"][f"statistics:{table}"] == rows
    per = {(h["service"], h["path"], h["name"]): h for h in dry["handlers"]}
    for handler, n in handlers.items():
        assert per[handler]["traces"]["last"] == min(2, n)
        assert per[handler]["traces"]["delete"] == n - min(2, n)

    # The table: dry-run banner, every handler, the kinds; nothing changed.
    result = _cli(tmp_path, *GC, "--db", str(db))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "dry run: nothing was changed" in out and "Traceback" not in result.stderr
    for service, path, name in handlers:
        assert service in out and path in out and name in out
    kinds = ("spans", "logs", "metrics", "statistics:alamos_span_stats")
    for kind in (*kinds, "statistics:alamos_span_stats_1h", "statistics:alamos_log_stats"):
        assert kind in out
    assert snapshot(url) == before

    # The same gc for real, on a copy, deletes what the dry run said.
    copy = tmp_path / "copy.db"
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)  # with whatever is still in the WAL
    spans = _scalar(url, "SELECT COUNT(*) FROM alamos_spans")
    result = _cli(tmp_path, *GC[:-1], "--db", str(copy), "--json")
    assert result.returncode == 0, result.stderr
    real = json.loads(result.stdout)
    assert real["traces"] == dry["traces"] and real["rows"] == dry["rows"]
    assert _scalar(f"sqlite:///{copy}", "SELECT COUNT(*) FROM alamos_spans") == (
        spans - dry["rows"]["spans"]
    )
