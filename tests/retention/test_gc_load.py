"""gc under load and killed half-way, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import alamos
from alamos.core.level import Level
from alamos.core.records import LogRecord, Record, SpanRecord
from alamos.report.sql import SQLExporter
from alamos.retention import Policy, gc

from .history import POLICY, TRACES, D, count, trace_ids, write_history

NOW = time.time_ns()
REPO = Path(__file__).resolve().parents[2]


def _old_traces(url: str, n: int, spans_each: int, *, first: str | None = None) -> set[str]:
    """``n`` traces 20 days old, of one handler (``old``/``batch job``), each
    with ``spans_each`` spans and a log."""
    records: list[Record] = []
    ids: list[str] = []
    for i in range(n):
        tid = first if (first and i == 0) else f"{i + 1:08x}" + "e" * 24
        ids.append(tid)
        end = NOW - 20 * D - i * 1000
        for k in range(spans_each):
            records.append(
                SpanRecord(
                    tid, f"{k + 1:016x}", None if k == 0 else f"{1:016x}", "old", "batch job",
                    Level.PROD, end - 100, end, "ok", None, {}, (), "worker", "worker-1",
                )
            )  # fmt: skip
        records.append(
            LogRecord(f"{i:08x}" + "f" * 24, end, "old", "INFO", "x", tid, None, {}, None,
                      "worker", "worker-1")
        )  # fmt: skip
    exporter = SQLExporter(url)
    try:
        for k in range(0, len(records), 5000):
            exporter.export(records[k : k + 5000])
    finally:
        exporter.close()
    return set(ids)


def test_gc_while_4_threads_export(db_url: str, tmp_path: Path) -> None:
    write_history(db_url, NOW)
    old = _old_traces(db_url, 300, 3)
    spans_before = count(db_url, "alamos_spans")
    root = alamos.new("load", db=db_url, spool_dir=tmp_path / "spool", console=False)
    per_thread = 250
    start = threading.Barrier(5)
    made: list[str] = []
    lock = threading.Lock()

    def export(k: int) -> None:
        exp = root.sub(f"t{k}")
        start.wait()
        for i in range(per_thread):
            with exp.trace.prod("request") as span, exp.trace.prod("step"):
                exp.log.info("step {i}", i=i)
            with lock:
                made.append(span.context.trace_id)
            if i % 50 == 0:
                time.sleep(0.01)  # let the worker and gc interleave

    threads = [threading.Thread(target=export, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    start.wait()
    summary = gc(db_url, POLICY, now_ns=NOW, batch_size=50)
    for t in threads:
        t.join()
    result = root.close(timeout=60)
    assert result.complete and result.dropped == 0
    # The history met its fates; of the 300 old traces (one handler) the 2
    # newest are kept (the slowest, all equal, is the first by trace id: one of
    # them), 298 deleted.
    assert summary.traces["delete"] == 6 + 298
    assert summary.rows["spans"] == 10 + 298 * 3
    left = trace_ids(db_url)
    for t in TRACES:
        if not t.logs_only:
            assert (t.trace_id in left) == (t.fate != "delete"), t.name
            if t.fate != "delete":
                assert left[t.trace_id] == 2
    assert len(old & set(left)) == 2
    # Every exported record is there: 4 x 250 traces of 2 spans and a log.
    assert len(made) == 1000
    assert all(left.get(tid) == 2 for tid in made)
    logs = trace_ids(db_url, "alamos_logs")
    assert all(logs.get(tid) == 1 for tid in made)
    assert count(db_url, "alamos_spans") == spans_before - (10 + 298 * 3) + 2000


CHILD = textwrap.dedent(
    """
    import sys
    from alamos.retention import Policy, gc
    url, now, pause_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    batches = 0
    def progress(task, advance, total):
        global batches
        if task == "traces" and total is not None and batches >= 0:
            batches += 1  # the first call announces the total
            if batches == pause_at + 1:
                print("PAUSED", flush=True)
                sys.stdin.readline()  # killed here
    gc(url, Policy(ttl="7d"), now_ns=now, batch_size=7, progress=progress)
    print("FINISHED", flush=True)
    """
)
BIG = "f" * 32  # last in line; 33 rows: deleted over 5 batches of 7


@pytest.mark.parametrize(
    ("pause_at", "small_gone", "big_started"),
    [(6, 12, False), (12, 20, True)],
    ids=["between-small-traces", "inside-the-big-trace"],
)
def test_a_gc_killed_half_way_leaves_a_consistent_database_and_a_rerun_finishes(
    db_url: str, pause_at: int, small_gone: int, big_started: bool
) -> None:
    old = _old_traces(db_url, 21, 2, first=BIG)  # 20 small traces of 3 rows, and BIG
    exporter = SQLExporter(db_url)
    exporter.export(
        [
            SpanRecord(
                BIG, f"{k + 100:016x}", f"{1:016x}", "old", "part", Level.PROD,
                NOW - 21 * D, NOW - 21 * D + 5, "ok", None, {}, (), "other", "other-1",
            )
            for k in range(30)
        ]
    )  # fmt: skip
    exporter.close()
    young = _young(db_url)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, db_url, str(NOW), str(pause_at)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "PAUSED"
        # Half-way (2 small traces of 3 rows per batch of 7 rows): every
        # trace not in the queue is gone; every small one in it is whole.
        pending = _pending(db_url)
        spans = trace_ids(db_url)
        logs = trace_ids(db_url, "alamos_logs")
        gone = {t for t in old if t not in spans and t not in logs}
        assert len(gone) == small_gone and BIG not in gone
        assert set(pending) == old - gone
        for tid in old - gone - {BIG}:
            assert spans[tid] == 2 and logs[tid] == 1 and pending[tid] == 0
        if big_started:
            # 2 batches of 7 rows: its log, then 13 of its 32 spans.
            assert pending[BIG] == 1 and spans[BIG] == 32 - 13 and BIG not in logs
        else:
            assert pending[BIG] == 0 and spans[BIG] == 32 and logs[BIG] == 1
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
    assert child.returncode == -signal.SIGKILL
    summary = gc(db_url, Policy(ttl="7d"), now_ns=NOW, batch_size=7)
    # The started trace is finished whatever the policy; the rest is decided again.
    assert summary.resumed == (1 if big_started else 0)
    assert summary.traces["delete"] == 21 - small_gone - summary.resumed
    assert summary.rows["spans"] == (32 - 13 if big_started else 32) + 2 * (20 - small_gone)
    assert trace_ids(db_url) == young
    assert trace_ids(db_url, "alamos_logs") == young
    assert _pending(db_url) == {}


def _young(url: str) -> dict[str, int]:
    """Two young traces that every gc keeps."""
    records: list[Record] = []
    for i in range(2):
        tid = f"{i + 1:032x}"
        records.append(
            SpanRecord(
                tid, f"{1:016x}", None, "new", "job", Level.PROD, NOW - 10, NOW, "ok", None,
                {}, (), "worker", "worker-1",
            )
        )  # fmt: skip
        records.append(
            LogRecord(f"{i:032x}", NOW, "new", "INFO", "x", tid, None, {}, None, "worker", "w")
        )
    exporter = SQLExporter(url)
    exporter.export(records)
    exporter.close()
    return {f"{i + 1:032x}": 1 for i in range(2)}


def _pending(url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT trace_id, started FROM alamos_gc_pending")).all()
    finally:
        engine.dispose()
    return {r[0]: int(r[1]) for r in rows}
