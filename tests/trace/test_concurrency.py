"""Parenting stays correct across threads, asyncio tasks and trio tasks."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

import alamos
from alamos import Experiment
from alamos.testing import Recorder


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def assert_children_of(rec: Recorder, parent: str, children: list[str]) -> None:
    p = rec.span(name=parent)
    for name in children:
        child = rec.span(name=name)
        assert child.parent_id == p.span_id, name
        assert child.trace_id == p.trace_id, name


# -- threads ----------------------------------------------------------------------------


def test_threads_with_a_copied_context(rec: Recorder, root: Experiment) -> None:
    cesium = root.sub("cesium")
    with root.trace.prod("request"):
        threads = []
        for i in range(8):
            ctx = contextvars.copy_context()
            t = threading.Thread(target=ctx.run, args=(lambda i=i: _work(cesium, f"w{i}"),))
            threads.append(t)
            t.start()
        for t in threads:
            t.join()
    assert_children_of(rec, "request", [f"w{i}" for i in range(8)])
    for i in range(8):
        assert_children_of(rec, f"w{i}", [f"w{i}.inner"])


def _work(exp: Experiment, name: str) -> None:
    with exp.trace.prod(name), exp.trace.debug(f"{name}.inner"):
        pass


def test_executor_with_copied_context(rec: Recorder, root: Experiment) -> None:
    with root.trace.prod("request"), ThreadPoolExecutor(4) as pool:
        futures = [
            pool.submit(contextvars.copy_context().run, _work, root, f"job{i}") for i in range(12)
        ]
        for f in futures:
            f.result()
    assert_children_of(rec, "request", [f"job{i}" for i in range(12)])


def test_a_thread_without_the_context_starts_its_own_trace(rec: Recorder, root: Experiment) -> None:
    with root.trace.prod("request") as request:
        t = threading.Thread(target=_work, args=(root, "detached"))
        t.start()
        t.join()
    detached = rec.span(name="detached")
    assert detached.parent_id is None and detached.trace_id != request.trace_id


def test_concurrent_threads_never_cross(rec: Recorder, root: Experiment) -> None:
    n, depth = 8, 30
    barrier = threading.Barrier(n)

    def worker(i: int) -> None:
        barrier.wait()
        with root.trace.prod(f"t{i}"):
            for j in range(depth):
                with root.trace.debug(f"t{i}.{j}"):
                    assert alamos.current_span().name == f"t{i}.{j}"  # type: ignore[union-attr]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(n):
        assert_children_of(rec, f"t{i}", [f"t{i}.{j}" for j in range(depth)])
    assert len({s.trace_id for s in rec.spans()}) == n


# -- tasks (asyncio and trio, through anyio) ------------------------------------------------


@pytest.mark.anyio
async def test_tasks_inherit_the_current_span(rec: Recorder, root: Experiment) -> None:
    cesium = root.sub("cesium")

    async def task(name: str) -> None:
        with cesium.trace.prod(name):
            await anyio.sleep(0)
            with cesium.trace.debug(f"{name}.inner"):
                await anyio.sleep(0)
                assert alamos.current_span().name == f"{name}.inner"  # type: ignore[union-attr]

    with root.trace.prod("request") as request:
        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(task, f"task{i}")
        assert alamos.current_span() is request
    assert_children_of(rec, "request", [f"task{i}" for i in range(10)])
    for i in range(10):
        assert_children_of(rec, f"task{i}", [f"task{i}.inner"])


@pytest.mark.anyio
async def test_interleaved_tasks_keep_their_own_current_span(
    rec: Recorder, root: Experiment
) -> None:
    async def task(i: int) -> None:
        with root.trace.prod(f"r{i}") as mine:
            for _ in range(5):
                await anyio.sleep(0)
                assert alamos.current_span() is mine
                with root.trace.debug(f"r{i}.step"):
                    await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(task, i)
    for i in range(6):
        parent = rec.span(name=f"r{i}")
        steps = rec.spans(name=f"r{i}.step")
        assert len(steps) == 5
        assert {s.parent_id for s in steps} == {parent.span_id}
        assert parent.parent_id is None
    assert len({s.trace_id for s in rec.spans(where=lambda s: "." not in s.name)}) == 6


@pytest.mark.anyio
async def test_async_with_across_awaits_in_thread_offload(rec: Recorder, root: Experiment) -> None:
    # anyio's to_thread copies the context: the thread's span is a child.
    with root.trace.prod("request"):
        await anyio.to_thread.run_sync(_work, root, "offloaded")
    assert_children_of(rec, "request", ["offloaded"])


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_asyncio_gather_and_create_task(rec: Recorder, root: Experiment) -> None:
    async def leaf(name: str) -> None:
        with root.trace.prod(name):
            await asyncio.sleep(0)

    async def main() -> None:
        with root.trace.prod("request"):
            await asyncio.gather(leaf("g1"), leaf("g2"))
            await asyncio.create_task(leaf("t1"))

    await main()
    assert_children_of(rec, "request", ["g1", "g2", "t1"])


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_trio_nursery(rec: Recorder, root: Experiment) -> None:
    import trio

    async def leaf(name: str) -> None:
        with root.trace.prod(name):
            await trio.sleep(0)

    with root.trace.prod("request"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(leaf, "n1")
            nursery.start_soon(leaf, "n2")
    assert_children_of(rec, "request", ["n1", "n2"])


# -- a span ended in another context ---------------------------------------------------------


def test_span_exited_in_another_context(rec: Recorder, root: Experiment) -> None:
    span = root.trace.prod("moved")
    contextvars.copy_context().run(span.__enter__)
    with root.trace.prod("here") as here:
        span.__exit__(None, None, None)  # its token belongs to the other context
        assert alamos.current_span() is here  # this context's current span is untouched
    assert rec.span(name="moved").end_ns > 0
    assert alamos.current_span() is None


def test_start_and_end_in_a_copied_context(rec: Recorder, root: Experiment) -> None:
    ctx = contextvars.copy_context()
    span = root.trace.prod("elsewhere")
    ctx.run(span.start)
    assert ctx.run(alamos.current_span) is span
    assert alamos.current_span() is None
    child = root.trace.prod("child")
    ctx.run(child.start)
    ctx.run(child.end)
    assert ctx.run(alamos.current_span) is span
    ctx.run(span.end)
    assert ctx.run(alamos.current_span) is None
    assert rec.span(name="child").parent_id == span.span_id


@pytest.mark.anyio
async def test_async_generator_span_closed_elsewhere(rec: Recorder, root: Experiment) -> None:
    async def chunks() -> AsyncIterator[int]:
        with root.trace.prod("stream"):
            for i in range(3):
                yield i

    gen = chunks()
    with root.trace.prod("consumer") as consumer:
        assert await gen.__anext__() == 0
        await gen.aclose()  # the span exits here, maybe in another context
        assert alamos.current_span() is consumer
    assert rec.span(name="stream").parent_id == consumer.span_id
    assert alamos.current_span() is None
