"""Delivery under faults (issue 10), against a real SQLite exporter:

* close() tries a failing exporter once more, and replays the spool if it
  works (#1);
* records the database refuses for good (``RecordsRejected``) are isolated
  by bisection and written to a dead-letter file, counted as ``rejected``;
  everything else is stored, also when the refused batch is replayed from
  the head of a spool, across restarts (#2);
* flush(timeout) and close(timeout) return within their timeout whatever
  the delivery thread or the exporter is stuck in (#5).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from alamos.core.errors import RecordsRejected
from alamos.core.level import Level
from alamos.core.records import Record, ReportRecord
from alamos.report.pipeline.delivery import Delivery
from alamos.report.pipeline.spool import DeadLetters, Spool
from alamos.report.pipeline.stats import drop_label

from .pipeline_support import returns_within
from .test_delivery import HANG, SqliteExporter, batch, ids_of, wait_until

POISON = "poison"


class RejectingExporter(SqliteExporter):
    """The real SQLite exporter of test_delivery, with a database that
    refuses every batch holding a record whose message is ``"poison"``
    (``RecordsRejected``, as SQLExporter raises for a row the database will
    never take).  ``down_after``: the exporter goes down (a transient
    failure) after that many more calls."""

    def __init__(self, path: Path, name: str = "sqlite") -> None:
        super().__init__(path, name)
        self.calls = 0
        self.down_after: int | None = None

    def export(self, records: Sequence[Record]) -> None:
        self.calls += 1
        if self.down_after is not None:
            self.down_after -= 1
            if self.down_after < 0:
                self.down = True
        if not self.down and any(getattr(r, "message", None) == POISON for r in records):
            raise RecordsRejected(f"value too long for the index ({len(records)} rows)")
        super().export(records)


def poisoned(prefix: str, n: int, bad: set[int]) -> list[Record]:
    """``n`` log records, those at the indexes in ``bad`` poisoned."""
    return [
        attrs.evolve(r, message=POISON) if i in bad else r for i, r in enumerate(batch(prefix, n))
    ]


@pytest.fixture
def exporter(tmp_path: Path) -> SqliteExporter:
    return SqliteExporter(tmp_path / "alamos.db")


@pytest.fixture
def rejecting(tmp_path: Path) -> RejectingExporter:
    return RejectingExporter(tmp_path / "alamos.db")


@pytest.fixture
def make_delivery(tmp_path: Path) -> Iterator[Callable[..., Delivery]]:
    made: list[Delivery] = []

    def make(exporter: SqliteExporter, **kwargs: Any) -> Delivery:
        kwargs.setdefault("spool_dir", tmp_path / "spool")
        kwargs.setdefault("retry_initial", 0.01)
        kwargs.setdefault("retry_max", 0.1)
        kwargs.setdefault("stall_timeout", HANG)
        delivery = Delivery(exporter, **kwargs)
        made.append(delivery)
        return delivery

    yield make
    for delivery in made:
        delivery.close(HANG)


# -- #1: close tries the exporter once more --------------------------------------------


def test_close_tries_a_failing_exporter_once_more_and_replays_the_spool(
    exporter: SqliteExporter, tmp_path: Path
) -> None:
    # Before: close() saw the exporter still marked failing (the next retry
    # was far away, and close stops the retry thread) and left the batches in
    # the spool for the next start.
    delivery = Delivery(exporter, spool_dir=tmp_path / "spool", retry_initial=60.0)
    exporter.down = True
    batches = [batch(f"b{i}", 5) for i in range(8)]
    for b in batches:
        delivery.submit(b)
    assert delivery.flush(HANG)  # durable in the spool
    assert delivery.stats.spooled == 40 and exporter.ids() == []
    exporter.down = False  # the database is back; the next retry is a minute away
    assert delivery.close(HANG)
    assert exporter.ids() == ids_of(*batches)
    assert delivery.spool is not None and delivery.spool.pending() == 0
    assert delivery.stats.replayed == 40
    assert exporter.closed


def test_close_leaves_the_spool_for_the_next_start_when_the_exporter_still_fails(
    exporter: SqliteExporter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="alamos.report")
    delivery = Delivery(exporter, spool_dir=tmp_path / "spool", retry_initial=60.0)
    exporter.down = True
    delivery.submit(batch("a", 5))
    assert delivery.flush(HANG)
    failures = delivery.stats.failures
    assert delivery.close(HANG)  # nothing dropped: it waits in the spool
    assert delivery.stats.failures == failures + 1  # tried once more
    assert delivery.spool is not None and delivery.spool.pending() > 0
    assert any("still failing at close" in r.getMessage() for r in caplog.records)
    exporter.down = False
    again = Delivery(exporter, spool_dir=tmp_path / "spool")
    assert again.close(HANG)  # a delivery never used still replays at close
    assert exporter.ids() == ids_of(batch("a", 5))


# -- #2: records the database refuses for good -------------------------------------------


def test_rejected_records_are_isolated_and_dead_lettered_and_the_rest_is_stored(
    rejecting: RejectingExporter,
    make_delivery: Callable[..., Delivery],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="alamos.report")
    drops: list[tuple[int, str]] = []
    delivery = make_delivery(rejecting, on_drop=lambda n, why: drops.append((n, why)))
    bad = {3, 50, 51}
    records = poisoned("p", 100, bad)
    delivery.submit(records)
    delivery.submit(batch("after", 10))  # the exporter goes on with the next batch
    assert delivery.flush(HANG) is False  # three records were not stored
    assert delivery.flush(HANG) is True
    good = [r for i, r in enumerate(records) if i not in bad]
    assert rejecting.ids() == ids_of(good, batch("after", 10))
    assert set(rejecting.deliveries().values()) == {1}  # each stored once
    stats = delivery.stats
    assert (stats.rejected, stats.dropped, stats.exported, stats.spooled) == (3, 3, 107, 0)
    assert [(n, drop_label(why)) for n, why in drops] == [(3, "rejected")]
    assert "value too long" in drops[0][1]
    # The dead-letter file, next to the spool: each refused record, with the reason.
    dead = DeadLetters(tmp_path / "spool")
    (path,) = dead.files()
    assert path.name.startswith("dead-letter-") and path.parent == tmp_path / "spool"
    letters = dead.read()
    assert sorted(d.record.id for d in letters) == sorted(records[i].id for i in bad)
    by_id = {r.id: r for r in records}
    assert all(d.record == by_id[d.record.id] for d in letters)  # decoded as they were
    assert all("value too long" in d.reason and d.exporter == "sqlite" for d in letters)
    warned = [r.getMessage() for r in caplog.records if "refused 3 records" in r.getMessage()]
    assert warned and str(path) in warned[0]
    # Bisection: about 2 log2(n) calls per bad record, not one per record.
    assert rejecting.calls < 40


def test_a_poison_batch_at_the_head_of_the_spool_no_longer_blocks_it(
    rejecting: RejectingExporter, tmp_path: Path
) -> None:
    # An earlier process spooled a batch the database refuses, then more.
    # Before: replay stopped at it forever, and every later batch queued up
    # behind it, across restarts.
    spool = Spool(tmp_path / "spool")
    head = poisoned("head", 6, {0, 5})
    spool.append(head)
    later = [batch(f"later{i}") for i in range(3)]
    for b in later:
        spool.append(b)
    spool.close()

    first = Delivery(rejecting, spool_dir=tmp_path / "spool")
    first.start()
    wanted = ids_of([r for i, r in enumerate(head) if i not in (0, 5)], *later)
    wait_until(lambda: rejecting.ids() == wanted, "the spool replayed past the poison")
    assert first.close(HANG)
    assert first.stats.rejected == 2 and first.stats.replayed == 13
    assert not list((tmp_path / "spool").glob("spool-*.jsonl"))

    # A restart finds nothing left: the poison is not replayed, nor counted, again.
    second = Delivery(rejecting, spool_dir=tmp_path / "spool")
    assert second.close(HANG)
    assert second.stats.rejected == 0 and second.stats.replayed == 0
    assert len(DeadLetters(tmp_path / "spool").read()) == 2


def test_a_transient_failure_while_isolating_keeps_the_rest(
    rejecting: RejectingExporter, make_delivery: Callable[..., Delivery], tmp_path: Path
) -> None:
    # The database goes away in the middle of the bisection: what was stored
    # stays stored, what was refused is dead-lettered once, the rest is spooled
    # and replayed once the database is back; nothing twice, nothing lost.
    delivery = make_delivery(rejecting)
    records = poisoned("p", 64, {7, 40})
    # The whole batch and nine halves (record 7 isolated on the way), then down.
    rejecting.down_after = 10
    delivery.submit(records)
    assert delivery.flush(HANG) is False  # the refused ones are not stored
    assert delivery.stats.spooled > 0
    rejecting.down_after = None
    rejecting.down = False
    good = [r for i, r in enumerate(records) if i not in (7, 40)]
    wait_until(lambda: rejecting.ids() == ids_of(good), "the rest replayed")
    assert set(rejecting.deliveries().values()) == {1}
    assert delivery.stats.rejected == 2
    assert sorted(d.record.id for d in DeadLetters(tmp_path / "spool").read()) == sorted(
        records[i].id for i in (7, 40)
    )


def test_rejected_records_without_a_spool_are_counted(
    rejecting: RejectingExporter, make_delivery: Callable[..., Delivery]
) -> None:
    delivery = make_delivery(rejecting, spool_dir=None)
    delivery.submit(poisoned("p", 10, {9}))
    assert delivery.flush(HANG) is False
    assert delivery.stats.rejected == delivery.stats.dropped == 1
    assert len(rejecting.ids()) == 9


# -- #5: bounded waits ---------------------------------------------------------------------


class Blocking:
    """A value whose ``str`` blocks until released: a delivery thread that
    spools it is stuck (as one writing to a hung disk would be)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def __str__(self) -> str:
        self.entered.set()
        self.release.wait(HANG)
        return "released"


def stuck_report(value: object) -> ReportRecord:
    return ReportRecord("r1", 1, "root", "k", {"v": value}, "svc", "n", Level.PROD)


def test_flush_and_close_return_while_the_thread_is_stuck_spooling(
    exporter: SqliteExporter, tmp_path: Path
) -> None:
    # The exporter fails, so the delivery thread spools the batch it held,
    # and gets stuck inside the spool.  Before: flush() and close() waited
    # for the spool lock it holds, forever.
    value = Blocking()
    delivery = Delivery(exporter, spool_dir=tmp_path / "spool", stall_timeout=0.1)
    exporter.down = True
    delivery.submit([stuck_report(value)])
    try:
        assert value.entered.wait(HANG)
        assert returns_within(0.5 + 3.0, lambda: delivery.flush(0.5)) is False
        assert returns_within(0.5 + 3.0, lambda: delivery.close(0.5)) is False
        # Still in the thread's hands: not durable, not dropped, but pending.
        assert delivery.close_pending == 1 and delivery.stats.dropped == 0
    finally:
        value.release.set()


class HangingExporter(SqliteExporter):
    """``export`` (once ``hang_export``) or ``close`` block until released."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.release = threading.Event()
        self.hang_export = False

    def export(self, records: Sequence[Record]) -> None:
        if self.hang_export:
            self.entered.set()
            self.release.wait(HANG)
        super().export(records)

    def close(self) -> None:
        self.release.wait(HANG)
        super().close()


def test_close_returns_in_time_when_the_exporter_hangs(tmp_path: Path) -> None:
    # Before: close() called exporter.close(), and replayed a spool left by
    # an earlier run, on the calling thread, without a bound.
    spool = Spool(tmp_path / "spool")
    spool.append(batch("earlier"))
    spool.close()
    exporter = HangingExporter(tmp_path / "alamos.db")
    exporter.hang_export = True
    delivery = Delivery(exporter, spool_dir=tmp_path / "spool")
    try:
        assert returns_within(0.5 + 3.0, lambda: delivery.close(0.5)) is True
        assert exporter.entered.is_set()  # the replay was tried, on the delivery thread
        assert not exporter.closed
    finally:
        exporter.hang_export = False
        exporter.release.set()
    wait_until(lambda: exporter.closed, "the thread to close the exporter once released")
    assert exporter.ids() == ids_of(batch("earlier"))
