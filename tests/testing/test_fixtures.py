"""The fixtures used directly, as a user would: sync tests, and async tests
on asyncio and trio (anyio's pytest plugin)."""

from __future__ import annotations

import threading

import anyio
import pytest

import alamos
from alamos.testing import Recorder


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_experiment_is_a_tree_of_the_recorder(
    alamos_experiment: alamos.Experiment, alamos_recorder: Recorder
) -> None:
    assert alamos_experiment.path == "test"
    assert alamos_recorder.trees == [alamos_experiment]
    assert alamos_experiment.enabled("bench")
    assert alamos_recorder.unended() == []


def test_recorder_is_fresh(alamos_recorder: Recorder) -> None:
    assert alamos_recorder.records == [] and alamos_recorder.trees == []
    assert alamos.current_span() is None


@pytest.mark.alamos_no_errors
def test_warnings_are_not_errors(alamos_experiment: alamos.Experiment) -> None:
    alamos_experiment.log.warning("only a warning")


def test_threads_with_copied_context(
    alamos_experiment: alamos.Experiment, alamos_recorder: Recorder
) -> None:
    import contextvars

    def work(i: int) -> None:
        with alamos_experiment.sub("worker").trace.prod(f"job{i}"):
            pass

    with alamos_experiment.trace.prod("batch"):
        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(work, i))
            for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    batch = alamos_recorder.span(name="batch")
    jobs = alamos_recorder.spans(path="test.worker")
    assert len(jobs) == 8 and {j.parent_id for j in jobs} == {batch.span_id}


@pytest.mark.anyio
async def test_async_spans_and_logs(
    alamos_experiment: alamos.Experiment, alamos_recorder: Recorder
) -> None:
    cesium = alamos_experiment.sub("cesium")

    @cesium.trace.prod()
    async def read(key: str) -> str:
        await anyio.sleep(0)
        cesium.log.info("read {key}", key=key)
        return key.upper()

    async with anyio.create_task_group() as tg:
        for key in ("a", "b", "c"):
            tg.start_soon(read, key)
    spans = alamos_recorder.spans(name=read.__qualname__)
    assert len(spans) == 3 and len({s.trace_id for s in spans}) == 3  # one trace per task
    for key in ("a", "b", "c"):
        log = alamos_recorder.log(attributes={"key": key})
        assert log.span_id in {s.span_id for s in spans}


@pytest.mark.anyio
async def test_async_trees_under_one_request(alamos_recorder: Recorder, anyio_backend: str) -> None:
    api, db = alamos_recorder.new("api"), alamos_recorder.new("db")

    async def query(n: int) -> None:
        await anyio.sleep(0.01 * n)
        with db.trace.debug("query", attributes={"n": n}):
            await anyio.sleep(0)

    with api.trace.prod("handle", attributes={"backend": anyio_backend}):
        async with anyio.create_task_group() as tg:
            for n in range(3):
                tg.start_soon(query, n)
    alamos_recorder.assert_tree("api.handle\n  db.query\n  db.query\n  db.query")
    assert len(alamos_recorder.spans(attributes={"n": 1})) == 1
    assert alamos_recorder.unended() == []


@pytest.mark.anyio
async def test_async_metric(
    alamos_experiment: alamos.Experiment, alamos_recorder: Recorder
) -> None:
    hits = alamos_experiment.metrics.counter("hits", labelnames=["route"])

    async def hit() -> None:
        await anyio.sleep(0)
        hits.labels(route="/").inc()

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(hit)
    assert alamos_recorder.metric("test", "hits", route="/") == 10
