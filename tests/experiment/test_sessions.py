"""Debug sessions: a subtree's threshold lowered for a while, records tagged."""

from __future__ import annotations

import threading

import anyio
import pytest

from alamos import DebugSession, Experiment, Level
from alamos.testing import Recorder


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def root(rec: Recorder) -> Experiment:
    return rec.new("server", level="prod")


def test_session_lowers_the_threshold_of_one_subtree(rec: Recorder, root: Experiment) -> None:
    cesium = root.sub("cesium")
    wal = cesium.sub("wal")
    api = root.sub("api")
    with root.debug_session("server.cesium", level="debug") as s:
        assert isinstance(s, DebugSession)
        assert s.active and s.path == "server.cesium" and s.level is Level.DEBUG
        for exp in (root, cesium, wal, api):
            with exp.trace.debug("d"):
                pass
            with exp.trace.bench("b"):
                pass
    assert {s.path for s in rec.spans()} == {"server.cesium", "server.cesium.wal"}
    assert {s.name for s in rec.spans()} == {"d"}


def test_records_in_the_session_carry_its_id(rec: Recorder, root: Experiment) -> None:
    cesium = root.sub("cesium")
    with cesium.trace.prod("before"):
        pass
    cesium.log.info("before")
    with root.debug_session("server.cesium") as s:
        assert cesium.session_id == s.id
        assert root.session_id is None
        with cesium.trace.debug("debug") as span:
            assert span.session_id == s.id
            cesium.log.debug("debug")
        with cesium.trace.prod("prod"):
            cesium.log.info("prod")
        with root.trace.prod("outside"):
            root.log.info("outside")
    with cesium.trace.prod("after"):
        cesium.log.info("after")
    sessions = {r.name: r.session_id for r in rec.spans()}
    assert sessions == {
        "before": None,
        "debug": s.id,
        "prod": s.id,
        "outside": None,
        "after": None,
    }
    logs = {r.message: r.session_id for r in rec.logs()}
    assert logs == {"before": None, "debug": s.id, "prod": s.id, "outside": None, "after": None}


def test_session_id_is_hex(root: Experiment) -> None:
    s = root.debug_session()
    assert len(s.id) == 16 and int(s.id, 16) > 0
    assert root.debug_session().id != s.id


def test_previous_filter_is_back_after_the_session(root: Experiment) -> None:
    cesium = root.sub("cesium")
    before = [(e.path, lvl, e.enabled(lvl)) for e in root.walk() for lvl in Level]
    with root.debug_session("server.cesium", level="bench"):
        assert cesium.enabled("bench")
        assert not root.enabled("bench")
    after = [(e.path, lvl, e.enabled(lvl)) for e in root.walk() for lvl in Level]
    assert after == before
    assert cesium.session_id is None
    assert root._root_state.sessions == []


def test_session_ends_on_exception(root: Experiment) -> None:
    cesium = root.sub("cesium")
    with pytest.raises(RuntimeError), root.debug_session("server.cesium") as s:
        raise RuntimeError("boom")
    assert not s.active and s.ended_ns is not None
    assert not cesium.enabled("debug")


def test_session_start_stop_and_repr(root: Experiment) -> None:
    s = root.debug_session("server.cesium", level="debug")
    assert not s.active and "ended" in repr(s)
    assert s.start() is s
    assert s.active and repr(s) == f"<DebugSession {s.id} server.cesium>=debug active>"
    assert s.start() is s  # idempotent
    assert len(root._root_state.sessions) == 1
    s.stop()
    s.stop()
    assert not s.active and s.ended_ns is not None and s.ended_ns >= s.started_ns
    s.start()  # a finished session does not restart
    assert not s.active


def test_session_defaults_to_this_experiment_and_debug(root: Experiment) -> None:
    cesium = root.sub("cesium")
    s = cesium.debug_session()
    assert (s.path, s.level) == ("server.cesium", Level.DEBUG)


def test_session_covers_experiments_created_during_it(rec: Recorder, root: Experiment) -> None:
    with root.debug_session("server.cesium") as s:
        late = root.sub("cesium").sub("late")
        with late.trace.debug("x"):
            pass
    assert rec.span(name="x").session_id == s.id
    assert not late.enabled("debug")


def test_session_turns_debug_metrics_on_for_its_duration(root: Experiment) -> None:
    gauge = root.sub("cesium").metrics.gauge("cache", level="debug")
    gauge.set(1)
    with root.debug_session("server.cesium"):
        assert gauge.enabled
        gauge.set(2)
    gauge.set(3)
    assert gauge.value() == 2


@pytest.mark.parametrize("path", ["", "a..b", "server cesium", ".server", 3])
def test_session_path_errors(root: Experiment, path: object) -> None:
    with pytest.raises(ValueError, match="invalid debug session path: invalid experiment path"):
        root.debug_session(path)  # type: ignore[arg-type]


def test_session_level_error(root: Experiment) -> None:
    with pytest.raises(ValueError, match="invalid level 'loud'"):
        root.debug_session("server", level="loud")


# -- nesting ------------------------------------------------------------------------------


def test_nested_sessions(rec: Recorder, root: Experiment) -> None:
    cesium = root.sub("cesium")
    wal = cesium.sub("wal")
    with root.debug_session("server", level="debug") as outer:
        with wal.trace.debug("w1"):
            pass
        with root.debug_session("server.cesium.wal", level="bench") as inner:
            with wal.trace.bench("w2"):
                pass
            with cesium.trace.bench("c2"):  # not covered by the bench session
                pass
            with cesium.trace.debug("c3"):
                pass
        with wal.trace.bench("w3"):  # inner ended: bench is off again
            pass
        with wal.trace.debug("w4"):
            pass
    with wal.trace.debug("w5"):
        pass
    got = {s.name: s.session_id for s in rec.spans()}
    assert got == {"w1": outer.id, "w2": inner.id, "c3": outer.id, "w4": outer.id}


def test_overlapping_sessions_end_in_any_order(root: Experiment) -> None:
    cesium = root.sub("cesium")
    a = root.debug_session("server", level="debug").start()
    b = root.debug_session("server.cesium", level="bench").start()
    a.stop()  # the outer one ends first
    assert cesium.enabled("bench") and cesium.session_id == b.id
    assert not root.enabled("debug")
    b.stop()
    assert not cesium.enabled("debug") and cesium.session_id is None


def test_session_does_not_undo_set_level(root: Experiment) -> None:
    with root.debug_session("server.cesium"):
        root.set_level("debug")
    assert root.sub("cesium").enabled("debug")
    assert root.enabled("debug")


# -- concurrency ---------------------------------------------------------------------------


def test_concurrent_sessions_in_threads(rec: Recorder, root: Experiment) -> None:
    n = 8
    exps = [root.sub(f"w{i}") for i in range(n)]
    ids: dict[str, str] = {}
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def worker(exp: Experiment) -> None:
        try:
            barrier.wait()
            with root.debug_session(exp.path) as s:
                ids[exp.path] = s.id
                barrier.wait()  # every session is open at once
                for _ in range(20):
                    with exp.trace.debug("work"):
                        exp.log.debug("step")
                barrier.wait()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(e,)) for e in exps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(ids.values())) == n
    for exp in exps:
        spans = rec.spans(path=exp.path)
        assert len(spans) == 20
        assert {s.session_id for s in spans} == {ids[exp.path]}
        assert {r.session_id for r in rec.logs(path=exp.path)} == {ids[exp.path]}
    assert root._root_state.sessions == []
    assert not any(e.enabled("debug") for e in exps)


@pytest.mark.anyio
async def test_concurrent_sessions_in_tasks(rec: Recorder, root: Experiment) -> None:
    n = 6
    exps = [root.sub(f"t{i}") for i in range(n)]
    ids: dict[str, str] = {}
    all_open = anyio.Event()
    opened = 0

    async def task(exp: Experiment) -> None:
        nonlocal opened
        async with exp.debug_session() as s:
            ids[exp.path] = s.id
            opened += 1
            if opened == n:
                all_open.set()
            await all_open.wait()
            for _ in range(5):
                with exp.trace.debug("work"):
                    await anyio.sleep(0)
                    exp.log.debug("step")

    async with anyio.create_task_group() as tg:
        for exp in exps:
            tg.start_soon(task, exp)
    for exp in exps:
        spans = rec.spans(path=exp.path)
        assert len(spans) == 5
        assert {s.session_id for s in spans} == {ids[exp.path]}
        assert {r.session_id for r in rec.logs(path=exp.path)} == {ids[exp.path]}
    assert root._root_state.sessions == []


@pytest.mark.anyio
async def test_nested_async_sessions(rec: Recorder, root: Experiment) -> None:
    async with root.debug_session("server") as outer:
        async with root.debug_session("server", level="bench") as inner:
            with root.trace.bench("in"):
                pass
        with root.trace.debug("out"):
            pass
    assert {s.name: s.session_id for s in rec.spans()} == {"in": inner.id, "out": outer.id}
