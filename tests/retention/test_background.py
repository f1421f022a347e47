"""alamos.new(..., retention=Policy(...)): gc on its own thread, stopped at close;
and an older database upgraded in place by gc."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

import alamos
from alamos.retention import Policy, gc

from .history import POLICY, TRACES, count, trace_ids, write_history

NOW = time.time_ns()


def _retention_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "alamos-retention"]


def test_the_root_runs_gc_in_the_background_until_it_closes(db_url: str, tmp_path: Path) -> None:
    write_history(db_url, NOW)
    root = alamos.new(
        "server",
        db=db_url,
        retention=POLICY,
        retention_interval=3600,
        console=False,
        spool_dir=tmp_path / "spool",
    )
    try:
        assert len(_retention_threads()) == 1
        deadline = time.monotonic() + 120  # a wait, not a timing assertion
        doomed = {t.trace_id for t in TRACES if t.fate == "delete" and not t.logs_only}
        while doomed & set(trace_ids(db_url)) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = trace_ids(db_url)
        assert not doomed & set(left)
        assert {t.trace_id for t in TRACES if t.fate != "delete" and not t.logs_only} <= set(left)
    finally:
        root.close(timeout=30)
    assert _retention_threads() == []


def test_retention_needs_a_database_and_a_policy(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="retention= needs a SQL database"):
        alamos.new("server", retention=Policy(ttl="1d"), console=False)
    with pytest.raises(TypeError, match=r"retention must be an alamos\.retention\.Policy"):
        alamos.new("server", retention="7d", console=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retention_interval must be > 0"):
        alamos.new("server", retention=Policy(ttl="1d"), retention_interval=0, console=False)
    assert _retention_threads() == []


def test_gc_upgrades_a_version_2_database_in_place(db_url: str) -> None:
    write_history(db_url, NOW)
    engine = create_engine(db_url, poolclass=NullPool)
    # Back to version 2: no analysis or retention tables, none of their
    # indexes, and version 2's index by trace.
    v3_v4 = ("alamos_span_stats", "alamos_spikes", "alamos_span_stats_1h", "alamos_log_stats")
    with engine.begin() as conn:
        for name in ("alamos_holds", "alamos_gc_pending", *v3_v4):
            conn.execute(text(f"DROP TABLE {name}"))
        for ix in (
            "ix_alamos_logs_ts",
            "ix_alamos_metrics_ts",
            "ix_alamos_reports_ts",
            "ix_alamos_spans_trace_parent",
        ):
            conn.execute(text(f"DROP INDEX {ix}"))
        conn.execute(text("CREATE INDEX ix_alamos_spans_trace_id ON alamos_spans (trace_id)"))
        conn.execute(text("UPDATE alamos_schema_version SET version = 2"))
    spans = count(db_url, "alamos_spans")
    # A dry run changes nothing, not even the schema; it counts no holds.
    dry = gc(db_url, POLICY, now_ns=NOW, dry_run=True)
    assert not inspect(engine).has_table("alamos_holds")
    assert dry.traces["hold"] == 0 and dry.traces["delete"] == 7  # t7 is not held any more
    summary = gc(db_url, POLICY, now_ns=NOW)
    assert summary.traces["delete"] == 7
    assert count(db_url, "alamos_spans") == spans - 12
    insp = inspect(engine)
    assert insp.has_table("alamos_holds") and insp.has_table("alamos_gc_pending")
    assert "ix_alamos_metrics_ts" in {ix["name"] for ix in insp.get_indexes("alamos_metrics")}
    assert all(insp.has_table(name) for name in v3_v4)
    span_indexes = {ix["name"] for ix in insp.get_indexes("alamos_spans")}
    assert "ix_alamos_spans_trace_parent" in span_indexes
    assert "ix_alamos_spans_trace_id" not in span_indexes
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version FROM alamos_schema_version")).scalar() == 4
    engine.dispose()


def test_a_round_skips_a_locked_or_empty_database_and_goes_on(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The README: "others that have it skip the rounds one is running".  A
    round meets a database another gc holds (skipped, info), a SQLite path
    with no file yet (skipped, debug) and, after both, one it collects."""
    from alamos.retention import Background
    from alamos.retention.db import open_db

    write_history(db_url, NOW)
    missing = f"sqlite:///{tmp_path / 'not-yet.db'}"
    bg = Background([db_url, missing], POLICY, 3600)
    db = open_db(db_url)
    caplog.set_level("DEBUG", logger="alamos.retention")
    try:
        with db.lock():
            bg.run_once()
    finally:
        db.dispose()
    assert bg.runs == 0 and bg.last is None
    assert count(db_url, "alamos_spans") == 2 * sum(not t.logs_only for t in TRACES)
    levels = {(r.levelname, r.getMessage().split(":")[1].strip()) for r in caplog.records}
    assert levels == {("INFO", "skipped"), ("DEBUG", "nothing to collect yet")}
    bg.run_once()  # the lock is free now
    assert bg.runs == 1 and bg.last is not None and bg.last.traces["delete"] == 6
