"""Console output and the instrumented thread (issue 10, defect 11a).

With ``console=True`` each alamos log call is also passed to loguru, which
writes to your sinks synchronously on the calling thread, as loguru itself
does: a sink that blocks (a stderr pipe nobody reads) blocks the log call.
``console=False`` keeps alamos logs out of loguru entirely, and a sink added
with loguru's own ``enqueue=True`` moves the writing to loguru's thread.
These tests pin that documented trade-off.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from loguru import logger

from alamos.testing import Recorder

BLOCK = 5.0  # how long a stuck sink holds a caller, at most, in these tests


@pytest.fixture
def stuck_sink() -> Iterator[threading.Event]:
    """A loguru sink that blocks until released (as a full pipe would)."""
    release = threading.Event()
    entered = threading.Event()

    def sink(message: object) -> None:
        entered.set()
        release.wait(BLOCK)

    handler = logger.add(sink, level="TRACE", filter=lambda r: r["extra"].get("alamos", False))
    try:
        yield entered
    finally:
        release.set()
        logger.remove(handler)


def log_in_thread(root_log: object) -> threading.Thread:
    thread = threading.Thread(target=lambda: root_log.info("hello"), daemon=True)  # type: ignore[attr-defined]
    thread.start()
    return thread


def test_console_on_writes_on_the_calling_thread(
    rec: Recorder, stuck_sink: threading.Event
) -> None:
    root = rec.new("server", console=True)
    thread = log_in_thread(root.log)
    assert stuck_sink.wait(BLOCK), "the sink was never called"
    thread.join(0.5)
    assert thread.is_alive(), "console=True is documented to write synchronously"


def test_console_off_never_reaches_loguru(rec: Recorder, stuck_sink: threading.Event) -> None:
    root = rec.new("server", console=False)
    thread = log_in_thread(root.log)
    thread.join(BLOCK)
    assert not thread.is_alive()
    assert not stuck_sink.is_set()
    assert [r.message for r in rec.logs()] == ["hello"]


def test_an_enqueued_sink_does_not_hold_the_caller(rec: Recorder) -> None:
    release = threading.Event()
    handler = logger.add(
        lambda m: release.wait(BLOCK),
        level="TRACE",
        enqueue=True,
        filter=lambda r: r["extra"].get("alamos", False),
    )
    try:
        root = rec.new("server", console=True)
        thread = log_in_thread(root.log)
        thread.join(BLOCK)
        assert not thread.is_alive()
    finally:
        release.set()
        logger.remove(handler)
