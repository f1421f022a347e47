"""Retention with the analysis tables, on SQLite and PostgreSQL: a trace kept
by its stored spike flag (``keep_spikes``) while an identical unflagged one
goes, ``alamos_span_stats`` (and its hourly tier, and the log counts)
trimmed by the ``statistics`` TTL, and dry runs that say both."""

from __future__ import annotations

import json
import time
from typing import Any

from click.testing import CliRunner

from alamos.cli import main
from alamos.core.level import Level
from alamos.core.records import (
    LogRecord,
    LogStatsRecord,
    Record,
    SpanRecord,
    SpanStatsHourRecord,
    SpanStatsRecord,
)
from alamos.report.query import spike_traces, store_spikes
from alamos.report.sql import SQLExporter
from alamos.retention import Policy, gc

from .history import (
    GET,
    MS,
    POLICY,
    D,
    H,
    count,
    expected_fates,
    snapshot,
    trace_ids,
    write_history,
)

NOW = time.time_ns()
US = 1_000

#: Two traces of GET /kv, 10 days old, alike in all the policy looks at
#: (handler, age, root duration, level, status): each a root in api, a
#: ``render`` frame in storage and a log.  s2's frame comes first and lasts
#: 100 us, s1's 500 us: with a spike window of 1 frame, s1's is a spike.
SPIKED = "5" * 32
PLAIN = "6" * 32
END = NOW - 10 * D
FRAME_START = {PLAIN: END - 1 * MS + 10, SPIKED: END - 1 * MS + 20}
FRAME_DUR = {PLAIN: 100 * US, SPIKED: 500 * US}

#: window_start_ns ages of the stored statistics rows.
STATS_AGES = (40 * D, 31 * D, 20 * D, 8 * D, 1 * D, 1 * H)
#: window_start_ns ages of the hour rows (alamos_span_stats_1h).
HOUR_AGES = (35 * D, 9 * D, 2 * D)
#: window_start_ns ages of the log counts (alamos_log_stats).
LOG_AGES = (50 * D, 45 * D, 32 * D, 25 * D, 3 * H)


def _spike_traces_records() -> list[Record]:
    out: list[Record] = []
    for tid in (SPIKED, PLAIN):
        root = tid[:15] + "1"
        frame = tid[:15] + "2"
        out.append(
            SpanRecord(
                tid, root, None, "api", GET[2], Level.PROD, END - 1 * MS, END, "ok", None,
                {}, (), "api", "api-1",
            )
        )  # fmt: skip
        start = FRAME_START[tid]
        out.append(
            SpanRecord(
                tid, frame, root, "storage", "render", Level.PROD, start, start + FRAME_DUR[tid],
                "ok", None, {}, (), "storage", "storage-1",
            )
        )  # fmt: skip
        out.append(
            LogRecord(
                tid, END - 5, "storage", "INFO", "rendered", tid, frame, {}, None, "storage",
                "storage-1",
            )
        )  # fmt: skip
    return out


def _stats_records() -> list[Record]:
    out: list[Record] = []
    for k, age in enumerate(STATS_AGES):
        out.append(
            SpanStatsRecord(
                f"stats{k:027d}", NOW - age, 60 * 10**9, "api", "GET /kv", "ok", Level.PROD, 3,
                0, 3_000_000, 1e6, 0.0, 1_000_000, 1_000_000, "", {}, "api", "api-1",
            )
        )  # fmt: skip
    for k, age in enumerate(HOUR_AGES):
        out.append(
            SpanStatsHourRecord(
                f"hour{k:028d}", NOW - age, 3600 * 10**9, "api", "GET /kv", "ok", Level.PROD, 3,
                0, 3_000_000, 1e6, 0.0, 1_000_000, 1_000_000, "", {}, "api", "api-1",
            )
        )  # fmt: skip
    for k, age in enumerate(LOG_AGES):
        out.append(
            LogStatsRecord(f"logs{k:028d}", NOW - age, 60 * 10**9, "api", "INFO", 7, "api", "api-1")
        )
    return out


def _export(url: str, records: list[Record]) -> None:
    exporter = SQLExporter(url)
    try:
        exporter.export(records)
    finally:
        exporter.close()


def _flag(url: str) -> None:
    """Store the spike through the real path: s1's frame only."""
    assert store_spikes(url, "render", spike_window=1) == 1
    assert spike_traces(url) == [SPIKED]


def setup(url: str, flag: bool = True) -> None:
    write_history(url, NOW)
    _export(url, _spike_traces_records() + _stats_records())
    if flag:
        _flag(url)


def policy_with(**changes: Any) -> Policy:
    """history.POLICY, statistics kept 30 d.  (Not ``attrs.evolve``: the
    policy's converters would read its nanoseconds as seconds.)"""
    args: dict[str, Any] = {
        "ttl": "7d", "levels": {"debug": "1d"}, "keep_last": 2, "keep_errors": "30d",
        "keep_slowest": 1, "statistics": "30d",
    }  # fmt: skip
    policy = Policy(**{**args, **changes})
    assert policy.ttl_of("spans") == POLICY.ttl_of("spans") and policy.levels == POLICY.levels
    return policy


def _fates(**changes: int) -> dict[str, int]:
    out = expected_fates()
    for k, v in changes.items():
        out[k] += v
    return out


#: The history's rows (test_gc.EXPECTED_ROWS) plus PLAIN's 2 spans and log.
ROWS = {"spans": 12, "logs": 10, "holds": 1, "metrics": 3, "reports": 1}


def test_a_spike_flag_keeps_its_trace_and_the_same_trace_unflagged_goes(db_url: str) -> None:
    setup(db_url)
    policy = policy_with()
    summary = gc(db_url, policy, now_ns=NOW, batch_size=4)
    assert summary.traces == _fates(spike=1, delete=1)
    assert dict(summary.rows) == {
        **ROWS, "statistics:alamos_span_stats": 2, "statistics:alamos_span_stats_1h": 1,
        "statistics:alamos_log_stats": 3, "statistics:alamos_spikes": 0,
    }  # fmt: skip
    left = trace_ids(db_url)
    assert left[SPIKED] == 2 and PLAIN not in left
    assert trace_ids(db_url, "alamos_logs")[SPIKED] == 1
    assert PLAIN not in trace_ids(db_url, "alamos_logs")
    (get,) = [h for h in summary.handlers if h.handler == GET]
    assert dict(get.traces) == {
        "ttl": 2, "slowest": 1, "errors": 1, "hold": 1, "spike": 1, "delete": 4,
    }  # fmt: skip
    # The flag and 4 statistics rows (20 d and younger) stay.
    assert spike_traces(db_url) == [SPIKED]
    assert count(db_url, "alamos_span_stats") == 4
    assert count(db_url, "alamos_span_stats", f"WHERE window_start_ns < {NOW - 30 * D}") == 0
    assert (count(db_url, "alamos_span_stats_1h"), count(db_url, "alamos_log_stats")) == (2, 2)
    for table in ("alamos_span_stats_1h", "alamos_log_stats"):
        assert count(db_url, table, f"WHERE window_start_ns < {NOW - 30 * D}") == 0


def test_without_keep_spikes_the_flagged_trace_goes_and_its_flag_stays(db_url: str) -> None:
    setup(db_url)
    policy = policy_with(keep_spikes=False)
    summary = gc(db_url, policy, now_ns=NOW)
    assert summary.traces == _fates(delete=2)
    assert SPIKED not in trace_ids(db_url) and PLAIN not in trace_ids(db_url)
    # The flag is a statistic: it lives for the statistics TTL, trace or not.
    assert spike_traces(db_url) == [SPIKED]


def test_a_trace_kept_by_a_flag_lives_as_long_as_the_flag(db_url: str) -> None:
    # POLICY's statistics TTL is its ttl, 7 d: the 10-day-old flag is
    # trimmed by this gc, so its trace goes in the same gc, not the next.
    setup(db_url)
    summary = gc(db_url, POLICY, now_ns=NOW)
    assert summary.traces == _fates(delete=2)
    assert dict(summary.rows) == {
        "spans": 14, "logs": 11, "holds": 1, "metrics": 3, "reports": 1,
        "statistics:alamos_span_stats": 4, "statistics:alamos_span_stats_1h": 2,
        "statistics:alamos_log_stats": 4, "statistics:alamos_spikes": 1,
    }  # fmt: skip
    assert SPIKED not in trace_ids(db_url)
    assert spike_traces(db_url) == []
    assert count(db_url, "alamos_span_stats") == 2
    again = gc(db_url, POLICY, now_ns=NOW)
    assert sum(again.rows.values()) == 0


def test_statistics_rows_trimmed_by_their_own_ttl(db_url: str) -> None:
    setup(db_url)
    assert count(db_url, "alamos_span_stats") == 6
    assert (count(db_url, "alamos_span_stats_1h"), count(db_url, "alamos_log_stats")) == (3, 5)
    before_spans = count(db_url, "alamos_spans")
    # No TTL but the statistics': no trace goes; the statistics rows older
    # than 7 d (40, 31, 20 and 8 days) and the 10-day-old flag do, in
    # batches of 3.
    summary = gc(db_url, Policy(statistics="7d"), now_ns=NOW, batch_size=3)
    assert summary.traces["delete"] == 0
    assert dict(summary.rows) == {
        "spans": 0, "logs": 0, "holds": 1,
        "statistics:alamos_span_stats": 4, "statistics:alamos_span_stats_1h": 2,
        "statistics:alamos_log_stats": 4, "statistics:alamos_spikes": 1,
    }  # fmt: skip
    assert count(db_url, "alamos_span_stats") == 2
    assert count(db_url, "alamos_span_stats", f"WHERE window_start_ns >= {NOW - 1 * D}") == 2
    # The hour row of 2 days ago and the log count of 3 hours ago stay.
    assert count(db_url, "alamos_span_stats_1h", f"WHERE window_start_ns = {NOW - 2 * D}") == 1
    assert count(db_url, "alamos_span_stats_1h") == 1
    assert count(db_url, "alamos_log_stats", f"WHERE window_start_ns = {NOW - 3 * H}") == 1
    assert count(db_url, "alamos_log_stats") == 1
    assert count(db_url, "alamos_spikes") == 0
    assert count(db_url, "alamos_spans") == before_spans
    # A TTL for everything but statistics leaves them alone.
    later = gc(db_url, Policy(ttl="1h", statistics="90d"), now_ns=NOW)
    assert later.rows["statistics:alamos_span_stats"] == 0
    assert later.rows["statistics:alamos_span_stats_1h"] == 0
    assert later.rows["statistics:alamos_log_stats"] == 0
    assert count(db_url, "alamos_span_stats") == 2


def test_a_flag_stored_after_the_decision_spares_the_trace(db_url: str) -> None:
    setup(db_url, flag=False)
    policy = policy_with()
    flagged: list[str] = []

    def progress(task: str, advance: int, total: int | None) -> None:
        # The decision is made (both traces to delete), no batch has run.
        if task == "traces" and not flagged:
            _flag(db_url)
            flagged.append(task)

    summary = gc(db_url, policy, now_ns=NOW, progress=progress)
    assert flagged and summary.spared == 1
    assert summary.traces == _fates(delete=2)  # as decided
    assert summary.rows["spans"] == 12  # but only PLAIN's 2 went with the history's
    assert trace_ids(db_url)[SPIKED] == 2 and PLAIN not in trace_ids(db_url)


def test_the_dry_run_says_both_and_changes_nothing(db_url: str) -> None:
    setup(db_url)
    policy = policy_with()
    before = snapshot(db_url)
    dry = gc(db_url, policy, now_ns=NOW, dry_run=True)
    assert snapshot(db_url) == before
    assert dry.traces == _fates(spike=1, delete=1)
    assert dict(dry.rows) == {
        **ROWS, "statistics:alamos_span_stats": 2, "statistics:alamos_span_stats_1h": 1,
        "statistics:alamos_log_stats": 3, "statistics:alamos_spikes": 0,
    }  # fmt: skip
    real = gc(db_url, policy, now_ns=NOW)

    def plain(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k not in ("dry_run", "space")}

    assert plain(dry.as_dict()) == plain(real.as_dict())


def test_the_cli_dry_run_prints_both(db_url: str) -> None:
    setup(db_url)
    before = snapshot(db_url)
    args = ["gc", "--db", db_url, "--ttl", "7d", "--ttl", "debug=1d", "--ttl", "statistics=30d"]
    args += ["--keep-last", "2", "--keep-errors", "30d", "--keep-slowest", "1", "--dry-run"]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    dry = json.loads(result.output)
    assert dry["traces"] == _fates(spike=1, delete=1)
    assert dry["rows"]["statistics:alamos_span_stats"] == 2
    assert dry["rows"]["statistics:alamos_span_stats_1h"] == 1
    assert dry["rows"]["statistics:alamos_log_stats"] == 3
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("kept: spike frame" in x and x.rstrip(" │|").endswith(" 1") for x in lines), lines
    trimmed = {"alamos_span_stats": 2, "alamos_span_stats_1h": 1, "alamos_log_stats": 3}
    for table, n in trimmed.items():
        (line,) = [x for x in lines if f"statistics:{table} " in x]
        assert line.rstrip(" │|").endswith(f" {n}"), line
    assert snapshot(db_url) == before
