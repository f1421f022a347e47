"""Delivery: retries, spooling and replay, against a real SQLite exporter."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from alamos.core.level import Level
from alamos.core.records import LogRecord, Record
from alamos.report.pipeline.codec import dumps_batch
from alamos.report.pipeline.delivery import Delivery
from alamos.report.pipeline.spool import Spool

ROOT = Path(__file__).resolve().parents[2]
HANG = 30.0  # generous "did not hang" guard; never a performance assertion
UNOPENABLE = "/proc/nonexistent/alamos.db"  # fails for root too


class SqliteExporter:
    """A real exporter: INSERT OR IGNORE by id into a SQLite file.

    ``down = True`` points it at a path SQLite cannot open (a real failure);
    clearing ``running`` makes ``export`` block (a stalled database)."""

    synchronous = False

    def __init__(self, path: Path, name: str = "sqlite") -> None:
        self.path = path
        self.name = name
        self.min_level = Level.BENCH
        self.down = False
        self.running = threading.Event()
        self.running.set()
        self.entered = threading.Event()
        self.attempts = 0
        self.closed = False

    def export(self, records: Sequence[Record]) -> None:
        self.entered.set()
        self.running.wait()
        self.attempts += 1
        conn = sqlite3.connect(UNOPENABLE if self.down else str(self.path), timeout=HANG)
        try:
            with conn:
                conn.execute("CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY)")
                conn.execute("CREATE TABLE IF NOT EXISTS deliveries (id TEXT NOT NULL)")
                rows = [(r.id,) for r in records]
                conn.executemany("INSERT OR IGNORE INTO records (id) VALUES (?)", rows)
                conn.executemany("INSERT INTO deliveries (id) VALUES (?)", rows)
        finally:
            conn.close()

    def close(self) -> None:
        self.closed = True

    def query(self, sql: str) -> list[tuple[str, int]]:
        if not self.path.exists():
            return []
        conn = sqlite3.connect(str(self.path), timeout=HANG)
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY)")
            conn.execute("CREATE TABLE IF NOT EXISTS deliveries (id TEXT NOT NULL)")
            return list(conn.execute(sql))
        finally:
            conn.close()

    def ids(self) -> list[str]:
        return sorted(row[0] for row in self.query("SELECT id FROM records"))

    def deliveries(self) -> dict[str, int]:
        sql = "SELECT id, count(*) FROM deliveries GROUP BY id"
        return dict(self.query(sql))


def batch(prefix: str, n: int = 3) -> list[Record]:
    return [
        LogRecord(
            id=f"{prefix}-{i}",
            ts_ns=i,
            path="root",
            level="INFO",
            message="m",
            trace_id=None,
            span_id=None,
            attributes={"i": i},
            location=None,
            service="svc",
            node="n",
        )
        for i in range(n)
    ]


def ids_of(*batches: list[Record]) -> list[str]:
    return sorted(r.id for b in batches for r in b)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + HANG
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def exporter(tmp_path: Path) -> SqliteExporter:
    return SqliteExporter(tmp_path / "alamos.db")


@pytest.fixture
def make_delivery(tmp_path: Path) -> Iterator[Callable[..., Delivery]]:
    made: list[Delivery] = []

    def make(exporter: SqliteExporter, **kwargs: object) -> Delivery:
        kwargs.setdefault("spool_dir", tmp_path / "spool")
        kwargs.setdefault("retry_initial", 0.01)
        kwargs.setdefault("retry_max", 0.1)
        kwargs.setdefault("stall_timeout", HANG)  # flush spools nothing unless a test wants it
        delivery = Delivery(exporter, **kwargs)  # type: ignore[arg-type]
        made.append(delivery)
        return delivery

    yield make
    for delivery in made:
        delivery.close(HANG)


def outage_logs(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    messages = [r.getMessage() for r in caplog.records if r.name == "alamos.report"]
    return (
        sum("failing" in m and "exporter" in m for m in messages),
        sum("recovered" in m for m in messages),
    )


def test_exports_in_the_background(
    exporter: SqliteExporter, make_delivery: Callable[..., Delivery]
) -> None:
    delivery = make_delivery(exporter)
    batches = [batch(f"b{i}") for i in range(10)]
    for b in batches:
        delivery.submit(b)
    assert delivery.flush(HANG)
    assert exporter.ids() == ids_of(*batches)
    assert delivery.stats.exported == 30 and delivery.stats.dropped == 0
    assert threading.current_thread().name != f"alamos-delivery-{exporter.name}"
    assert any(t.name == "alamos-delivery-sqlite" and t.daemon for t in threading.enumerate())
    assert delivery.close(HANG) and exporter.closed
    assert delivery.close(HANG)  # idempotent


def test_retry_with_backoff_then_recovery_in_memory(
    exporter: SqliteExporter,
    make_delivery: Callable[..., Delivery],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="alamos.report")
    delivery = make_delivery(exporter, spool_dir=None)
    exporter.down = True
    batches = [batch(f"b{i}") for i in range(3)]
    for b in batches:
        delivery.submit(b)
    wait_until(lambda: delivery.stats.failures >= 6, "several retries")
    assert delivery._backoff == pytest.approx(0.1)  # 0.01 doubling, capped at retry_max
    assert exporter.ids() == []
    exporter.down = False
    assert delivery.flush(HANG)
    assert exporter.ids() == ids_of(*batches)
    assert set(exporter.deliveries().values()) == {1}  # each record exported exactly once
    stats = delivery.stats
    assert stats.exported == 9 and stats.dropped == 0 and stats.spooled == 0
    wait_until(lambda: outage_logs(caplog) == (1, 1), "one failing and one recovered line")


def test_outage_spools_then_replays_exactly_once(
    exporter: SqliteExporter,
    make_delivery: Callable[..., Delivery],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="alamos.report")
    delivery = make_delivery(exporter)
    exporter.down = True
    batches = [batch(f"b{i}") for i in range(5)]
    for b in batches:
        delivery.submit(b)
    assert delivery.flush(HANG)  # all of it is in the spool now
    assert delivery.stats.spooled == 15
    assert delivery.spool is not None and delivery.spool.pending() > 0
    wait_until(lambda: delivery.stats.failures >= 3, "retries against the spool")
    assert exporter.ids() == []

    exporter.down = False
    wait_until(lambda: delivery.stats.replayed == 15, "replay after recovery")
    wait_until(lambda: delivery.spool is not None and delivery.spool.pending() == 0, "empty spool")
    assert exporter.ids() == ids_of(*batches)
    assert set(exporter.deliveries().values()) == {1}
    assert delivery.stats.replayed == 15 and delivery.stats.dropped == 0
    wait_until(lambda: outage_logs(caplog) == (1, 1), "one failing and one recovered line")


def test_replay_at_next_start(exporter: SqliteExporter, tmp_path: Path) -> None:
    exporter.down = True
    first = Delivery(exporter, spool_dir=tmp_path / "spool", retry_initial=0.01)
    batches = [batch(f"b{i}") for i in range(4)]
    for b in batches:
        first.submit(b)
    assert first.close(HANG)
    assert exporter.ids() == [] and list((tmp_path / "spool").glob("spool-*.jsonl"))

    exporter.down = False
    second = Delivery(exporter, spool_dir=tmp_path / "spool")
    second.start()
    wait_until(lambda: second.stats.replayed == 12, "replay at start")
    assert exporter.ids() == ids_of(*batches)
    assert set(exporter.deliveries().values()) == {1}
    assert second.close(HANG)
    assert not list((tmp_path / "spool").glob("spool-*.jsonl"))


def test_torn_last_line_is_skipped_and_the_rest_delivered(
    exporter: SqliteExporter, make_delivery: Callable[..., Delivery], tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append(batch("a"))
    spool.append(batch("b"))
    path = spool.path
    spool.close()
    assert path is not None
    half = dumps_batch(batch("c"))
    with path.open("ab") as f:
        f.write(half[: len(half) // 2])

    delivery = make_delivery(exporter)
    delivery.start()
    wait_until(lambda: delivery.stats.torn_lines == 1, "the torn line counted")
    assert exporter.ids() == ids_of(batch("a"), batch("b"))
    assert delivery.stats.replayed == 6


def test_replay_after_a_sigkilled_writer(exporter: SqliteExporter, tmp_path: Path) -> None:
    code = """
        import sys
        from pathlib import Path
        from alamos.core.records import LogRecord
        from alamos.report.pipeline.spool import Spool

        spool = Spool(Path(sys.argv[1]))
        i = 0
        while True:
            spool.append([LogRecord(id=f"b{i}-{j}", ts_ns=j, path="p", level="INFO", message="m",
                                    trace_id=None, span_id=None, attributes={}, location=None,
                                    service="s", node="n") for j in range(2)])
            print(i, flush=True)
            i += 1
    """
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), str(tmp_path / "spool")],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert child.stdout is not None
        acked = [int(child.stdout.readline()) for _ in range(25)]
    finally:
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=HANG)
    acked += [int(x) for x in out.split()]

    delivery = Delivery(exporter, spool_dir=tmp_path / "spool")
    delivery.start()
    expected = {f"b{i}-{j}" for i in acked for j in range(2)}
    wait_until(lambda: expected <= set(exporter.ids()), "every acknowledged batch replayed")
    assert delivery.close(HANG)
    assert delivery.stats.torn_lines <= 1


def test_stalled_exporter_never_blocks_submit(
    exporter: SqliteExporter, make_delivery: Callable[..., Delivery]
) -> None:
    delivery = make_delivery(exporter, max_pending_batches=4, stall_timeout=0.2)
    exporter.running.clear()
    batches = [batch(f"b{i}") for i in range(100)]
    slowest = 0.0

    def submit_all() -> None:
        nonlocal slowest
        for b in batches:
            t0 = time.monotonic()
            delivery.submit(b)
            slowest = max(slowest, time.monotonic() - t0)

    submitter = threading.Thread(target=submit_all)
    submitter.start()
    submitter.join(HANG)
    assert not submitter.is_alive(), "submit blocked on a stalled exporter"
    assert slowest < HANG
    assert exporter.entered.wait(HANG)
    assert delivery.stats.spooled >= 3 * 90  # all but the in-flight and queued batches
    assert delivery.flush(HANG)  # the in-flight and queued batches get spooled too
    assert exporter.ids() == []

    exporter.running.set()
    wait_until(lambda: len(exporter.ids()) == 300, "delivery after the stall")
    assert exporter.ids() == ids_of(*batches)
    assert delivery.stats.dropped == 0


def test_exporter_and_disk_failing_drop_with_exact_count(
    exporter: SqliteExporter, make_delivery: Callable[..., Delivery], tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the spool folder should be")
    drops: list[tuple[int, str]] = []
    delivery = make_delivery(
        exporter,
        spool_dir=blocker / "spool",
        max_pending_batches=2,
        on_drop=lambda n, why: drops.append((n, why)),
    )
    exporter.down = True
    kept = [batch("held", 3), batch("q1", 4), batch("q2", 4)]
    delivery.submit(kept[0])
    wait_until(lambda: delivery.stats.failures >= 1, "the first failure")
    for b in kept[1:]:
        delivery.submit(b)  # no spool: kept in memory while the hand-off has room
    for i in range(3):
        delivery.submit(batch(f"lost{i}", 5))
    assert [n for n, _ in drops] == [5, 5, 5]
    assert all("failing" in why for _, why in drops)
    assert delivery.stats.dropped == 15

    exporter.down = False
    assert not delivery.flush(HANG)  # delivered what it kept, but records were dropped
    assert exporter.ids() == ids_of(*kept)
    assert delivery.flush(HANG)
    assert delivery.stats.dropped == 15 and len(drops) == 3


@pytest.mark.parametrize("spool", ["none", "broken"])
def test_flush_times_out_while_stalled_without_a_spool(
    exporter: SqliteExporter, make_delivery: Callable[..., Delivery], tmp_path: Path, spool: str
) -> None:
    spool_dir = None
    if spool == "broken":
        (tmp_path / "blocker").write_text("not a folder")
        spool_dir = tmp_path / "blocker" / "spool"
    delivery = make_delivery(exporter, spool_dir=spool_dir, stall_timeout=0.05)
    exporter.running.clear()
    delivery.submit(batch("a"))
    assert exporter.entered.wait(HANG)
    assert delivery.flush(0.2) is False
    exporter.running.set()
    assert delivery.flush(HANG)
    assert exporter.ids() == ids_of(batch("a"))


def test_concurrent_submits_from_threads(
    exporter: SqliteExporter, make_delivery: Callable[..., Delivery]
) -> None:
    delivery = make_delivery(exporter, max_pending_batches=4)
    per_thread, threads = 40, 8
    barrier = threading.Barrier(threads)

    def worker(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            delivery.submit(batch(f"t{t}-b{i}", 2))

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(HANG)
        assert not w.is_alive()
    assert delivery.flush(HANG)
    total = threads * per_thread * 2

    def delivered() -> int:
        stats = delivery.stats
        return stats.exported + stats.replayed

    wait_until(lambda: delivered() == total, "every record exported or replayed")
    assert len(exporter.ids()) == total and delivery.stats.dropped == 0
    assert set(exporter.deliveries().values()) == {1}


def test_submit_after_close_goes_to_the_spool(exporter: SqliteExporter, tmp_path: Path) -> None:
    delivery = Delivery(exporter, spool_dir=tmp_path / "spool", stall_timeout=HANG)
    delivery.submit(batch("a"))
    assert delivery.close(HANG)
    delivery.submit(batch("late"))
    assert delivery.stats.spooled == 3 and delivery.stats.dropped == 0
    got: list[list[Record]] = []
    Spool(tmp_path / "spool").replay(got.append)
    assert got == [batch("late")]


def test_forked_child_gets_its_own_thread_and_spool_file(
    exporter: SqliteExporter, tmp_path: Path
) -> None:
    exporter.down = True
    delivery = Delivery(exporter, spool_dir=tmp_path / "spool", retry_initial=0.01)
    delivery.submit(batch("parent"))
    assert delivery.flush(HANG) and delivery.stats.spooled == 3
    folder = tmp_path / "spool"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            assert delivery.stats.spooled == 0  # fresh state, lazily restarted
            delivery.submit(batch("child"))
            ok = delivery.flush(HANG) and delivery.stats.spooled == 3
            mine = list(folder.glob(f"spool-{os.getpid()}-*.jsonl"))
            theirs = list(folder.glob(f"spool-{os.getppid()}-*.jsonl"))
            code = 0 if ok and len(mine) == 1 and len(theirs) == 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(list(folder.glob("spool-*.jsonl"))) == 2

    exporter.down = False  # the parent replays its own file and the dead child's
    wait_until(lambda: len(exporter.ids()) == 6, "both files replayed")
    assert exporter.ids() == ids_of(batch("child"), batch("parent"))
    assert delivery.close(HANG)


def test_close_replays_what_a_slow_flush_spooled_when_the_exporter_is_healthy(
    make_delivery: Callable[..., Delivery], exporter: SqliteExporter, tmp_path: Path
) -> None:
    # A flush that outwaits its grace period spools the unfinished batches
    # (durable, returns True); once the exporter is healthy again, close()
    # must leave the database complete and the spool empty, not wait for the
    # next start.
    delivery = make_delivery(exporter, spool_dir=tmp_path / "spool", stall_timeout=0.05)
    exporter.running.clear()  # stalled
    batches = [batch(f"b{i}", 5) for i in range(6)]
    for b in batches:
        delivery.submit(b)
    assert exporter.entered.wait(HANG)
    assert delivery.flush(timeout=HANG)
    assert delivery.stats.spooled > 0
    exporter.running.set()  # healthy again
    assert delivery.close(timeout=HANG)
    assert exporter.ids() == ids_of(*batches)
    assert delivery.spool is not None
    assert delivery.spool.pending() == 0
    assert delivery.stats.replayed > 0
