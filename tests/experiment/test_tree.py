"""The experiment tree: sub, find, navigation, keys, service and node, NOOP."""

from __future__ import annotations

import gc
import os
import socket
import threading
import weakref
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import alamos
from alamos import NOOP, Experiment
from alamos.experiment.keys import MAX_KEY_LENGTH, MAX_PATH_LENGTH
from alamos.report.sql import normalize_url
from alamos.testing import Recorder

# -- sub, find, navigation ----------------------------------------------------------


def test_new_gives_a_root(root: Experiment) -> None:
    assert root.key == "server"
    assert root.path == "server"
    assert root.parent is None
    assert root.root is root
    assert dict(root.children) == {}
    assert repr(root) == "<Experiment server>"


def test_sub_key_and_path(root: Experiment) -> None:
    cesium = root.sub("cesium")
    assert cesium.key == "cesium"
    assert cesium.path == "server.cesium"
    wal = cesium.sub("wal")
    assert wal.path == "server.cesium.wal"
    assert isinstance(wal, Experiment)


def test_sub_of_existing_key_returns_the_same_child(root: Experiment) -> None:
    cesium = root.sub("cesium")
    assert root.sub("cesium") is cesium
    assert root.sub("cesium").sub("wal") is cesium.sub("wal")


def test_sub_is_thread_safe(root: Experiment) -> None:
    barrier = threading.Barrier(16)
    got: list[Experiment] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        children = [root.sub(f"k{i}") for i in range(50)]
        with lock:
            got.extend(children)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(root.children) == 50
    for child in got:
        assert root.children[child.key] is child


def test_sub_records_each_experiment_once(rec: Recorder, root: Experiment) -> None:
    root.sub("cesium").sub("wal")
    root.sub("cesium")
    paths = [e.path for e in rec.experiments]
    assert paths == ["server", "server.cesium", "server.cesium.wal"]
    wal = rec.experiments[-1]
    assert (wal.key, wal.parent_path) == ("wal", "server.cesium")
    assert rec.experiments[0].parent_path is None


def test_find_by_full_path(root: Experiment) -> None:
    cesium = root.sub("cesium")
    wal = cesium.sub("wal")
    assert root.find("server") is root
    assert root.find("server.cesium") is cesium
    assert root.find("server.cesium.wal") is wal
    assert cesium.find("server.cesium.wal") is wal  # any node finds in its whole tree


@pytest.mark.parametrize("path", ["cesium", "server.nope", "", "server.", "other.cesium", 3, None])
def test_find_missing_path_gives_none(root: Experiment, path: object) -> None:
    root.sub("cesium")
    assert root.find(path) is None  # type: ignore[arg-type]


def test_navigation(root: Experiment) -> None:
    cesium = root.sub("cesium")
    wal = cesium.sub("wal")
    assert cesium.parent is root
    assert wal.parent is cesium
    assert wal.root is root
    assert cesium.root is root
    assert dict(root.children) == {"cesium": cesium}
    assert list(cesium.children) == ["wal"]
    assert root.walk() == [root, cesium, wal]


def test_children_is_read_only(root: Experiment) -> None:
    root.sub("cesium")
    with pytest.raises(TypeError):
        root.children["x"] = root  # type: ignore[index]
    with pytest.raises((TypeError, AttributeError)):
        del root.children["cesium"]  # type: ignore[attr-defined]
    assert "cesium" in root.children


def test_children_view_sees_later_children(root: Experiment) -> None:
    view = root.children
    root.sub("late")
    assert "late" in view


def test_two_roots_are_independent(rec: Recorder) -> None:
    a = rec.new("server")
    b = rec.new("server")
    assert a.sub("cesium") is not b.sub("cesium")
    assert a.find("server.cesium") is a.children["cesium"]
    assert a.registry is not b.registry


# -- keys -------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["cesium", "a", "A-1_b", "0", "under_score", "dash-dash"])
def test_valid_keys(root: Experiment, key: str) -> None:
    assert root.sub(key).key == key


KEY_ERROR = r"a key is a non-empty str of letters, digits, '_' and '-' \(regex \[A-Za-z0-9_-\]\+\)"


@pytest.mark.parametrize(
    "key",
    ["", "a.b", ".", "a b", " a", "a ", "\t", "a\n", "é", "a/b", "a:b", "*"],
    ids=repr,
)
def test_invalid_str_keys(root: Experiment, key: str) -> None:
    with pytest.raises(ValueError, match=KEY_ERROR) as info:
        root.sub(key)
    assert f"invalid experiment key {key!r}" in str(info.value)
    assert key not in root.children


def test_dotted_key_message_suggests_sub(root: Experiment) -> None:
    with pytest.raises(ValueError, match=r"use sub\(\) once per level instead of dots"):
        root.sub("cesium.wal")


@pytest.mark.parametrize("key", [None, 3, 1.5, b"bytes", ["a"], {"a": 1}, ("a",)], ids=repr)
def test_non_str_keys(root: Experiment, key: object) -> None:
    with pytest.raises(ValueError, match=KEY_ERROR):
        root.sub(key)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["", "a.b", "a b", 3])
def test_new_validates_the_root_key(key: object) -> None:
    with pytest.raises(ValueError, match=KEY_ERROR):
        alamos.new(key, console=False)  # type: ignore[arg-type]


def test_str_subclass_key_is_accepted(root: Experiment) -> None:
    class Key(str):
        pass

    assert root.sub(Key("cesium")).path == "server.cesium"


# -- key and path lengths (issue 10: a key of 3,000 letters blocked PostgreSQL for good) ---


def test_documented_key_limits() -> None:
    assert (MAX_KEY_LENGTH, MAX_PATH_LENGTH) == (128, 1024)


def test_a_key_longer_than_the_limit_is_refused_at_the_call(root: Experiment) -> None:
    assert root.sub("k" * MAX_KEY_LENGTH).key == "k" * MAX_KEY_LENGTH
    for make in (root.sub, lambda key: alamos.new(key, console=False)):
        with pytest.raises(ValueError, match="more than the limit of 128 characters per key"):
            make("k" * (MAX_KEY_LENGTH + 1))
        with pytest.raises(ValueError, match="3000 characters") as info:
            make("k" * 3000)
        assert len(str(info.value)) < 400  # the key is not repeated whole
    with pytest.raises(ValueError, match="more than the limit of 128 characters per key"):
        root.attach("r" * 200, lambda: {})
    assert "k" * (MAX_KEY_LENGTH + 1) not in root.children


def deepest(exp: Experiment) -> Experiment:
    """Sub-experiments of 128-letter keys, then one that fills the path to its limit."""
    while len(exp.path) + 1 + MAX_KEY_LENGTH <= MAX_PATH_LENGTH:
        exp = exp.sub("k" * MAX_KEY_LENGTH)
    return exp.sub("z" * (MAX_PATH_LENGTH - len(exp.path) - 1))


def test_a_path_longer_than_the_limit_is_refused_at_the_call(root: Experiment) -> None:
    leaf = deepest(root)
    assert len(leaf.path) == MAX_PATH_LENGTH
    with pytest.raises(ValueError, match="more than the limit of 1024 characters per path"):
        leaf.parent.sub("z" * (MAX_PATH_LENGTH - len(leaf.parent.path)))  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="more than the limit of 1024 characters per path"):
        leaf.sub("a")
    too_long = leaf.path + ".a"
    with pytest.raises(ValueError, match="1024 characters per path"):
        root.debug_session(too_long)
    with pytest.raises(ValueError, match="1024 characters per path"):
        alamos.new("server", level=f"prod,{too_long}=debug", console=False)
    with pytest.raises(ValueError, match="128 per key"):
        root.debug_session("server." + "k" * 129)


def test_the_longest_keys_and_paths_are_stored_in_postgresql(pg_url: str, tmp_path: Path) -> None:
    """Everything a tree at the limits records fits PostgreSQL's indexes."""
    root = alamos.new(
        "r" * MAX_KEY_LENGTH, db=pg_url, level="bench", console=False, spool_dir=tmp_path
    )
    leaf = deepest(root)
    leaf.metrics.counter("writes", labelnames=["what"]).labels("x" * 100).inc()
    leaf.attach("p" * MAX_KEY_LENGTH, lambda: {"a": 1})
    with leaf.trace.prod("n" * 1024) as span:
        span.set("k" * 256, "v" * 4096)
        leaf.log.info("m" * 40_000)
    assert root.flush(120)
    stats = root.stats()
    root.close(120)
    (delivery,) = stats.exporters.values()
    assert delivery.failures == 0 and delivery.spooled == 0 and delivery.dropped == 0
    engine = create_engine(normalize_url(pg_url))
    try:
        with engine.connect() as conn:
            for table in ("alamos_spans", "alamos_logs", "alamos_metrics", "alamos_reports"):
                paths = conn.execute(text(f"SELECT DISTINCT path FROM {table}")).scalars().all()
                assert leaf.path in paths, table
            experiments = conn.execute(text("SELECT path FROM alamos_experiments")).scalars()
            assert leaf.path in set(experiments)
    finally:
        engine.dispose()


# -- service and node ---------------------------------------------------------------------


def test_service_and_node_defaults(rec: Recorder) -> None:
    root = rec.new("server")
    assert root.service == "server"
    assert root.node == f"{socket.gethostname()}:{os.getpid()}"
    assert root.sub("cesium").node == root.node


def test_every_record_carries_service_and_node(rec: Recorder) -> None:
    root = rec.new("server", service="api", node="host-7")
    cesium = root.sub("cesium")
    cesium.metrics.counter("writes").inc()
    cesium.attach("config", lambda: {"a": 1})
    with cesium.trace.prod("write") as span:
        span.event("flushed")
        cesium.log.info("hello")
    root.close()
    kinds = {type(r).__name__ for r in rec.records}
    assert kinds == {
        "ExperimentRecord",
        "SpanRecord",
        "LogRecord",
        "MetricRecord",
        "ReportRecord",
    }
    for record in rec.records:
        assert (record.service, record.node) == ("api", "host-7"), record
    assert (root.service, root.node) == ("api", "host-7")


# -- memory ---------------------------------------------------------------------------


def test_a_dropped_tree_is_garbage_collected() -> None:
    rec = Recorder()  # not the fixture's: the fixture would keep it alive
    root = rec.new("server")
    root.sub("cesium").trace.prod("x").start().end()
    root.close()
    ref = weakref.ref(root)
    rec_ref = weakref.ref(rec)
    del root, rec
    gc.collect()
    assert ref() is None
    assert rec_ref() is None


# -- NOOP -----------------------------------------------------------------------------


def test_noop_sub_is_noop() -> None:
    assert NOOP.sub("cesium") is NOOP
    assert NOOP.sub("cesium").sub("wal") is NOOP
    assert isinstance(NOOP, Experiment)
    assert repr(NOOP) == "<alamos.NOOP>"


def test_noop_still_validates_keys() -> None:
    with pytest.raises(ValueError, match=KEY_ERROR):
        NOOP.sub("a.b")


def test_noop_every_call_is_a_no_op() -> None:
    exp = NOOP.sub("cesium")
    assert exp.find("noop") is None
    assert exp.find("server.cesium") is None
    assert dict(exp.children) == {}
    for level in ("bench", "debug", "prod"):
        assert not exp.enabled(level)
        span = exp.trace.span(level, "x")
        assert isinstance(span, alamos.NoopSpan)
        with span as s:
            s.set("a", 1).event("e")
            assert s.error(ValueError("x")).args == ("x",)
    with exp.trace.prod("write", attributes={"a": 1}) as s:
        assert alamos.current_span() is None
    for method in ("trace", "debug", "info", "success", "warning", "error", "critical"):
        getattr(exp.log, method)("hello {}", 1, k=2)
    exp.log.exception("boom")
    exp.attach("config", lambda: {"a": 1})
    exp.set_level("bench")
    assert not exp.enabled("bench")
    assert exp.report() == {
        "key": "noop",
        "path": "noop",
        "reports": {},
        "metrics": {},
        "children": {},
    }
    assert exp.report_entries() == []
    assert exp.flush() is True
    exp.close()
    exp.close()
    with exp as same:
        assert same is NOOP


def test_noop_metrics_are_detached_no_ops() -> None:
    counter = NOOP.metrics.counter("writes", "Writes", labelnames=["kind"])
    counter.inc()
    counter.labels("a").inc()
    # Another library may use the same name for another kind: NOOP keeps nothing.
    gauge = NOOP.metrics.gauge("writes")
    gauge.set(3)
    gauge.inc()
    with gauge.track_inprogress(), gauge.time():
        pass
    hist = NOOP.metrics.histogram("writes")
    hist.observe(1.0)
    with hist.time():
        pass
    assert not counter.enabled
    assert counter.value() is None
    assert len(NOOP.metrics) == 0
    assert list(NOOP.metrics) == []
    assert NOOP.metrics.get("writes") is None


def test_noop_decorator_and_sessions() -> None:
    @NOOP.trace.prod()
    def f(x: int) -> int:
        return x + 1

    assert f(1) == 2
    with NOOP.debug_session("noop", level="bench") as s:
        assert isinstance(s.id, str)
        assert not NOOP.enabled("bench")
    assert NOOP._root_state.sessions == []


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
async def test_noop_async_with() -> None:
    async with NOOP as exp:
        assert exp is NOOP
