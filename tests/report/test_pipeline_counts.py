"""Exact counts, end to end: spans, logs and metric samples recorded by 8
threads and 100 anyio tasks (asyncio and trio) all land in the database
exactly once, with every parent link intact (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

import alamos

from .pipeline_support import (
    HANG,
    broken_log_links,
    broken_parent_links,
    count,
    duplicates,
    new_root,
    query,
)

THREADS = 8
PER_THREAD = 300
TASKS = 100
PER_TASK = 30
FLUSHES = 2  # explicit flushes while producers run, each one a metric snapshot


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _unit(exp: alamos.Experiment, who: str, i: int) -> None:
    """One request: a prod span with a debug child, a log in each, a counter
    increment and a histogram observation."""
    with exp.trace.prod("request") as span:
        span.set("who", who)
        span.set("i", i)
        exp.log.info("request {i} by {who}", i=i, who=who)
        with exp.sub("storage").trace.debug("write") as child:
            child.event("flushed", pages=i % 7)
            exp.sub("storage").log.debug("wrote {i}", i=i)
    exp.metrics.counter("requests", labelnames=["kind"]).labels(who.split("-")[0]).inc()
    exp.metrics.histogram("size", buckets=[1, 10, 100]).observe(i % 150)


@pytest.mark.anyio
async def test_every_record_lands_exactly_once(db_url: str, tmp_path: Path) -> None:
    root = new_root("counts", db_url, tmp_path / "spool")
    api = root.sub("api")
    # Every metric and label set exists before the first snapshot is taken.
    requests_metric = api.metrics.counter("requests", labelnames=["kind"])
    requests_metric.labels("thread")
    requests_metric.labels("task")
    api.metrics.histogram("size", buckets=[1, 10, 100])
    start = threading.Barrier(THREADS + 1)
    errors: list[BaseException] = []

    def thread_main(t: int) -> None:
        try:
            start.wait(HANG)
            for i in range(PER_THREAD):
                _unit(api, f"thread-{t}", i)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    async def task_main(k: int) -> None:
        for i in range(PER_TASK):
            _unit(api, f"task-{k}", i)
            await anyio.sleep(0)  # interleave the tasks

    threads = [threading.Thread(target=thread_main, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    start.wait(HANG)
    flushed: list[bool] = []
    async with anyio.create_task_group() as tg:
        for k in range(TASKS):
            tg.start_soon(task_main, k)
        for _ in range(FLUSHES):  # flushes while everything runs
            flushed.append(await anyio.to_thread.run_sync(root.flush, HANG))
            await anyio.sleep(0)
    for th in threads:
        await anyio.to_thread.run_sync(th.join, HANG)
        assert not th.is_alive(), "a producer thread hung"
    assert not errors, errors
    assert flushed == [True] * FLUSHES
    await anyio.to_thread.run_sync(root.close, HANG)

    units = THREADS * PER_THREAD + TASKS * PER_TASK
    # -- spans: exactly once each, parents intact ---------------------------------
    assert count(db_url, "alamos_spans") == 2 * units
    assert duplicates(db_url, "alamos_spans", "span_id") == 0
    assert count(db_url, "alamos_spans", "name = 'request' AND parent_span_id IS NULL") == units
    assert count(db_url, "alamos_spans", "name = 'write' AND parent_span_id IS NOT NULL") == units
    assert broken_parent_links(db_url) == 0
    assert int(query(db_url, "SELECT count(DISTINCT trace_id) FROM alamos_spans")[0][0]) == units
    by_path = dict(query(db_url, "SELECT path, count(*) FROM alamos_spans GROUP BY path"))
    assert by_path == {"counts.api": units, "counts.api.storage": units}
    # every (producer, i) pair once: nothing lost, nothing doubled
    if db_url.startswith("sqlite"):
        who = "json_extract(attributes, '$.who') || ':' || json_extract(attributes, '$.i')"
    else:
        who = "(attributes->>'who') || ':' || (attributes->>'i')"
    assert int(query(db_url, f"SELECT count(DISTINCT {who}) FROM alamos_spans")[0][0]) == units

    # -- logs -------------------------------------------------------------------------
    assert count(db_url, "alamos_logs") == 2 * units
    assert duplicates(db_url, "alamos_logs", "id") == 0
    assert count(db_url, "alamos_logs", "level = 'INFO' AND path = 'counts.api'") == units
    assert count(db_url, "alamos_logs", "level = 'DEBUG' AND path = 'counts.api.storage'") == units
    assert count(db_url, "alamos_logs", "span_id IS NULL") == 0
    assert broken_log_links(db_url) == 0

    # -- metric samples: one row per snapshot and label set, the last one exact --------
    snapshots = FLUSHES + 1  # one per flush, and the final one at close
    assert duplicates(db_url, "alamos_metrics", "id") == 0
    requests = query(
        db_url,
        "SELECT ts_ns, value FROM alamos_metrics WHERE name = 'requests' ORDER BY ts_ns, value",
    )
    assert len(requests) == 2 * snapshots  # label sets kind=thread and kind=task
    stamps = sorted({ts for ts, _ in requests})
    assert len(stamps) == snapshots
    final = sorted(v for ts, v in requests if ts == stamps[-1])
    assert final == sorted([float(TASKS * PER_TASK), float(THREADS * PER_THREAD)])
    sizes = query(
        db_url, "SELECT ts_ns, count FROM alamos_metrics WHERE name = 'size' ORDER BY ts_ns"
    )
    assert len(sizes) == snapshots
    assert sizes[-1][1] == float(units)

    # -- experiments: once each -----------------------------------------------------
    paths = sorted(p for (p,) in query(db_url, "SELECT path FROM alamos_experiments"))
    assert paths == ["counts", "counts.api", "counts.api.storage"]
