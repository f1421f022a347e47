"""Closing a tree under faults (issue 10), end to end through ``alamos.new``
into a real SQLite file or a real PostgreSQL database:

* ``close()`` right after an outage leaves a healthy database complete (#1);
* ``close()``, ``flush()`` and the exit hook return within their timeout,
  even while a report provider hangs (#5);
* when ``close(timeout)`` runs out, what is left is spooled or counted, and
  ``close()`` says how many records are durable (#6);
* a metric snapshot is handed on in batches of ``batch_size`` (#9).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

import alamos
from alamos import Level
from alamos.core.records import MetricRecord, Record
from alamos.experiment.root import EXIT_TIMEOUT
from alamos.report.pipeline.spool import Spool

from .pipeline_support import (
    HANG,
    count,
    new_root,
    returns_within,
    run_script,
    spool_files,
    sqlite_unusable,
    wait_until,
)


def record(exp: alamos.Experiment, n: int, name: str) -> None:
    for i in range(n):
        with exp.trace.prod(name, attributes={"i": i}):
            pass


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[str, Callable[[], AbstractContextManager[None]]]:
    """A database URL, and a context manager during which it is unreachable
    (as in test_pipeline_outage: PostgreSQL really stopped, SQLite's folder
    moved away)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'alamos.db'}"
        return url, lambda: sqlite_unusable(url)
    server: Any = request.getfixturevalue("pg_server")
    if not server.controllable:
        pytest.skip("ALAMOS_TEST_PG_URL's server cannot be stopped by the tests")
    pg_url = str(request.getfixturevalue("pg_url"))

    @contextlib.contextmanager
    def down() -> Iterator[None]:
        server.stop()
        try:
            yield
        finally:
            server.start()

    return pg_url, down


# -- #1 -------------------------------------------------------------------------------


def test_close_right_after_an_outage_leaves_the_database_complete(
    backend: tuple[str, Callable[[], AbstractContextManager[None]]], tmp_path: Path
) -> None:
    # Before: close() saw the exporter still marked failing (its next retry,
    # after backing off, was seconds away) and returned at once, leaving what
    # the outage spooled for the next start.
    url, outage = backend
    if url.startswith("sqlite"):
        (tmp_path / "db").mkdir(exist_ok=True)
    root = new_root("bounce", url, tmp_path / "spool")
    api = root.sub("api")
    record(api, 100, "before")
    assert root.flush(HANG)
    (name,) = root.stats().exporters
    with outage():
        record(api, 500, "during")
        assert root.flush(HANG)  # durable in the spool
        # Seven failed tries: the next one is 1.6 s to 3.2 s away.
        wait_until(lambda: root.stats().exporters[name].failures >= 7, "the retries to back off")
    result = root.close(HANG)
    assert count(url, "alamos_spans", "name = 'during'") == 500
    assert count(url, "alamos_spans") == 600
    assert not spool_files(tmp_path / "spool")
    assert result.spool_pending_bytes == 0
    assert result.complete and result.dropped == 0 and not result.timed_out


# -- #6 -------------------------------------------------------------------------------


def test_close_timeout_spools_or_counts_what_is_left(sqlite_url: str, tmp_path: Path) -> None:
    # Before: close(timeout=0.3) with a busy queue returned None, and the
    # records it had no time for (58,528 spans in the issue) were neither
    # spooled nor counted.
    n = 100_000
    root = new_root("busy", sqlite_url, tmp_path / "spool", max_queue=n + 10_000)
    assert root.flush(HANG)  # the experiment record is stored: only spans are left
    record(root, n, "burst")
    timeout = 0.3
    result = returns_within(timeout + 3.0, lambda: root.close(timeout))
    stats = root.stats()
    assert isinstance(result, alamos.CloseResult)
    assert stats.dropped_queue_full == 0
    # What root.stats() counts (a worker may still drop what it held).
    assert result.dropped <= stats.dropped <= result.dropped + result.pending

    # The next start replays what close spooled.
    again = new_root("busy", sqlite_url, tmp_path / "spool")
    wait_until(lambda: again.stats().spool_pending_bytes == 0, "the spool to be replayed")
    again.close(HANG)
    stored = count(sqlite_url, "alamos_spans", "name = 'burst'")
    # Every span is stored or counted as dropped (``pending``: still in a
    # worker's hands when close returned, so it may have been stored since).
    assert stored + result.dropped <= n <= stored + result.dropped + result.pending
    assert result.complete == (result.dropped == 0 and result.pending == 0)


def test_a_healthy_close_says_everything_is_durable(sqlite_url: str, tmp_path: Path) -> None:
    root = new_root("healthy", sqlite_url, tmp_path / "spool")
    record(root.sub("api"), 300, "op")
    result = root.close(HANG)
    assert result.complete and not result.timed_out
    assert (result.dropped, result.pending, result.spool_pending_bytes) == (0, 0, 0)
    # Every record handed to the exporter is in the database.
    tables = ("spans", "logs", "metrics", "reports", "experiments")
    tables += ("span_stats", "span_stats_1h", "log_stats")
    assert result.durable == sum(count(sqlite_url, f"alamos_{t}") for t in tables)
    (stats,) = root.stats().exporters.values()
    assert result.durable == stats.exported >= 302
    assert root.close(HANG) == result  # a second close returns the first one's result
    assert alamos.NOOP.close() == alamos.CloseResult()


# -- #5 -------------------------------------------------------------------------------


def test_close_returns_in_time_while_a_report_provider_hangs(
    sqlite_url: str, tmp_path: Path
) -> None:
    # Before: close() took the last report snapshot on the calling thread,
    # so a provider that never returns made close() never return.
    release = threading.Event()

    def stuck() -> dict[str, Any]:
        release.wait(HANG)
        return {}

    root = new_root("stuck", sqlite_url, tmp_path / "spool")
    root.attach("stuck", stuck)
    record(root, 50, "op")
    try:
        result = returns_within(1.0 + 3.0, lambda: root.close(1.0))
    finally:
        release.set()
    assert count(sqlite_url, "alamos_spans", "name = 'op'") == 50
    assert result.dropped == 0


HANG_AT_EXIT = """
import sys
import threading

import alamos

root = alamos.new("exit", db=sys.argv[1], spool_dir=sys.argv[2], console=False)
root.attach("stuck", lambda: threading.Event().wait() or {})
for i in range(100):
    with root.trace.prod("op"):
        pass
print("exiting without close", flush=True)
"""


def test_the_exit_hook_returns_in_time_while_a_report_provider_hangs(
    sqlite_url: str, tmp_path: Path
) -> None:
    # Before: the atexit hook's close() waited for the provider forever, so
    # the process never exited.
    done = run_script(HANG_AT_EXIT, sqlite_url, str(tmp_path / "spool"), timeout=EXIT_TIMEOUT + 30)
    assert done.returncode == 0, done.stderr
    assert "exiting without close" in done.stdout
    assert count(sqlite_url, "alamos_spans", "name = 'op'") == 100


# -- #9 (the collector's part) --------------------------------------------------------------


class BatchExporter:
    """A background exporter that keeps each batch's size (and fails while
    ``down``)."""

    synchronous = False
    min_level = Level.BENCH
    name = "batches"

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.metrics = 0
        self.down = False

    def export(self, records: Sequence[Record]) -> None:
        if self.down:
            raise ConnectionError("down")
        self.sizes.append(len(records))
        self.metrics += sum(type(r) is MetricRecord for r in records)

    def close(self) -> None:
        pass


def test_a_metric_snapshot_is_split_into_batches(tmp_path: Path) -> None:
    # Before: one flush handed the whole snapshot (every label set of every
    # metric) to the exporter as one batch, and to the spool as one line.
    exporter = BatchExporter()
    root = alamos.new(
        "snap",
        exporters=[exporter],
        spool_dir=tmp_path / "spool",
        batch_size=100,
        console=False,
        metrics_interval=3600,
        report_interval=3600,
    )
    counter = root.metrics.counter("requests", labelnames=["user"])
    for i in range(1000):
        counter.labels(f"u{i}").inc()
    assert root.flush(HANG)
    assert exporter.metrics >= 1000
    assert max(exporter.sizes) <= 100

    exporter.down = True  # the spool's lines too
    counter.labels("u0").inc()
    assert root.flush(HANG)
    root.close(HANG)
    lines: list[list[Record]] = []
    Spool(tmp_path / "spool" / "snap" / "batches").replay(lines.append)
    assert sum(len(line) for line in lines) >= 1000
    assert max(len(line) for line in lines) <= 100
