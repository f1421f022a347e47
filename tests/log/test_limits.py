"""Limits at the source for logs (issue 10): messages are text made on the
caller's thread, cut at ``MAX_MESSAGE``; a long message is put with its size,
and the hand-off bounds the bytes it holds (``max_queue_bytes``)."""

from __future__ import annotations

import gc
import sqlite3
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from sys import getsizeof
from typing import Any

import pytest
from loguru import logger

import alamos
from alamos import Experiment
from alamos.core.attributes import MAX_MESSAGE, MAX_STRING
from alamos.core.handoff import DEFAULT_MAX_BYTES, ITEM_BYTES, Handoff
from alamos.core.scope import LiveScope, Scope
from alamos.log import Logger, capture
from alamos.report.pipeline.codec import dumps_batch, loads_batch
from alamos.testing import Recorder

MB2 = "m" * 2_000_000
#: What a message of 2 MB holds once cut: MAX_MESSAGE characters and "…",
#: 2 bytes each (the "…" makes CPython store the text as UCS-2).
CUT = getsizeof(MB2[:MAX_MESSAGE] + "…")
HANG = 120.0


def logger_on(handoff: Handoff) -> Logger:
    """A logger putting into ``handoff``, which has no worker: what is put stays."""
    return Logger(LiveScope(Scope("svc", bench=True, debug=True, prod=True)), handoff.put, False)


def test_messages_are_cut_at_the_limit(rec: Recorder, root: Experiment) -> None:
    root.log.info("a" * MAX_MESSAGE)
    root.log.info("b" * (MAX_MESSAGE + 1))
    root.log.info("{}", MB2)  # formatted first, then cut
    root.log.warning(MB2.encode())
    messages = [r.message for r in rec.logs()]
    assert messages == [
        "a" * MAX_MESSAGE,
        "b" * MAX_MESSAGE + "…",
        MB2[:MAX_MESSAGE] + "…",
        repr(MB2.encode())[:MAX_MESSAGE] + "…",
    ]


def test_the_console_gets_the_cut_message_too(rec: Recorder) -> None:
    got: list[str] = []
    handler = logger.add(lambda m: got.append(m.record["message"]), format="{message}")
    try:
        exp = rec.new("server", console=True)
        exp.log.info(MB2)
    finally:
        logger.remove(handler)
    assert got == [MB2[:MAX_MESSAGE] + "…"]


def test_captured_loguru_messages_are_cut(rec: Recorder, root: Experiment) -> None:
    handle = capture(root)
    try:
        logger.info(MB2)
    finally:
        handle.close()
    assert rec.log().message == MB2[:MAX_MESSAGE] + "…"


class RaisingStr:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        return "<RaisingStr>"


class SubStr(str):
    def __str__(self) -> str:
        raise RuntimeError("user code")


class Returns:
    def __str__(self) -> str:
        return SubStr("sub")


def test_messages_are_plain_text_and_round_trip_through_the_spool(
    rec: Recorder, root: Experiment
) -> None:
    root.log.info(RaisingStr())
    root.log.info(SubStr("plain"))
    root.log.info(Returns())
    root.log.info(10**5000)  # str() of it raises: its repr is used
    root.log.info("{}", 10**5000)  # a format error is reported in the message
    root.log.info("x", big=10**5000, raw=b"\x00", obj=RaisingStr())
    records = rec.logs()
    assert [r.message for r in records[:3]] == ["<RaisingStr>", "plain", "sub"]
    assert all(type(r.message) is str and len(r.message) <= MAX_MESSAGE + 1 for r in records)
    assert records[-1].attributes["big"] == f"<int of {(10**5000).bit_length()} bits>"
    assert loads_batch(dumps_batch(records)) == records


def test_messages_are_made_text_once_on_the_callers_thread(tmp_path: Path) -> None:
    calls: list[int] = []

    class Message:
        def __str__(self) -> str:
            calls.append(threading.get_ident())
            return "hello"

    url = f"sqlite:///{tmp_path / 'a.db'}"
    root = alamos.new("svc", db=url, console=True, spool_dir=tmp_path / "spool")
    root.log.info(Message())
    root.log.info("{m}", m=Message())
    assert root.flush(HANG)
    root.close(HANG)
    # Twice for "{m}": once formatting the message, once as the attribute m
    # (its repr, not its str); nothing on the worker, in flush or at close.
    assert calls == [threading.get_ident()] * 2
    with sqlite3.connect(tmp_path / "a.db") as conn:
        stored = [m for (m,) in conn.execute("SELECT message FROM alamos_logs")]
    assert stored == ["hello", "hello"]


# -- the byte bound ------------------------------------------------------------------------


def test_long_messages_count_their_bytes() -> None:
    handoff = Handoff(100_000, 512, lambda: None)
    log = logger_on(handoff)
    log.info("short")
    assert handoff.queued_bytes == ITEM_BYTES
    log.info("x" * 1000)
    size = 2 * ITEM_BYTES + getsizeof("x" * 1000)
    assert handoff.queued_bytes == size
    log.info(MB2)
    size += ITEM_BYTES + CUT
    assert handoff.queued_bytes == size
    log.info("k", a="a" * 5000, b=("b" * 300, 1), c="c" * 10)
    attrs = getsizeof("a" * MAX_STRING + "…") + getsizeof("b" * 300)
    size += ITEM_BYTES + attrs
    assert handoff.queued_bytes == size
    try:
        raise ValueError("v" * 1000)
    except ValueError:
        log.exception("failed")  # its traceback, in the attribute "exception"
    assert handoff.queued_bytes > size + ITEM_BYTES + 1000
    handoff.take(3)
    assert handoff.queued_bytes > 2 * ITEM_BYTES + attrs + 1000
    handoff.take(10)
    assert handoff.queued_bytes == 0


def queued_memory(count: int, message: str, handoff: Handoff) -> int:
    """Bytes that ``count`` log calls of ``message`` leave allocated, queued."""
    log = logger_on(handoff)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(count):
            log.info(message[:-1] + "!")  # a new string each time, freed after the call
        gc.collect()
        return int(tracemalloc.get_traced_memory()[0] - before)
    finally:
        tracemalloc.stop()


def test_100_messages_of_2_mb_queue_what_the_limits_allow() -> None:
    """Issue 10: 100 messages of 2 MB each added 192 MiB to the queue; they
    are cut at MAX_MESSAGE (32 Ki characters): about 6.3 MiB now."""
    handoff = Handoff(100_000, 512, lambda: None)
    grown = queued_memory(100, MB2, handoff)
    assert len(handoff) == 100 and handoff.dropped == 0
    assert grown < 16 * 1024 * 1024, f"{grown / 2**20:.1f} MiB queued"  # 191 MiB before
    assert handoff.queued_bytes == 100 * (ITEM_BYTES + CUT)


def test_the_queue_is_bounded_in_bytes() -> None:
    handoff = Handoff(100_000, 512, lambda: None, max_bytes=1 << 20)
    grown = queued_memory(200, MB2, handoff)
    kept = len(handoff)
    assert handoff.queued_bytes <= 1 << 20 and kept == (1 << 20) // (ITEM_BYTES + CUT)
    assert handoff.dropped == 200 - kept  # counted, like a full queue
    assert grown < 4 * 1024 * 1024, f"{grown / 2**20:.1f} MiB queued"
    # Small items are bounded too, by the fixed estimate: what is left of the budget.
    log = logger_on(handoff)
    for _ in range(10_000):
        log.info("small")
    assert handoff.queued_bytes <= 1 << 20
    assert len(handoff) == ((1 << 20) - kept * CUT) // ITEM_BYTES
    # Once the worker took them, there is room again.
    handoff.take(len(handoff))
    log.info(MB2)
    assert len(handoff) == 1 and handoff.queued_bytes == ITEM_BYTES + CUT


def test_a_closed_or_full_queue_drops_sized_items_too() -> None:
    handoff = Handoff(2, 512, lambda: None)
    log = logger_on(handoff)
    log.info("a")
    log.info("b")
    log.info(MB2)  # the item bound
    assert len(handoff) == 2 and handoff.dropped == 1
    handoff.take(2)
    handoff.close()
    log.info(MB2)
    log.info("c")
    assert len(handoff) == 0 and handoff.dropped == 3 and handoff.queued_bytes == 0


@pytest.mark.parametrize("bad", [0, ITEM_BYTES - 1, -1, 1.5, "64MiB", True])
def test_max_queue_bytes_is_checked(bad: Any, tmp_path: Path) -> None:
    message = f"max_queue_bytes must be an int of at least {ITEM_BYTES}"
    with pytest.raises(ValueError, match=message):
        alamos.new("svc", max_queue_bytes=bad, spool_dir=tmp_path)


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Experiment]:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    root = alamos.new(
        "svc", db=url, console=False, spool_dir=tmp_path / "spool", max_queue_bytes=1 << 20
    )
    yield root
    root.close(HANG)


def test_max_queue_bytes_reaches_the_queue_and_every_record_is_accounted_for(
    tree: Experiment, tmp_path: Path
) -> None:
    collector = tree._root_state.collector
    assert collector is not None and collector.handoff.max_bytes == 1 << 20
    assert alamos.new.__kwdefaults__["max_queue_bytes"] == DEFAULT_MAX_BYTES
    for _ in range(300):
        tree.log.info(MB2)
    assert tree.flush(HANG)
    dropped = tree.stats().dropped_queue_full
    tree.close(HANG)
    with sqlite3.connect(tmp_path / "a.db") as conn:
        stored = conn.execute("SELECT count(*), max(length(message)) FROM alamos_logs").fetchone()
    assert stored[0] + dropped == 300
    assert stored[1] == MAX_MESSAGE + 1
