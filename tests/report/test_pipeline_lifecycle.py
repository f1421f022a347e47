"""Lifecycle of the export pipeline, end to end: ``ALAMOS_DB``, no exporters,
``flush(timeout)``, closing twice, and the ``atexit`` flush of a process that
never closes its root."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

import alamos
from alamos import Level
from alamos.core.records import Record, SpanRecord
from alamos.report.pipeline.stats import PipelineStats

from .pipeline_support import HANG, count, new_root, run_script, wait_until


def record(exp: alamos.Experiment, n: int, name: str = "op") -> None:
    for i in range(n):
        with exp.trace.prod(name, attributes={"i": i}):
            exp.log.info("{name} {i}", name=name, i=i)


class StalledExporter:
    """``export`` blocks until ``release`` is set."""

    synchronous = False
    min_level = Level.BENCH
    name = "stalled"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.spans: set[str] = set()

    def export(self, records: Sequence[Record]) -> None:
        self.entered.set()
        if not self.release.wait(HANG):
            raise TimeoutError("never released")
        self.spans.update(r.span_id for r in records if type(r) is SpanRecord)

    def close(self) -> None:
        pass


# -- ALAMOS_DB, and no exporter at all --------------------------------------------------


def test_alamos_db_env_works_like_db(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALAMOS_DB", db_url)
    root = new_root("env", None, tmp_path / "spool")
    record(root.sub("api"), 20)
    assert root.flush(HANG)
    root.close(HANG)
    assert count(db_url, "alamos_spans", "name = 'op'") == 20
    assert count(db_url, "alamos_logs") == 20
    assert count(db_url, "alamos_experiments") == 2


def test_db_argument_wins_over_alamos_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_url, arg_url = f"sqlite:///{tmp_path / 'env.db'}", f"sqlite:///{tmp_path / 'arg.db'}"
    monkeypatch.setenv("ALAMOS_DB", env_url)
    root = new_root("env", arg_url, tmp_path / "spool")
    record(root, 5)
    root.close(HANG)
    assert count(arg_url, "alamos_spans") == 5
    assert not (tmp_path / "env.db").exists()


def test_without_exporters_nothing_is_persisted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALAMOS_DB", raising=False)
    monkeypatch.delenv("ALAMOS_SPOOL_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    root = alamos.new("none", level="bench", console=False)
    record(root.sub("api"), 100)
    root.metrics.counter("c").inc()
    assert root.flush(HANG)
    assert root.stats() == PipelineStats()  # no queue, no exporter, nothing counted
    root.close(HANG)
    assert list(tmp_path.iterdir()) == []  # no database file, no spool folder


# -- flush(timeout) -----------------------------------------------------------------------


def test_flush_is_false_when_nothing_can_make_records_durable(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("the spool cannot be created under a plain file")
    stalled = StalledExporter()
    root = new_root("stall", None, blocked / "spool", exporters=[stalled])
    record(root, 10)
    wait_until(stalled.entered.is_set, "the exporter to be called")
    # Neither the stalled exporter nor the spool can take the records in time.
    assert root.flush(timeout=1.0) is False
    stalled.release.set()
    assert root.flush(HANG) is True  # the exporter is back: everything is delivered
    root.close(HANG)
    assert len(stalled.spans) == 10
    assert root.stats().dropped == 0


def test_flush_is_true_once_a_stalled_exporters_records_are_spooled(tmp_path: Path) -> None:
    stalled = StalledExporter()
    root = new_root("stall", None, tmp_path / "spool", exporters=[stalled])
    record(root, 10)
    wait_until(stalled.entered.is_set, "the exporter to be called")
    assert root.flush(HANG) is True  # durable in the spool, although still stalled
    assert root.stats().exporters["stalled"].spooled > 0
    stalled.release.set()
    wait_until(lambda: root.stats().spool_pending_bytes == 0, "the spool to be replayed")
    root.close(HANG)
    assert len(stalled.spans) == 10


def test_close_without_a_timeout_waits_for_everything(tmp_path: Path) -> None:
    # README, "What can be lost": close(timeout=None) waits for everything.
    # Neither the stalled exporter nor the spool can take the records: close
    # returns only once the exporter is released, with every record durable.
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("the spool cannot be created under a plain file")
    stalled = StalledExporter()
    root = new_root("patient", None, blocked / "spool", exporters=[stalled])
    record(root, 10)
    wait_until(stalled.entered.is_set, "the exporter to be called")
    results: list[alamos.CloseResult] = []
    closing = threading.Thread(target=lambda: results.append(root.close(timeout=None)))
    closing.start()
    try:
        closing.join(1.0)
        assert closing.is_alive()  # still waiting (a close that gave up would be done)
    finally:
        stalled.release.set()
    closing.join(HANG)
    assert not closing.is_alive()
    (result,) = results
    assert result.complete and result.dropped == 0 and result.pending == 0
    assert not result.timed_out
    assert len(stalled.spans) == 10
    assert root.stats().dropped == 0


def test_flush_is_true_when_healthy(sqlite_url: str, tmp_path: Path) -> None:
    root = new_root("ok", sqlite_url, tmp_path / "spool")
    for n in (1, 10, 1000):
        record(root, n, name=f"batch{n}")
        assert root.flush(HANG) is True
        assert count(sqlite_url, "alamos_spans", "name = :n", n=f"batch{n}") == n
    assert root.flush(HANG) is True  # nothing new: still True
    root.close(HANG)


# -- close ---------------------------------------------------------------------------------


def test_close_twice_is_harmless(db_url: str, tmp_path: Path) -> None:
    root = new_root("twice", db_url, tmp_path / "spool")
    record(root, 10)
    root.close(HANG)
    root.close(HANG)
    assert root.flush(HANG) is True
    record(root, 10, name="after")  # a no-op after close
    root.close(HANG)
    assert count(db_url, "alamos_spans") == 10
    assert count(db_url, "alamos_spans", "name = 'after'") == 0


ATEXIT = """
import sys
import alamos

root = alamos.new("atexit", db=sys.argv[1], spool_dir=sys.argv[2], console=False)
exp = root.sub("api")
for i in range(500):
    with exp.trace.prod("op"):
        exp.log.info("op {i}", i=i)
exp.metrics.counter("ops").inc(500)
print("exiting without close", flush=True)
"""


def test_atexit_flushes_a_root_never_closed(db_url: str, tmp_path: Path) -> None:
    done = run_script(ATEXIT, db_url, str(tmp_path / "spool"), env={"ALAMOS_DB": ""})
    assert done.returncode == 0, done.stderr
    assert "exiting without close" in done.stdout
    assert count(db_url, "alamos_spans", "name = 'op'") == 500
    assert count(db_url, "alamos_logs") == 500
    assert count(db_url, "alamos_metrics", "name = 'ops' AND value = 500") == 1
    assert not list((tmp_path / "spool").rglob("spool-*.jsonl"))  # all in the database


def test_flush_returns_while_producers_outrun_the_worker(sqlite_url: str, tmp_path: Path) -> None:
    # flush waits for what was recorded before the call, not for producers
    # that never stop (they outrun the worker here: the queue overflows).
    root = new_root("flood", sqlite_url, tmp_path / "spool", max_queue=2000)
    stop = threading.Event()
    produced = [0, 0]

    def flood(k: int) -> None:
        trace = root.trace
        while not stop.is_set():
            with trace.prod("flood"):
                pass
            produced[k] += 1

    threads = [threading.Thread(target=flood, args=(k,), daemon=True) for k in range(2)]
    for th in threads:
        th.start()
    try:
        wait_until(lambda: root.stats().dropped_queue_full > 0, "the queue to overflow")
        for _ in range(3):
            assert root.flush(HANG) is True
    finally:
        stop.set()
        for th in threads:
            th.join(HANG)
    assert not any(th.is_alive() for th in threads)
    assert root.flush(HANG) is True
    root.close(HANG)
    dropped = root.stats().dropped
    assert dropped == root.stats().dropped_queue_full > 0
    # What the hand-off could not take went to the spool: the next start replays it.
    again = new_root("flood", sqlite_url, tmp_path / "spool")
    wait_until(lambda: again.stats().spool_pending_bytes == 0, "the spool to be replayed")
    again.close(HANG)
    assert count(sqlite_url, "alamos_spans", "name = 'flood'") + dropped == sum(produced)


def test_stats_add_up_over_exporters() -> None:
    from alamos.report.pipeline.delivery import DeliveryStats

    stats = PipelineStats(
        queued=3,
        dropped_queue_full=5,
        exporters={
            "a": DeliveryStats(exported=10, spooled=4, replayed=4, dropped=1, torn_lines=2),
            "b": DeliveryStats(exported=7, dropped=2, torn_lines=1, failures=3),
        },
    )
    assert stats.dropped == 5 + 1 + 2
    assert stats.torn_lines == 3
    assert stats.exported == 10 + 4 + 7
