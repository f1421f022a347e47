"""Crash, end to end: a producer process whose database is unreachable spools
what it records, flushes, and is killed with SIGKILL.  A torn half line is
appended to its spool file (what a crash in the middle of a write leaves).
The next start, with the database reachable, replays the spool: every span
flushed before the kill is stored exactly once, and the torn line is skipped
and counted (``root.stats().torn_lines``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from .pipeline_support import (
    HANG,
    ROOT,
    count,
    duplicates,
    new_root,
    query,
    spool_files,
    wait_until,
)

FLUSHED = 2000
UNFLUSHED = 100

PRODUCER = f"""
import json, sys, time
import alamos

url, spool = sys.argv[1:3]
root = alamos.new(
    "crash", db=url, spool_dir=spool, console=False, level="bench",
    metrics_interval=3600, report_interval=3600,
)
exp = root.sub("worker")
ids = []
for i in range({FLUSHED}):
    with exp.trace.prod("job", attributes={{"i": i}}) as span:
        exp.log.info("job {{i}}", i=i)
    ids.append(span.context.span_id)
ok = root.flush(60)
stats = root.stats()
print(json.dumps({{"ok": ok, "ids": ids, "spooled": sum(
    s.spooled for s in stats.exporters.values()), "exported": stats.exported}}), flush=True)
for i in range({UNFLUSHED}):  # what a kill -9 may lose: queued since the last flush
    with exp.trace.prod("unflushed"):
        pass
print("ready", flush=True)
time.sleep(3600)
"""


def test_sigkilled_producer_is_replayed_at_next_start(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    url = f"sqlite:///{folder / 'alamos.db'}"
    spool = tmp_path / "spool"
    folder.write_text("not a folder: the database is unreachable")

    proc = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, url, str(spool)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    guard = threading.Timer(HANG, proc.kill)  # a hung child fails the test, never hangs it
    guard.start()
    try:
        assert proc.stdout is not None
        report = json.loads(proc.stdout.readline() or "null")
        assert report is not None, proc.stderr.read() if proc.stderr else ""
        assert proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(HANG)
        guard.cancel()
    assert proc.returncode == -signal.SIGKILL
    # The database was down: flush returned once everything was in the spool.
    assert report["ok"] is True
    assert report["exported"] == 0
    assert report["spooled"] >= 2 * FLUSHED  # the spans and their logs
    flushed = report["ids"]
    assert len(set(flushed)) == FLUSHED

    # A crash mid-write: half a line, no newline, at the end of its spool file.
    # (Each retry replays the spool and so rotates the process's file: there
    # may be several; tear the end of the one holding the most batches.)
    mine_all = [p for p in spool_files(spool) if p.name.startswith(f"spool-{proc.pid}-")]
    assert mine_all, f"no spool file of the producer in {spool}"
    mine = max(mine_all, key=lambda p: len(p.read_bytes().splitlines()))
    lines = mine.read_bytes().splitlines(keepends=True)
    assert len(lines) > 1
    with mine.open("ab") as f:
        f.write(lines[1][: len(lines[1]) // 2])

    # The next start: same key, spool folder and database, now reachable.
    folder.unlink()
    root = new_root("crash", url, spool)
    assert root.flush(HANG)
    wait_until(lambda: root.stats().spool_pending_bytes == 0, "the spool to be replayed")
    stats = root.stats()
    root.close(HANG)
    assert stats.torn_lines == 1
    assert stats.dropped == 0
    assert not spool_files(spool)  # replayed, then deleted

    stored = {sid for (sid,) in query(url, "SELECT span_id FROM alamos_spans WHERE name = 'job'")}
    assert stored == set(flushed)  # every flushed span, exactly once
    assert count(url, "alamos_spans", "name = 'job'") == FLUSHED
    assert count(url, "alamos_logs", "path = 'crash.worker'") == FLUSHED
    # What was queued after the flush may or may not have made it; never twice.
    assert count(url, "alamos_spans", "name = 'unflushed'") <= UNFLUSHED
    assert duplicates(url, "alamos_spans", "span_id") == 0
    assert duplicates(url, "alamos_logs", "id") == 0
    assert count(url, "alamos_experiments", "path = 'crash.worker'") == 1
    assert os.path.isdir(folder)
