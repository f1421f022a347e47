"""Spans and logs queued behind a backlog, end to end (issue 10, 11(b)).

With the worker asleep, 30,000 spans and 1,500 log calls are queued: the
first ``COMPACT_AT`` items stay objects, the rest are queued in their compact
form, which the garbage collector untracks (so a full collection does not
visit them).  Then the worker stores everything, into a real SQLite file and
a real PostgreSQL database, and every stored field is what the spans and
logs held: names, levels, times, ids, remote parents, statuses, errors,
attributes and events.  Nothing here is timed: ``scripts/gc_pause.py``
measures the pause.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

from sqlalchemy import text

import alamos
from alamos import Experiment, Span, SpanContext
from alamos.core.handoff import COMPACT_AT
from alamos.log.item import LogItem

from .pipeline_support import HANG, reader

REQUESTS = 15_000  # two spans each
SPANS = 2 * REQUESTS
LOGS = REQUESTS // 10


def _json(value: Any) -> str:
    """A JSON value as canonical text (a column read back, or what a span held)."""
    if isinstance(value, str):
        value = json.loads(value)  # SQLite: text; PostgreSQL: parsed already
    return json.dumps(value, sort_keys=True)


def _row(span: Span) -> tuple[Any, ...]:
    """What the spans table must hold for ``span``: flat text and ints, so
    that the list of them is no work for the garbage collector either."""
    events = [
        {"name": e.name, "ts_ns": e.ts_ns, "attributes": dict(e.attributes)} for e in span.events
    ]
    return (
        span.span_id,
        span.trace_id,
        span.parent_id,
        span.name,
        str(span.level),
        span.start_ns,
        span.end_ns,
        span.status,
        span.error_text,
        _json(dict(span.attributes)),
        _json(events),
        span.session_id,
    )


def _queue(root: Experiment) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Make the spans and logs; return the rows they must become."""
    spans: list[tuple[Any, ...]] = []
    logs: list[tuple[Any, ...]] = []
    for i in range(REQUESTS):
        parent = None
        if i % 300 == 0:
            parent = SpanContext(f"{i + 1:032x}", f"{i + 1:016x}", True, "vendor=v1")
        with root.trace.prod(f"GET /items/{i % 7}", parent=parent) as request:
            request.set("i", i).set("table", "users").set("hit", i % 2 == 0)
            if i % 50 == 0:
                request.set("ratio", i / 8).set("tags", ["a", i]).set("big", 10**30)
            with root.trace.debug("sql.query") as query:
                if i % 100 == 0:
                    query.event("retry", attempt=2, why="locked")
                if i % 1000 == 0:
                    query.error(ValueError(f"row {i} is locked"))
            if i % 10 == 0:
                root.log.warning("served {}", i, user="ann", n=i)
                logs.append((f"served {i}", _json({"user": "ann", "n": i}), request.trace_id))
            if i % 700 == 0:
                request.set_status("ok")
        spans += (_row(query), _row(request))
    return spans, logs


def _count(cls: type) -> int:
    return sum(1 for o in gc.get_objects() if type(o) is cls)


def test_a_backlog_is_queued_compact_and_stored_whole(db_url: str, tmp_path: Path) -> None:
    root = alamos.new(
        "backlog",
        db=db_url,
        level="debug",
        console=False,
        flush_interval=3600,  # the worker sleeps: everything stays queued
        batch_size=1 << 30,
        max_queue=100_000,
        metrics_interval=3600,
        report_interval=3600,
        spool_dir=tmp_path / "spool",
    )
    try:
        gc.collect()
        queued_before = root.stats().queued
        objects_before = len(gc.get_objects())
        items_before = _count(Span) + _count(LogItem)
        spans, logs = _queue(root)
        gc.collect()
        assert root.stats().queued == queued_before + SPANS + LOGS
        # The first COMPACT_AT items queued are objects, the 21,500 after them are not.
        assert _count(Span) + _count(LogItem) - items_before == COMPACT_AT - queued_before
        # ... nor tracked by the gc (but for the 300 spans holding a tuple value
        # and the 150 holding events: one collection more, see test_compact.py).
        assert len(gc.get_objects()) - objects_before < COMPACT_AT + 1_000

        assert root.flush(timeout=HANG)
        with reader(db_url) as engine, engine.connect() as conn:
            stored = conn.execute(
                text(
                    "SELECT span_id, trace_id, parent_span_id, name, level, start_ns, end_ns,"
                    " status, error, attributes, events, session_id FROM alamos_spans"
                )
            ).all()
            stored_logs = conn.execute(
                text("SELECT message, attributes, trace_id FROM alamos_logs")
            ).all()
    finally:
        root.close(timeout=HANG)
    rows = sorted((*r[:9], _json(r[9]), _json(r[10]), r[11]) for r in stored)
    assert len(rows) == SPANS
    assert rows == sorted(spans)
    assert sorted((m, _json(a), t) for m, a, t in stored_logs) == sorted(logs)
    # What the rows cover, so that the comparison compares something.
    assert sum(1 for r in spans if r[2] is not None and r[3] != "sql.query") == REQUESTS // 300
    assert sum(1 for r in spans if r[7] == "error") == REQUESTS // 1000
    assert sum(1 for r in spans if r[7] == "ok") == -(-REQUESTS // 700)
    assert sum(1 for r in spans if r[10] != "[]") == REQUESTS // 100
