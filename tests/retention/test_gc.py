"""Garbage collection on a constructed history, on SQLite and PostgreSQL:
each trace's fate, the rows of each kind, holds that expire, dry runs."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from alamos.core.level import Level
from alamos.core.records import Record, SpanRecord
from alamos.report.sql import SQLExporter
from alamos.retention import Policy, RetentionError, gc, hold, list_holds, unhold
from alamos.retention.decide import FATES

from .history import (
    GET,
    LOGIN,
    NO_SPAN,
    POLICY,
    PUT,
    TRACES,
    H,
    count,
    expected_fates,
    snapshot,
    trace_ids,
    write_history,
)

NOW = time.time_ns()

EXPECTED_ROWS = {
    "spans": 10,  # 5 span-traces of 2 spans
    "logs": 9,  # their 5 logs, the 2 of a logs-only trace, 2 outside any trace
    "holds": 1,  # t8's expired hold
    "metrics": 3,
    "reports": 1,
    # The analysis tables (schema v3) are trimmed too: the history has no rows there.
    "statistics:alamos_span_stats": 0,
    "statistics:alamos_span_stats_1h": 0,
    "statistics:alamos_log_stats": 0,
    "statistics:alamos_spikes": 0,
}


def _kept() -> dict[str, str]:
    return {t.trace_id: t.name for t in TRACES if t.fate != "delete"}


def test_each_trace_meets_its_fate(db_url: str) -> None:
    write_history(db_url, NOW)
    summary = gc(db_url, POLICY, now_ns=NOW, batch_size=3)
    assert summary.traces == expected_fates()
    assert expected_fates() == {
        "hold": 1, "ttl": 5, "last": 3, "errors": 1, "slowest": 2, "spike": 0, "delete": 6,
    }  # fmt: skip
    assert dict(summary.rows) == EXPECTED_ROWS
    # Per handler: traces by fate and the rows of the deleted ones.
    per = {h.handler: (dict(h.traces), h.deleted_spans, h.deleted_logs) for h in summary.handlers}
    assert per == {
        GET: ({"ttl": 2, "slowest": 1, "errors": 1, "hold": 1, "delete": 3}, 6, 3),
        PUT: ({"last": 2, "slowest": 1, "delete": 1}, 2, 1),
        LOGIN: ({"ttl": 2, "last": 1, "delete": 1}, 2, 1),
        NO_SPAN: ({"ttl": 1, "delete": 1}, 0, 2),
    }
    assert next(h.handler for h in summary.handlers) == GET  # most deleted first
    assert summary.resumed == summary.spared == 0 and not summary.interrupted
    # What is left: every kept trace whole (both services' spans and the log),
    # nothing of a deleted one.
    kept = _kept()
    spans = trace_ids(db_url)
    logs = trace_ids(db_url, "alamos_logs")
    span_traces = {t.trace_id for t in TRACES if not t.logs_only and t.fate != "delete"}
    assert spans == dict.fromkeys(span_traces, 2)
    assert logs == dict.fromkeys(kept, 1)
    assert count(db_url, "alamos_spans", "WHERE service = 'storage'") == 11
    assert count(db_url, "alamos_logs", "WHERE trace_id IS NULL") == 1
    assert count(db_url, "alamos_metrics") == 2
    assert count(db_url, "alamos_reports") == 1
    assert count(db_url, "alamos_gc_pending") == 0
    assert [h.trace_id for h in list_holds(db_url)] == [
        next(t.trace_id for t in TRACES if t.name == "t7")
    ]
    # A second gc finds nothing more to delete.
    again = gc(db_url, POLICY, now_ns=NOW)
    assert again.traces["delete"] == 0
    assert sum(again.rows.values()) == 0


def test_a_dry_run_changes_nothing_and_says_the_same(db_url: str) -> None:
    write_history(db_url, NOW)
    before = snapshot(db_url)
    dry = gc(db_url, POLICY, now_ns=NOW, dry_run=True)
    assert snapshot(db_url) == before
    assert dry.dry_run and dry.space is None
    real = gc(db_url, POLICY, now_ns=NOW)
    strip = ("dry_run", "space")
    assert {k: v for k, v in dry.as_dict().items() if k not in strip} == {
        k: v for k, v in real.as_dict().items() if k not in strip
    }
    assert dict(dry.rows) == EXPECTED_ROWS


def test_a_hold_keeps_a_trace_until_it_expires(db_url: str) -> None:
    write_history(db_url, NOW)
    u4 = next(t for t in TRACES if t.name == "u4")
    hold(db_url, u4.trace_id, reason="ticket 12", until_ns=NOW + 1 * H, now_ns=NOW)
    first = gc(db_url, POLICY, now_ns=NOW)
    assert first.traces["hold"] == 2 and first.traces["delete"] == 5
    assert trace_ids(db_url)[u4.trace_id] == 2
    assert u4.trace_id in {h.trace_id for h in list_holds(db_url)}
    # Two hours later the hold has expired: the trace goes, and so does the hold.
    later = gc(db_url, POLICY, now_ns=NOW + 2 * H)
    assert later.traces["delete"] == 1
    assert later.rows["spans"] == 2 and later.rows["logs"] == 1 and later.rows["holds"] == 1
    assert u4.trace_id not in trace_ids(db_url)
    assert u4.trace_id not in {h.trace_id for h in list_holds(db_url)}


def test_unhold_releases_a_trace(db_url: str) -> None:
    write_history(db_url, NOW)
    t7 = next(t for t in TRACES if t.name == "t7")
    assert unhold(db_url, t7.trace_id) is True
    assert unhold(db_url, t7.trace_id) is False
    summary = gc(db_url, POLICY, now_ns=NOW)
    assert summary.traces["hold"] == 0 and summary.traces["delete"] == 7
    assert t7.trace_id not in trace_ids(db_url)


def test_holding_again_replaces_the_hold(sqlite_url: str) -> None:
    write_history(sqlite_url, NOW)
    t7 = next(t for t in TRACES if t.name == "t7")
    hold(sqlite_url, t7.trace_id, reason="second", until_ns=NOW + H, now_ns=NOW)
    (h,) = [h for h in list_holds(sqlite_url) if h.trace_id == t7.trace_id]
    assert (h.reason, h.created_ns, h.until_ns) == ("second", NOW, NOW + H)


def test_a_trace_larger_than_a_batch_is_deleted_over_several(db_url: str) -> None:
    write_history(db_url, NOW)
    summary = gc(db_url, POLICY, now_ns=NOW, batch_size=1)
    assert dict(summary.rows) == EXPECTED_ROWS
    # 19 span and log rows of traces, one per batch, then the other kinds.
    assert summary.batches >= 19
    assert count(db_url, "alamos_gc_pending") == 0


def test_no_ttl_deletes_no_trace(db_url: str) -> None:
    write_history(db_url, NOW)
    before = count(db_url, "alamos_spans")
    summary = gc(db_url, Policy(keep_last=1), now_ns=NOW)
    assert summary.traces["delete"] == 0 and summary.traces["ttl"] == len(TRACES) - 1
    assert count(db_url, "alamos_spans") == before
    assert dict(summary.rows) == {"spans": 0, "logs": 0, "holds": 1}


def test_per_kind_ttls(db_url: str) -> None:
    write_history(db_url, NOW)
    policy = Policy(ttl="30d", metrics="1d", reports="60d", logs="5d")
    summary = gc(db_url, policy, now_ns=NOW)
    # Traces: only t6 (40 d) is past 30 d; logs at 5 d only outside traces
    # (a trace's logs live with it) and in the logs-only trace l2.
    assert summary.traces["delete"] == 2
    assert dict(summary.rows) == {
        "spans": 2, "logs": 1 + 2 + 2, "holds": 1, "metrics": 4, "reports": 0,
        "statistics:alamos_span_stats": 0, "statistics:alamos_span_stats_1h": 0,
        "statistics:alamos_log_stats": 0, "statistics:alamos_spikes": 0,
    }  # fmt: skip


@pytest.mark.parametrize("bad", ["", "7", "7 days", "-1d", "1x"])
def test_bad_durations_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid ttl"):
        Policy(ttl=bad)


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="keep_last must be 0 or more"):
        Policy(keep_last=-1)
    with pytest.raises(ValueError, match="keep_slowest must be 0 or more"):
        Policy(keep_slowest=-2)


def test_a_missing_or_empty_database_is_refused(tmp_path: object, sqlite_url: str) -> None:
    with pytest.raises(RetentionError, match="no SQLite database at"):
        gc(sqlite_url, POLICY)
    engine = create_engine(sqlite_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE other (x INTEGER)"))
    engine.dispose()
    with pytest.raises(RetentionError, match="has no alamos tables"):
        gc(sqlite_url, POLICY)
    with pytest.raises(RetentionError, match="has no alamos tables"):
        hold(sqlite_url, "0" * 31 + "1")


def test_one_gc_at_a_time(db_url: str) -> None:
    write_history(db_url, NOW)
    from alamos.retention.db import open_db

    db = open_db(db_url)
    try:
        with db.lock(), pytest.raises(RetentionError, match="another garbage collection"):
            gc(db_url, POLICY, now_ns=NOW)
    finally:
        db.dispose()
    assert gc(db_url, POLICY, now_ns=NOW).traces["delete"] == 6


def test_new_sqlite_files_use_incremental_auto_vacuum(sqlite_url: str) -> None:
    write_history(sqlite_url, NOW)
    engine = create_engine(sqlite_url, poolclass=NullPool)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() == 2
    engine.dispose()
    summary = gc(sqlite_url, POLICY, now_ns=NOW)
    assert summary.space is not None and summary.space.method == "incremental_vacuum"
    engine = create_engine(sqlite_url, poolclass=NullPool)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA freelist_count").scalar() == 0
    engine.dispose()


def test_every_fate_is_named() -> None:
    assert FATES == ("hold", "ttl", "last", "errors", "slowest", "spike", "delete")


def test_batches_shrink_to_the_time_they_may_take(db_url: str) -> None:
    """``batch_seconds``: a batch of ``batch_size`` rows that takes longer is
    followed by smaller ones (down to MIN_ADAPTED_BATCH rows), and the same
    traces go.  A bound of a microsecond is always exceeded, so every batch
    after the first is MIN_ADAPTED_BATCH rows."""
    from alamos.retention.collect import MIN_ADAPTED_BATCH

    n_traces, per_trace = 300, 10  # 3,000 span rows, all 8 days old
    end = NOW - 8 * 24 * H

    def one(t: int, i: int) -> SpanRecord:
        parent = None if i == 0 else f"{1:016x}"
        return SpanRecord(
            f"{t:032x}", f"{i + 1:016x}", parent, "api", "GET /x", Level.PROD, end - 1_000, end,
            "ok", None, {}, (), "api", "api-1",
        )  # fmt: skip

    records: list[Record] = [one(t, i) for t in range(1, n_traces + 1) for i in range(per_trace)]
    exporter = SQLExporter(db_url)
    try:
        exporter.export(records)
    finally:
        exporter.close()
    done: list[int] = []  # traces finished per delete batch

    def progress(task: str, advance: int, total: int | None) -> None:
        if task == "traces" and advance:
            done.append(advance)

    summary = gc(
        db_url,
        Policy(ttl="7d"),
        now_ns=NOW,
        batch_size=2_000,
        batch_seconds=1e-6,
        progress=progress,
    )
    assert summary.deleted == n_traces and summary.rows["spans"] == n_traces * per_trace
    assert count(db_url, "alamos_spans") == 0
    # The first batch: 2,000 rows (200 traces); then 500 rows (50 traces) each.
    assert MIN_ADAPTED_BATCH == 500
    assert done == [200, 50, 50]


def test_batch_seconds_out_of_range_is_refused(db_url: str) -> None:
    for bad in (0, -1.0, 3601):
        with pytest.raises(ValueError, match="batch_seconds"):
            gc(db_url, Policy(ttl="7d"), batch_seconds=bad)
