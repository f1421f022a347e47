"""Full queue, end to end: a stalled exporter under a burst of 1,000,000
spans.  The instrumented code never blocks (the burst completes), memory
stays within the configured bound (``max_queue`` items, measured with
tracemalloc), and every span is accounted for: exported (directly, or
replayed from the spool) or dropped and counted in the
``alamos_dropped_records_total`` metric.

tracemalloc slows every allocation down about twentyfold, so it traces the
first quarter of the burst only (25 times ``max_queue`` spans: a queue that
grew with the burst would show at once); the rest runs at full speed."""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import alamos
from alamos import Level
from alamos.core.records import Record, SpanRecord
from alamos.report.pipeline.stats import DROP_REASONS

from .pipeline_support import HANG, new_root, wait_until

BURST = 1_000_000
TRACED = 250_000
MAX_QUEUE = 10_000
#: Bytes allowed per queued item: a finished span in the queue (~300 bytes),
#: its record in the hand-off to the exporter (~450 bytes: the hand-off holds
#: about max_queue records), a share of the batch being spooled, and some
#: slack (about 900 bytes were measured).  A queue that grew with the burst
#: would need over 300 bytes per traced span: five times this bound.
ALLOWANCE = 1500


class StalledExporter:
    """A background exporter whose ``export`` blocks until ``release`` is set;
    it keeps the ids of the burst's spans it is given."""

    synchronous = False
    min_level = Level.BENCH
    name = "stalled"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.ids: set[str] = set()
        self.lock = threading.Lock()

    def export(self, records: Sequence[Record]) -> None:
        self.entered.set()
        if not self.release.wait(HANG):
            raise TimeoutError("the test never released the exporter")
        with self.lock:
            self.ids.update(r.span_id for r in records if type(r) is SpanRecord and r.name == "b")

    def close(self) -> None:
        pass


def dropped(root: alamos.Experiment) -> dict[str, float]:
    """``alamos_dropped_records_total`` by reason (the root's Prometheus registry)."""
    out: dict[str, float] = {}
    for family in root.registry.collect():
        if family.name.endswith("alamos_dropped_records"):
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    out[sample.labels["reason"]] = sample.value
    return out


def burst(exp: alamos.Experiment, n: int) -> None:
    trace = exp.trace
    for _ in range(n):
        with trace.prod("b"):
            pass


def traced_burst(exp: alamos.Experiment, peak: list[int]) -> None:
    """The burst, with the first TRACED spans under tracemalloc."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        burst(exp, TRACED)
        peak.append(tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()
    burst(exp, BURST - TRACED)


def test_a_burst_against_a_stalled_exporter(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    stalled = StalledExporter()
    root = new_root(
        "burst", None, spool, exporters=[stalled], max_queue=MAX_QUEUE, flush_interval=0.05
    )
    exp = root.sub("api")
    wait_until(stalled.entered.is_set, "the exporter to be called")  # now it is stalled

    peak: list[int] = []
    producer = threading.Thread(target=traced_burst, args=(exp, peak), daemon=True)
    producer.start()
    producer.join(HANG * 2)
    assert not producer.is_alive(), "the instrumented code blocked"
    assert peak and peak[0] < MAX_QUEUE * ALLOWANCE, f"peak {peak} bytes during the burst"

    # Durable (spooled) although the exporter is still stalled.
    assert root.flush(HANG)
    drops = dropped(root)
    # Every reason has its series from the start (at 0); only the queue dropped.
    assert set(drops) == set(DROP_REASONS)
    assert {reason for reason, n in drops.items() if n} <= {"queue_full"}
    lost = int(drops.get("queue_full", 0))
    stats = root.stats()
    assert stats.dropped == lost
    assert stats.exporters["stalled"].spooled > 0

    # Unstall: what the exporter holds is exported, the spool replayed.
    stalled.release.set()
    root.close(HANG)
    again = StalledExporter()
    again.release.set()
    replay = new_root("burst", None, spool, exporters=[again])  # the next start
    wait_until(lambda: replay.stats().spool_pending_bytes == 0, "the spool to be replayed")
    replay.close(HANG)

    exported = stalled.ids | again.ids
    assert len(exported) + lost == BURST
    assert 0 < len(exported) < BURST and lost > 0  # the queue really was full
