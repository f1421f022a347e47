"""Closing trees (close, with, async with), fork survival, debug mode."""

from __future__ import annotations

import contextvars
import multiprocessing
import os
import signal
import socket
import sqlite3
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import alamos
from alamos import Experiment, Level, UnendedSpansError
from alamos.core.records import Record, SpanRecord
from alamos.testing import Recorder


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class ListExporter:
    """A background exporter that keeps what it is given."""

    min_level = Level.BENCH
    name = "list"
    synchronous = False

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.closed = 0

    def export(self, records: Sequence[Record]) -> None:
        self.records.extend(records)

    def close(self) -> None:
        self.closed += 1

    def spans(self) -> list[SpanRecord]:
        return [r for r in self.records if isinstance(r, SpanRecord)]


# -- close ----------------------------------------------------------------------------


def test_close_twice_is_harmless(rec: Recorder) -> None:
    root = rec.new("server")
    root.metrics.counter("writes").inc()
    assert not root.closed
    root.close()
    n = len(rec.records)
    root.close()
    root.sub("cesium").close()
    assert root.closed
    assert len(rec.records) == n  # not even the experiment made after close


def test_close_exports_final_metrics_and_reports(rec: Recorder) -> None:
    root = rec.new("server")
    root.sub("cesium").metrics.counter("writes").inc(3)
    root.sub("cesium").attach("config", lambda: {"size": 7})
    assert rec.metrics == [] and rec.reports == []
    root.close()
    (metric,) = [m for m in rec.metrics if m.name == "writes"]
    assert (metric.path, metric.kind, metric.value) == ("server.cesium", "counter", 3.0)
    (report,) = rec.reports
    assert (report.path, report.key, dict(report.report)) == (
        "server.cesium",
        "config",
        {"size": 7},
    )


def test_everything_is_a_no_op_after_close(rec: Recorder) -> None:
    root = rec.new("server")
    cesium = root.sub("cesium")
    root.close()
    rec.clear()
    with cesium.trace.prod("late") as span:
        assert isinstance(span, alamos.NoopSpan)
    cesium.log.critical("late")
    root.sub("new").log.info("late")
    assert not any(cesium.enabled(lvl) for lvl in Level)
    assert rec.spans() == [] and rec.logs() == []


def test_closing_any_experiment_closes_the_tree(rec: Recorder) -> None:
    root = rec.new("server")
    root.metrics.counter("n").inc()
    root.sub("cesium").sub("wal").close()
    assert root.closed
    assert [m.path for m in rec.metrics] == ["server"]  # the whole tree's final metrics


def test_with_closes(rec: Recorder) -> None:
    with rec.new("server") as root:
        assert isinstance(root, Experiment) and not root.closed
        root.metrics.counter("n").inc()
    assert root.closed
    assert [m.value for m in rec.metrics if m.name == "n"] == [1.0]


def test_with_closes_on_exception(rec: Recorder) -> None:
    with pytest.raises(KeyError), rec.new("server") as root:
        raise KeyError("x")
    assert root.closed


@pytest.mark.anyio
async def test_async_with_closes(rec: Recorder) -> None:
    async with rec.new("server") as root:
        with root.trace.prod("in"):
            pass
        assert not root.closed
    assert root.closed
    assert rec.span(name="in").path == "server"


@pytest.mark.anyio
async def test_async_with_a_background_exporter(tmp_path: Path) -> None:
    exporter = ListExporter()
    async with alamos.new(
        "server", exporters=[exporter], spool_dir=tmp_path, console=False
    ) as root:
        with root.trace.prod("in"):
            pass
    assert [s.name for s in exporter.spans()] == ["in"]
    assert exporter.closed == 1


def test_flush_and_close_with_a_background_exporter(tmp_path: Path) -> None:
    exporter = ListExporter()
    root = alamos.new("server", exporters=[exporter], spool_dir=tmp_path, console=False)
    with root.trace.prod("one"):
        root.log.info("hello")
    assert root.flush() is True
    assert [s.name for s in exporter.spans()] == ["one"]
    root.close()
    root.close()
    assert exporter.closed == 1
    assert root.flush() is True


def test_flush_without_background_exporters(rec: Recorder) -> None:
    root = rec.new("server")
    assert root.flush() is True


def test_exporters_are_checked() -> None:
    with pytest.raises(
        TypeError, match="is not an exporter: it needs min_level, name, synchronous"
    ):
        alamos.new("server", exporters=[object()], console=False)  # type: ignore[list-item]


# -- fork ---------------------------------------------------------------------------------


def _run_in_child(body: Callable[[], int]) -> int:
    """Fork, run ``body`` in the child, return the child's exit code."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 99
        try:
            code = body()
        except BaseException:
            traceback.print_exc()
            code = 98
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + 120  # a safety net against a deadlocked child
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:  # pragma: no cover
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.01)


fork_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@fork_only
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork with threads alive
def test_child_records_into_its_own_tree(rec: Recorder) -> None:
    root = rec.new("server")
    with root.trace.prod("in-parent"):
        pass

    def child() -> int:
        child_rec = Recorder()  # its own: the inherited fixture's holds the parent's spans
        tree = child_rec.new("worker")
        with tree.trace.prod("outer"), tree.sub("job").trace.debug("inner"):
            tree.log.info("in child")
        tree.close()
        outer = child_rec.span(name="outer")
        inner = child_rec.span(name="inner")
        if inner.parent_id != outer.span_id or inner.path != "worker.job":
            return 3
        if outer.node != f"{socket.gethostname()}:{os.getpid()}":
            return 4
        if child_rec.log(message="in child").span_id != inner.span_id:
            return 5
        if child_rec.spans(name="in-parent"):
            return 6
        return 0

    assert _run_in_child(child) == 0
    # The parent is untouched.
    with root.trace.prod("after"):
        pass
    assert [s.name for s in rec.spans()] == ["in-parent", "after"]
    assert rec.span(name="after").node == f"{socket.gethostname()}:{os.getpid()}"


@fork_only
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_parent_tree_keeps_working_in_the_child(rec: Recorder, tmp_path: Path) -> None:
    exporter = ListExporter()
    root = rec.new("server", exporters=[exporter], spool_dir=tmp_path)
    with root.trace.prod("before"):
        pass
    assert root.flush()  # the collector's worker thread is running
    parent_node = root.node

    def child() -> int:
        rec.clear()
        exporter.records.clear()
        if root.node == parent_node or root.node != f"{socket.gethostname()}:{os.getpid()}":
            return 3
        with root.sub("cesium").trace.prod("in-child"):
            pass
        if rec.span(name="in-child").node != root.node:
            return 4
        if not root.flush():  # a new worker in the child
            return 5
        if [s.name for s in exporter.spans()] != ["in-child"]:
            return 6
        root.close()
        return 0 if exporter.closed == 1 else 7

    assert _run_in_child(child) == 0
    assert root.node == parent_node
    with root.trace.prod("after"):
        pass
    assert root.flush()
    assert [s.name for s in exporter.spans()] == ["before", "after"]
    assert all(s.node == parent_node for s in exporter.spans())


# -- debug mode: spans never ended -----------------------------------------------------------


def _leak(exp: Experiment, name: str) -> None:
    """Start a span and never end it, without leaving it current here."""
    contextvars.copy_context().run(lambda: exp.trace.prod(name).start())


def test_debug_warns_about_unended_spans() -> None:
    rec = Recorder()  # not the fixture's: this test leaves a span open on purpose
    root = rec.new("server", debug=True)
    _leak(root.sub("cesium"), "leaked")
    with root.trace.prod("fine"):
        pass
    with pytest.warns(ResourceWarning, match=r"1 span\(s\) started and never ended") as info:
        root.close()
    message = str(info[0].message)
    assert "server.cesium:leaked started at " in message
    assert f"{__file__}:" in message  # the line that started it
    assert rec.spans(name="leaked") == []


def test_strict_debug_raises_unended_spans_error() -> None:
    rec = Recorder()  # not the fixture's: this test leaves spans open on purpose
    root = rec.new("server", debug=True, strict=True)
    _leak(root, "a")
    _leak(root.sub("x"), "b")
    with pytest.warns(ResourceWarning), pytest.raises(UnendedSpansError) as info:
        root.close()
    assert str(info.value).startswith("2 span(s) started and never ended:\n")
    assert sorted(s.name for s in info.value.spans) == ["a", "b"]
    assert isinstance(info.value, RuntimeError)
    assert root.closed
    root.close()  # the second close does not raise again


def test_debug_without_leaks_is_silent(rec: Recorder, recwarn: pytest.WarningsRecorder) -> None:
    root = rec.new("server", debug=True, strict=True)
    with root.trace.prod("a"):
        span = root.trace.debug("b").start()
        span.end()
    root.close()
    assert not [w for w in recwarn if issubclass(w.category, ResourceWarning)]


def test_unended_spans_are_not_tracked_without_debug(recwarn: pytest.WarningsRecorder) -> None:
    rec = Recorder()  # not the fixture's: this test leaves a span open on purpose
    root = rec.new("server", debug=False, strict=True)
    _leak(root, "a")
    root.close()
    assert not [w for w in recwarn if issubclass(w.category, ResourceWarning)]


# -- multiprocessing children (issue 10, #7) ---------------------------------------------


def _spans_in(db: Path, name: str) -> int:
    conn = sqlite3.connect(str(db), timeout=120)
    try:
        sql = "SELECT count(*) FROM alamos_spans WHERE name = ?"
        return int(conn.execute(sql, (name,)).fetchone()[0])
    finally:
        conn.close()


def _record_in_child(root: Experiment, n: int) -> None:
    """A multiprocessing target: record spans into the inherited tree and
    return without flush or close (multiprocessing then ends with os._exit)."""
    worker = root.sub("worker")
    for i in range(n):
        with worker.trace.prod("in-child", attributes={"i": i}):
            pass


def _new_root_in_child(url: str, spool: str, n: int) -> None:
    """A multiprocessing target that makes its own tree, and never closes it."""
    root = alamos.new("child", db=url, spool_dir=spool, console=False)
    for _ in range(n):
        with root.trace.prod("own-tree"):
            pass


@fork_only
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork with threads alive
def test_a_multiprocessing_child_stores_what_it_recorded_without_closing(tmp_path: Path) -> None:
    # Before: the child's records were lost: multiprocessing ends a child
    # with os._exit, so the atexit hook that closes the tree never ran.
    db = tmp_path / "alamos.db"
    root = alamos.new("server", db=f"sqlite:///{db}", spool_dir=tmp_path / "spool", console=False)
    with root.trace.prod("in-parent"):
        pass
    assert root.flush()
    child = multiprocessing.get_context("fork").Process(target=_record_in_child, args=(root, 300))
    child.start()
    child.join(120)
    assert child.exitcode == 0
    # Stored by the child itself, as it ended (multiprocessing's finalizer closed its tree).
    assert _spans_in(db, "in-child") == 300
    root.close()
    assert _spans_in(db, "in-parent") == 1


@fork_only
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_tree_made_in_a_multiprocessing_child_is_closed_when_it_ends(tmp_path: Path) -> None:
    db = tmp_path / "alamos.db"
    url, spool = f"sqlite:///{db}", str(tmp_path / "spool")
    child = multiprocessing.get_context("fork").Process(
        target=_new_root_in_child, args=(url, spool, 200)
    )
    child.start()
    child.join(120)
    assert child.exitcode == 0
    assert _spans_in(db, "own-tree") == 200


def test_close_returns_a_close_result(tmp_path: Path) -> None:
    exporter = ListExporter()
    root = alamos.new("server", exporters=[exporter], spool_dir=tmp_path, console=False)
    with root.trace.prod("one"):
        pass
    result = root.close()
    assert isinstance(result, alamos.CloseResult)
    assert result.complete and result.durable == len(exporter.records)
    assert root.close() is result
    assert Recorder().new("x").close() == alamos.CloseResult()  # no background exporter
