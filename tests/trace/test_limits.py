"""Limits at the source (issue 10): what a span accepts from its caller.

* a remote parent with ids that are not W3C ids starts a fresh trace (a huge
  trace id once broke PostgreSQL's index for good);
* span and event names are text made on the caller's thread, cut at
  ``MAX_NAME``; values are coerced once, so a record can always be spooled,
  and is stored the same whether it goes straight to the database or through
  a spool replay;
* a span holding long text is put with its size (the hand-off's byte bound);
* a huge container as an attribute value is cut while its ``repr`` is written.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from sys import getsizeof
from typing import Any

import attrs
import pytest
from sqlalchemy import create_engine, text

import alamos
from alamos import Experiment, SpanContext, SpanRecord
from alamos.core.attributes import MAX_INT_BITS, MAX_MESSAGE, MAX_NAME, MAX_STRING, SMALL_TEXT
from alamos.core.handoff import ITEM_BYTES, Handoff
from alamos.core.scope import LiveScope, Scope
from alamos.report.pipeline.codec import dumps_batch, loads_batch
from alamos.report.sql import normalize_url
from alamos.testing import Recorder
from alamos.trace.sampling import ALWAYS
from alamos.trace.tracer import Tracer

HEX32 = re.compile(r"[0-9a-f]{32}")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
#: A "did not hang" guard: never a performance assertion.
HANG = 120.0


# -- remote parents ---------------------------------------------------------------------


class Foreign:
    """A parent object from elsewhere: whatever attributes it is given."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


class Raising:
    """A parent whose ``trace_id`` property raises what it is told to."""

    def __init__(self, exc: BaseException, where: str = "trace_id") -> None:
        self.exc = exc
        self.where = where

    def __getattr__(self, name: str) -> Any:
        if name == self.where:
            raise self.exc
        return {"trace_id": TRACE, "span_id": PARENT, "sampled": True}.get(name)


BAD_PARENTS = {
    "negative ids": SpanContext("-1", "-1"),
    "signed trace id": SpanContext("+" + TRACE[1:], PARENT),
    "40 hex digits": SpanContext("f" * 40, "1" * 16),
    "6000 hex digits": SpanContext("1" * 6000, PARENT),
    "31 hex digits": SpanContext(TRACE[1:], PARENT),
    "upper case": SpanContext(TRACE.upper(), PARENT),
    "0x prefix": SpanContext("0x" + TRACE[2:], PARENT),
    "underscores": SpanContext(TRACE[:4] + "_" + TRACE[5:], PARENT),
    "spaces": SpanContext(" " + TRACE[1:], PARENT),
    "non-ascii digits": SpanContext("٣" * 32, PARENT),
    "short span id": SpanContext(TRACE, PARENT[1:]),
    "long span id": SpanContext(TRACE, PARENT + "0"),
    "all-zero trace id": SpanContext("0" * 32, PARENT),
    "all-zero span id": SpanContext(TRACE, "0" * 16),
    "int ids": Foreign(trace_id=int(TRACE, 16), span_id=int(PARENT, 16)),
    "bytes ids": Foreign(trace_id=TRACE.encode(), span_id=PARENT.encode()),
    "no ids": Foreign(),
    "trace_id raises RuntimeError": Raising(RuntimeError("boom")),
    "trace_id raises KeyError": Raising(KeyError("boom")),
    "span_id raises": Raising(OSError("boom"), "span_id"),
    "sampled raises": Raising(RuntimeError("boom"), "sampled"),
    "tracestate raises": Raising(RuntimeError("boom"), "tracestate"),
}


@pytest.mark.parametrize("parent", BAD_PARENTS.values(), ids=BAD_PARENTS.keys())
def test_a_parent_without_w3c_ids_starts_a_fresh_trace(
    rec: Recorder, root: Experiment, parent: Any
) -> None:
    with root.trace.prod("handle", parent=parent) as span:
        assert span.parent_id is None
        assert HEX32.fullmatch(span.trace_id) and int(span.trace_id, 16) != 0
        assert span.tracestate is None
    (record,) = rec.spans(name="handle")
    assert HEX32.fullmatch(record.trace_id) and record.parent_id is None


def test_a_valid_foreign_parent_is_followed(rec: Recorder, root: Experiment) -> None:
    parent = Foreign(trace_id=TRACE, span_id=PARENT, sampled=True, tracestate="v=1")
    with root.trace.prod("handle", parent=parent) as span:  # type: ignore[arg-type]
        assert (span.trace_id, span.parent_id, span.tracestate) == (TRACE, PARENT, "v=1")
    # A tracestate that is not text is not kept (it would be sent on as it is).
    odd = Foreign(trace_id=TRACE, span_id=PARENT, tracestate=["v=1"])
    with root.trace.prod("odd", parent=odd) as span:  # type: ignore[arg-type]
        assert (span.trace_id, span.tracestate) == (TRACE, None)
    # A record read back from the database is a parent too.
    record = SpanRecord(**{**attrs_of(rec.span(name="handle")), "span_id": PARENT})
    with root.trace.prod("again", parent=record) as span:  # type: ignore[arg-type]
        assert (span.trace_id, span.parent_id) == (TRACE, PARENT)


def attrs_of(record: SpanRecord) -> dict[str, Any]:
    return attrs.asdict(record, recurse=False)


def test_huge_trace_id_from_a_remote_parent_is_stored_in_postgresql(
    pg_url: str, tmp_path: Path
) -> None:
    # Issue 10: "index row size 3024 exceeds btree version 4 maximum 2704 for
    # index ix_alamos_spans_trace_id" failed every batch from then on.
    root = alamos.new("svc", db=pg_url, console=False, spool_dir=tmp_path / "spool")
    with root.trace.prod("handle", parent=SpanContext("1" * 6000, PARENT)):
        pass
    with root.trace.prod("next"):
        pass
    assert root.flush(HANG)
    stats = root.stats()
    root.close(HANG)
    (delivery,) = stats.exporters.values()
    assert delivery.failures == 0 and delivery.spooled == 0
    engine = create_engine(normalize_url(pg_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT name, trace_id, parent_span_id FROM alamos_spans ORDER BY name")
            ).all()
    finally:
        engine.dispose()
    assert [r[0] for r in rows] == ["handle", "next"]
    assert HEX32.fullmatch(rows[0][1]) and rows[0][2] is None


# -- names ------------------------------------------------------------------------------


class RaisingStr:
    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        return "<RaisingStr>"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class SubStr(str):
    def __str__(self) -> str:
        raise RuntimeError("user code")


class Returns:
    """``__str__`` returning a str subclass (whose methods are user code)."""

    def __str__(self) -> str:
        return SubStr("sub")


NAMES: dict[str, tuple[Any, str]] = {
    "short str": ("write", "write"),
    "at the limit": ("n" * MAX_NAME, "n" * MAX_NAME),
    "over the limit": ("n" * (MAX_NAME + 1), "n" * MAX_NAME + "…"),
    "2 MB": ("m" * 2_000_000, "m" * MAX_NAME + "…"),
    "bytes": (b"bytes-name", "bytes-name"),
    "bad utf-8": (b"caf\xe9", "caf\ufffd"),
    "bytearray": (bytearray(b"ba"), "ba"),
    "memoryview": (memoryview(b"mv"), "mv"),
    "str raises": (RaisingStr(), "<RaisingStr>"),
    "str and repr raise": (Unprintable(), "<unrepresentable Unprintable: RuntimeError>"),
    "str subclass": (SubStr("plain"), "plain"),
    "str returns a subclass": (Returns(), "sub"),
    "int": (42, "42"),
}


@pytest.mark.parametrize(("name", "stored"), NAMES.values(), ids=NAMES.keys())
def test_span_and_event_names_are_text_within_the_limit(
    rec: Recorder, root: Experiment, name: Any, stored: str
) -> None:
    with root.trace.prod(name) as span:
        assert type(span.name) is str and span.name == stored
        span.event(name)
    (record,) = rec.spans()
    assert type(record.name) is str and record.name == stored
    (event,) = record.events
    assert type(event.name) is str and event.name == stored
    # One rule for both paths: the spool gives back the same record.
    (back,) = loads_batch(dumps_batch([record]))
    assert back == record


class Liar:
    """Claims to be a str (as a mock with ``spec=str`` does)."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return str

    def __len__(self) -> int:
        return 3


def test_a_name_lying_about_its_class_is_stored_as_text(rec: Recorder, root: Experiment) -> None:
    with root.trace.prod(Liar()):  # type: ignore[arg-type]
        pass
    (record,) = rec.spans()
    assert type(record.name) is str and record.name == "<Liar>"
    (back,) = loads_batch(dumps_batch([record]))
    assert back == record


def test_a_span_with_a_long_name_is_a_parent_and_a_decorator(
    rec: Recorder, root: Experiment
) -> None:
    name = "n" * 2000
    with root.trace.prod(name) as parent:
        assert parent.path == "server" and parent.name == "n" * MAX_NAME + "…"
        with root.trace.prod("child") as child:
            assert child.parent_id == parent.span_id

    @root.trace.prod(name)
    def work() -> int:
        return 1

    assert work() == 1
    assert [r.name for r in rec.spans()] == ["child", "n" * MAX_NAME + "…", "n" * MAX_NAME + "…"]


def test_names_are_made_text_once_on_the_callers_thread(tmp_path: Path) -> None:
    """A name object's ``__str__`` runs in the ``with`` statement, never on
    the worker or in ``flush()`` (issue 10: one that never returned hung
    ``flush(timeout)``, ``close(timeout)`` and the exit hook)."""
    calls: list[int] = []

    class Name:
        def __str__(self) -> str:
            calls.append(threading.get_ident())
            return "named"

    url = f"sqlite:///{tmp_path / 'a.db'}"
    root = alamos.new("svc", db=url, console=False, spool_dir=tmp_path / "spool")
    with root.trace.prod(Name()) as span:  # type: ignore[arg-type]
        span.event(Name())  # type: ignore[arg-type]
    assert calls == [threading.get_ident()] * 2
    assert root.flush(HANG)
    root.close(HANG)
    assert calls == [threading.get_ident()] * 2
    with sqlite3.connect(tmp_path / "a.db") as conn:
        assert conn.execute("SELECT name, events FROM alamos_spans").fetchone()[0] == "named"


def test_error_texts_are_bounded(rec: Recorder, root: Experiment) -> None:
    with pytest.raises(ValueError), root.trace.prod("x"):
        raise ValueError("e" * 100_000)
    with root.trace.prod("y") as span:
        span.set_status("error", "d" * 100_000)
    with root.trace.prod("z") as span:
        span.set_status("error", RaisingStr())  # type: ignore[arg-type]
    x, y, z = (rec.span(name=n) for n in "xyz")
    assert x.error_text == ("ValueError: " + "e" * 100_000)[:MAX_MESSAGE] + "…"
    assert y.error_text == "d" * MAX_MESSAGE + "…"
    assert z.error_text == "<RaisingStr>"


# -- values: coerced once, storable by the spool and the database alike -------------------


def test_a_huge_int_becomes_text(rec: Recorder, root: Experiment) -> None:
    big = 10**5000  # more than json's 4300 digits: the spool could not write it
    limit = 2**MAX_INT_BITS - 1
    with root.trace.prod("x", attributes={"big": big}) as span:
        span.set("neg", -big)
        span.set("seq", [1, big])
        span.set("edge", limit)
        span.set("over", limit + 1)
        span.event("e", big=big)
        root.log.info("m", big=big)
    attrs = rec.span(name="x").attributes
    text = f"<int of {big.bit_length()} bits>"
    assert attrs["big"] == text and attrs["neg"] == text and attrs["seq"] == (1, text)
    assert attrs["edge"] == limit  # 8192 bits: kept
    assert attrs["over"] == f"<int of {MAX_INT_BITS + 1} bits>"
    assert rec.span(name="x").events[0].attributes["big"] == text
    assert rec.log(message="m").attributes["big"] == text


HOSTILE_VALUES: dict[str, Any] = {
    "huge int": 10**5000,
    "huge negative int": -(10**5000),
    "bytes": b"\x00\xff",
    "nested": {"a": [1, {2, 3}], "b": (None, b"x")},
    "str subclass": SubStr("s"),
    "raising str": RaisingStr(),
    "unprintable": Unprintable(),
    "nan": float("nan"),
    "surrogate": "\ud800",
    "set of huge ints": {10**5000},
}


def test_every_record_made_from_hostile_input_round_trips_through_the_spool(
    rec: Recorder, root: Experiment
) -> None:
    for name, value in HOSTILE_VALUES.items():
        with root.trace.prod(value, attributes={name: value}) as span:
            span.set("again", value)
            span.event(value, v=value)
            root.log.info(value, v=value)
            root.log.info("{}", value)
            span.set_status("error", value)
    records = rec.records
    assert len(records) >= 3 * len(HOSTILE_VALUES)
    line = dumps_batch(records)  # the spool's encoder: raised on a huge int or a bad name
    assert dumps_batch(loads_batch(line)) == line  # lossless (NaN != NaN: compare lines)


@contextmanager
def unreachable(db_file: Path) -> Iterator[None]:
    """The SQLite file's folder replaced by a plain file: nothing can be
    opened there, root or not (moved back on exit)."""
    folder = db_file.parent
    moved = folder.with_name(folder.name + "-away")
    folder.rename(moved)
    folder.write_text("not a folder")
    try:
        yield
    finally:
        folder.unlink()
        moved.rename(folder)


def stored_names(db_file: Path) -> list[tuple[Any, ...]]:
    """(name, attributes, events without their times) of every span, in order."""
    with sqlite3.connect(db_file) as conn:
        rows = conn.execute(
            "SELECT name, attributes, events FROM alamos_spans ORDER BY start_ns"
        ).fetchall()
    return [
        (name, json.loads(attributes), [{**e, "ts_ns": 0} for e in json.loads(events)])
        for name, attributes, events in rows
    ]


def test_stored_the_same_directly_and_through_a_spool_replay(tmp_path: Path) -> None:
    """Issue 10: a bytes span name was stored as ``bytes-name`` directly and
    as ``b'bytes-name'`` after a replay; a name whose ``__str__`` raised, or
    an int of more than 4,300 digits, failed the spool and cost the batch."""

    def record_all(exp: Experiment) -> None:
        for value in (b"bytes-name", RaisingStr(), SubStr("sub"), "plain"):
            with exp.trace.prod(value, attributes={"big": 10**5000, "b": b"v"}) as span:
                span.event(value, big=10**5000)

    direct_db = tmp_path / "direct" / "a.db"
    direct_db.parent.mkdir()
    root = alamos.new("svc", db=f"sqlite:///{direct_db}", console=False, spool_dir=tmp_path / "s1")
    record_all(root)
    assert root.flush(HANG)
    root.close(HANG)

    spooled_db = tmp_path / "spooled" / "a.db"
    spooled_db.parent.mkdir()
    url = f"sqlite:///{spooled_db}"
    root = alamos.new("svc", db=url, console=False, spool_dir=tmp_path / "s2")
    with root.trace.prod("first"):  # the database is created
        pass
    assert root.flush(HANG)
    with unreachable(spooled_db):
        record_all(root)
        assert root.flush(HANG)  # durable: in the spool
        spooled = root.stats().exporters
    root.close(HANG)  # the database is back: close replays the spool
    (delivery,) = spooled.values()
    assert delivery.spooled >= 4 and delivery.dropped == 0
    assert root.stats().dropped == 0
    # The next start replays what is left, if anything is.
    root = alamos.new("svc", db=url, console=False, spool_dir=tmp_path / "s2")
    with root.trace.prod("last"):
        pass
    root.close(HANG)

    direct = stored_names(direct_db)
    replayed = [row for row in stored_names(spooled_db) if row[0] not in ("first", "last")]
    assert [row[0] for row in direct] == ["bytes-name", "<RaisingStr>", "sub", "plain"]
    assert [row[0] for row in replayed] == [row[0] for row in direct]
    assert [row[1:] for row in replayed] == [row[1:] for row in direct]


# -- a huge container as a value -----------------------------------------------------


def test_a_huge_dict_is_cut_while_its_repr_is_written(rec: Recorder, root: Experiment) -> None:
    """Issue 10: ``span.set(k, huge_dict)`` built the whole ``repr`` (282 ms for
    2M entries) before cutting it to 4096 characters."""
    written = 0

    class Counted:
        def __repr__(self) -> str:
            nonlocal written
            written += 1
            return "c"

    huge = {i: Counted() for i in range(200_000)}
    with root.trace.prod("x") as span:
        span.set("huge", huge)
        span.set("list", [[Counted() for _ in range(200_000)]])
    attrs = rec.span(name="x").attributes
    full = repr({i: "c" for i in range(2000)}).replace("'c'", "c")
    assert attrs["huge"] == full[:MAX_STRING] + "…"
    assert attrs["list"] == (("[" + "c, " * 2000)[:MAX_STRING] + "…",)
    assert written < 3000  # a few thousand items written, not 400,000


@pytest.mark.parametrize(
    "value",
    [
        {},
        [],
        (),
        set(),
        frozenset(),
        (1,),
        {"a": [1, (2,), {3}], "b": frozenset({4})},
        [b"x", "it's", 'say "hi"', 1.5, None, True, 10**30],
        ((),),
    ],
    ids=repr,
)
def test_short_containers_are_their_repr(root: Experiment, rec: Recorder, value: Any) -> None:
    with root.trace.prod("x") as span:
        span.set("v", [value])
    assert rec.span(name="x").attributes["v"] == (repr(value),)


def test_recursive_containers(root: Experiment, rec: Recorder) -> None:
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    d: dict[str, Any] = {}
    d["self"] = d
    with root.trace.prod("x") as span:
        span.set("list", [cyclic])
        span.set("dict", d)
    attrs = rec.span(name="x").attributes
    assert attrs["list"] == (repr(cyclic),) and attrs["dict"] == repr(d)


# -- sizes: a span with long text is put with its size -------------------------------------


@pytest.fixture
def handoff() -> Handoff:
    """A hand-off with no worker: what is put stays queued."""
    return Handoff(100_000, 512, lambda: None, max_bytes=1 << 20)


@pytest.fixture
def tracer(handoff: Handoff) -> Tracer:
    scope = LiveScope(Scope("svc", bench=True, debug=True, prod=True))
    return Tracer(scope, handoff.put, ALWAYS)


def test_spans_with_long_text_count_their_bytes(handoff: Handoff, tracer: Tracer) -> None:
    with tracer.prod("small") as span:
        span.set("s", "x" * SMALL_TEXT)
    assert handoff.queued_bytes == ITEM_BYTES
    with tracer.prod("attrs") as span:
        for i in range(10):
            span.set(f"k{i}", "x" * 10_000)  # each cut to MAX_STRING + "…"
    assert handoff.queued_bytes == 2 * ITEM_BYTES + 10 * getsizeof("x" * MAX_STRING + "…")
    before = handoff.queued_bytes
    with tracer.prod("n" * 600) as span:
        span.event("e", a="y" * 300, b=["z" * 400, 1])
        span.set("list", ["w" * 500])
    texts = ("n" * 600, "y" * 300, "z" * 400, "w" * 500)
    assert handoff.queued_bytes == before + ITEM_BYTES + sum(getsizeof(t) for t in texts)
    before = handoff.queued_bytes
    with pytest.raises(ValueError), tracer.prod("error"):
        raise ValueError("v" * 1000)
    assert handoff.queued_bytes > before + ITEM_BYTES + 1000  # message, text, stack
    # Taken by the worker: no longer counted.
    records = [item.to_record("svc", "node") for item in handoff.take(100)]
    assert [r.name for r in records][:3] == ["small", "attrs", "n" * 600]
    assert handoff.queued_bytes == 0 and len(handoff) == 0


def test_spans_past_the_byte_bound_are_dropped_and_counted(
    handoff: Handoff, tracer: Tracer
) -> None:
    for _ in range(100):
        with tracer.prod("x") as span:
            span.set_attributes({f"k{j}": "x" * MAX_STRING for j in range(10)})
    assert handoff.queued_bytes <= 1 << 20
    kept = len(handoff)
    assert 0 < kept < 100 and handoff.dropped == 100 - kept
    handoff.take(kept)
    with tracer.prod("small"):
        pass
    assert len(handoff) == 1 and handoff.dropped == 100 - kept


def test_a_large_span_is_still_a_parent(rec: Recorder, root: Experiment) -> None:
    with root.trace.prod("parent") as parent:
        parent.set("big", "x" * 1000)
        with root.trace.prod("child") as child:
            assert child.parent_id == parent.span_id and child.trace_id == parent.trace_id
        assert alamos.current_span() is parent
    assert alamos.current_span() is None
    with root.trace.prod("explicit", parent=parent) as span:
        assert span.parent_id == parent.span_id
    started = root.trace.prod("started").start()
    started.set("big", "y" * 1000)
    started.end()
    assert alamos.current_span() is None
    assert {r.name for r in rec.spans()} == {"parent", "child", "explicit", "started"}
    assert rec.span(name="child").parent_id == rec.span(name="parent").span_id


def test_an_error_that_makes_a_span_large_ends_it_once(rec: Recorder, root: Experiment) -> None:
    with pytest.raises(ValueError), root.trace.prod("x"):
        raise ValueError("v" * 10_000)
    assert alamos.current_span() is None
    (record,) = rec.spans(name="x")
    assert record.status == "error" and len(record.events) == 1
