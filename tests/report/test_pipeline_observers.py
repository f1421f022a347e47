"""Observers: the worker shows every record it builds from the hand-off to
them (the live statistics and recording rules build on this), on the worker
thread, and delivers the records even when an observer fails."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from alamos.core.level import Level
from alamos.core.records import LogRecord, Record
from alamos.report.pipeline.collector import Collector, Observer
from alamos.report.pipeline.delivery import Delivery


class ListExporter:
    min_level = Level.BENCH
    name = "list"
    synchronous = False

    def __init__(self) -> None:
        self.records: list[Record] = []

    def export(self, records: Sequence[Record]) -> None:
        self.records.extend(records)

    def close(self) -> None:
        pass


def log_record(i: int) -> LogRecord:
    return LogRecord(
        id=f"{i:032x}",
        ts_ns=i,
        path="svc",
        level="INFO",
        message=f"m{i}",
        trace_id=None,
        span_id=None,
        attributes={},
        location=None,
        service="",
        node="",
        session_id=None,
    )


def test_observers_see_every_record_on_the_worker_even_when_one_fails(tmp_path: Path) -> None:
    exporter = ListExporter()
    collector = Collector(
        [Delivery(exporter, spool_dir=tmp_path)], service="s", node="n", batch_size=7
    )
    seen: list[str] = []
    threads: set[str] = set()

    def observe(records: Sequence[Record]) -> None:
        threads.add(threading.current_thread().name)
        seen.extend(r.id for r in records if isinstance(r, LogRecord))

    def broken(records: Sequence[Record]) -> None:
        raise RuntimeError("observer bug")

    collector.add_observer(Observer("broken", broken))
    collector.add_observer(Observer("ids", observe))
    for i in range(50):
        collector.handoff.put(log_record(i))
    assert collector.flush(timeout=60)
    assert collector.close(timeout=60).complete
    expected = [f"{i:032x}" for i in range(50)]
    assert seen == expected
    assert threads == {"alamos-collector-s"}
    assert [r.id for r in exporter.records] == expected
