"""The compact form of queued spans and log items (issue 10, 11(b)).

Behind a backlog (``COMPACT_AT`` items queued) the hand-off queues a span or
a log item as a flat tuple the garbage collector untracks, instead of as an
object every full collection visits.  These tests prove the mechanism
without timing anything: the compact forms are not tracked by the gc, the
records built from them equal, field for field, the records built from the
objects, and the hand-off switches to them exactly at ``compact_at``.  The
end-to-end test through SQLite and PostgreSQL is in
``tests/report/test_compaction.py``; the pause itself is measured by
``scripts/gc_pause.py``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from sys import getsizeof
from typing import Any

import attrs
import pytest

from alamos import SpanContext, SpanRecord
from alamos.core.attributes import MAX_STRING, SMALL_TEXT
from alamos.core.handoff import COMPACT_AT, ITEM_BYTES, Handoff
from alamos.core.level import Level
from alamos.core.records import ExperimentRecord, LogRecord
from alamos.core.scope import LiveScope, Scope
from alamos.log import Logger
from alamos.log.item import LogItem
from alamos.trace.sampling import ALWAYS
from alamos.trace.span import Span
from alamos.trace.tracer import Tracer

SVC, NODE = "svc", "node-1"
EVERY_LEVEL = Scope("svc.api", bench=True, debug=True, prod=True, session_id="sess-7")


class LyingName:
    """A name object whose ``__class__`` claims str (as a mock's does)."""

    __class__ = str  # type: ignore[assignment]

    def __len__(self) -> int:
        return 3


def no_compaction() -> Handoff:
    """A hand-off with no worker that never compacts: what is put stays, as is."""
    handoff = Handoff(1_000_000, 1 << 30, lambda: None, max_bytes=1 << 40)
    handoff.set_compact_at(1 << 40)
    return handoff


def tracer_on(handoff: Handoff, *, debug: bool = False) -> Tracer:
    started: list[Span] = []
    return Tracer(
        LiveScope(EVERY_LEVEL),
        handoff.put,
        ALWAYS,
        # Debug mode: the tracer records where each span was started.
        on_start=started.append if debug else None,
        on_end=(lambda span: None) if debug else None,
    )


def every_shape(tracer: Tracer) -> None:
    """Spans of every shape a record can take."""
    with tracer.prod("plain"):
        pass
    with tracer.debug("three attributes") as span:
        span.set("bytes", 1024).set("table", "users").set("hit", True)
    with tracer.bench("values") as span:
        span.set("float", 2.5).set("neg", -(2**62)).set("huge", 10**400)
        span.set("tuple", ["a", 1, 2.5, None]).set("set", {"only"}).set("obj", object)
        span.set("long", "x" * (SMALL_TEXT * 3)).set(7, "key not a str")
    with tracer.prod("events") as span:
        span.event("flushed", pages=3, where="disk")
        span.event("empty")
        span.event("n" * 600, seq=[1, 2])
    with pytest.raises(ValueError), tracer.prod("error") as span:
        raise ValueError("row 7 is locked")
    with tracer.prod("status") as span:
        span.set_status("error", "gave up after 3 tries")
    with tracer.prod("ok") as span:
        span.set_status("ok")
    with tracer.prod("parent") as parent, tracer.prod("child") as child:
        child.set("depth", 1)
    with tracer.prod("explicit", parent=parent):
        pass
    remote = SpanContext("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", True, "k=v")
    with tracer.prod("remote", parent=remote):
        pass
    bad = SpanContext("0" * 31 + "x", "b7ad6b7169203331")
    with tracer.prod("bad remote", parent=bad):  # a fresh trace
        pass
    with tracer.prod(b"bytes-name"):
        pass
    with tracer.prod("n" * 5000):  # cut at MAX_NAME, weighed
        pass
    with tracer.prod(LyingName()):  # type: ignore[arg-type]
        pass
    started = tracer.prod("started").start()
    started.set("a", 1)
    started.end()
    for i in range(40):  # past MAX_ATTRIBUTES: dropped, not stored
        with tracer.prod("many") as span:
            for j in range(i * 4):
                span.set(f"k{j}", j)


def taken(handoff: Handoff) -> list[Any]:
    return handoff.take(len(handoff))


@pytest.fixture
def spans() -> Iterator[list[Span]]:
    handoff = no_compaction()
    every_shape(tracer_on(handoff))
    every_shape(tracer_on(handoff, debug=True))
    items = taken(handoff)
    assert all(type(item) is Span for item in items)
    yield items


def test_records_from_compact_spans_equal_records_from_spans(spans: list[Span]) -> None:
    assert len(spans) == 2 * 56
    for span in spans:
        from_span = span.to_record(SVC, NODE)
        from_compact = Span.from_compact(span.compact(5), SVC, NODE)
        assert type(from_compact) is SpanRecord
        # Every field, by name: the attrs equality would say which differ less clearly.
        for field in attrs.fields(SpanRecord):
            assert getattr(from_compact, field.name) == getattr(from_span, field.name), field.name
        assert from_compact == from_span
    # What the shapes cover (so that the comparison above compares something).
    records = [span.to_record(SVC, NODE) for span in spans]
    assert {r.level for r in records} == set(Level)
    assert {r.status for r in records} == {"unset", "ok", "error"}
    assert sum(1 for r in records if r.parent_id is not None) == 2 * 3
    assert sum(len(r.events) for r in records) == 2 * 4
    assert sum(1 for r in records if r.location is not None) == 56
    assert {r.session_id for r in records} == {"sess-7"}
    assert {"<LyingName>", "bytes-name"} <= {r.name for r in records}


def depth(value: object) -> int:
    """How deep tuples nest in ``value`` (0: a tuple holding no tuple but the
    empty one, which is never tracked)."""
    inner = [depth(v) for v in value if type(v) is tuple and v] if type(value) is tuple else []
    return 1 + max(inner) if inner else 0


def test_compact_spans_are_not_tracked_by_the_gc(spans: list[Span]) -> None:
    compact = [span.compact(0) for span in spans]
    assert all(gc.is_tracked(span) for span in spans)  # what they replace
    # Flat but for events and sequence-valued attributes ("values", "events", "error").
    assert [depth(c) for c in compact].count(0) == len(spans) - 2 * 3
    # A flat tuple is untracked by the first collection; each level of tuples
    # in it takes one more (a collection examines a tuple before its contents).
    for collections in (1, 2, 3):
        gc.collect()
        assert [gc.is_tracked(c) for c in compact] == [depth(c) >= collections for c in compact]
    assert not any(gc.is_tracked(c) for c in compact)


def test_records_from_compact_log_items_equal_records_from_items() -> None:
    handoff = no_compaction()
    log = Logger(LiveScope(EVERY_LEVEL), handoff.put, False)
    tracer = tracer_on(handoff)
    log.info("plain")
    log.warning("with {} args and keywords", 2, user="ann", n=3, ratio=0.5, tags=["a", 1])
    with tracer.prod("inside"):
        log.error("inside a span")
    log.debug("m" * 70_000)  # cut, weighed
    items = [item for item in taken(handoff) if type(item) is LogItem]
    assert len(items) == 4
    compact = [item.compact(1) for item in items]
    for item, fields in zip(items, compact, strict=True):
        from_item = item.to_record(SVC, NODE)
        from_compact = LogItem.from_compact(fields, SVC, NODE)
        assert type(from_compact) is LogRecord
        assert from_compact.id != from_item.id  # a fresh record id, as to_record draws
        assert attrs.evolve(from_compact, id=from_item.id) == from_item
    assert sum(1 for item in items if item.trace_int is not None) == 1
    gc.collect()
    assert [gc.is_tracked(c) for c in compact] == [False, True, False, False]  # tags=(...)
    gc.collect()
    assert not any(gc.is_tracked(c) for c in compact)


def test_the_handoff_compacts_from_compact_at_on() -> None:
    handoff = Handoff(1_000, 1 << 30, lambda: None)
    assert handoff.compact_at == COMPACT_AT == 10_000
    handoff.set_compact_at(3)
    tracer = tracer_on(handoff)
    log = Logger(LiveScope(EVERY_LEVEL), handoff.put, False)
    experiment = ExperimentRecord("svc.api", "svc", "api", SVC, NODE, 1)
    for i in range(3):
        with tracer.prod(f"object {i}"):
            pass
    with tracer.prod("compact") as span:
        span.set("i", 3)
    log.info("compact log")
    handoff.put(experiment)  # no compact form: queued as it is
    with tracer.prod("long") as span:
        span.set("text", "x" * 10_000)  # a sized put, compacted too
    assert handoff.queued_bytes == 7 * ITEM_BYTES + getsizeof("x" * MAX_STRING + "…")
    items = taken(handoff)
    assert [type(item).__name__ for item in items] == ["Span"] * 3 + ["tuple"] * 2 + [
        "ExperimentRecord",
        "tuple",
    ]
    assert handoff.queued_bytes == 0  # the sized compact item's bytes were released
    records = handoff.records(items, SVC, NODE)
    assert [type(r).__name__ for r in records] == ["SpanRecord"] * 4 + [
        "LogRecord",
        "ExperimentRecord",
        "SpanRecord",
    ]
    assert [getattr(r, "name", None) for r in records] == [
        "object 0",
        "object 1",
        "object 2",
        "compact",
        None,
        None,
        "long",
    ]
    assert records[3].attributes == {"i": 3} and records[4].message == "compact log"  # type: ignore[union-attr]
    assert records[5] is experiment
    assert records[6].attributes == {"text": "x" * MAX_STRING + "…"}  # type: ignore[union-attr]


def test_a_full_or_closed_handoff_drops_past_compact_at_too() -> None:
    handoff = Handoff(4, 1 << 30, lambda: None)
    handoff.set_compact_at(2)
    tracer = tracer_on(handoff)
    for _ in range(6):
        with tracer.prod("x"):
            pass
    assert len(handoff) == 4 and handoff.dropped == 2
    taken(handoff)
    handoff.close()
    with tracer.prod("x"):
        pass
    assert len(handoff) == 0 and handoff.dropped == 3


@pytest.mark.parametrize("bad", [-1, 1.5, "10000", None])
def test_compact_at_is_checked(bad: Any) -> None:
    with pytest.raises(ValueError, match="compact_at must be an int >= 0"):
        Handoff(10, 10, lambda: None).set_compact_at(bad)
