"""Spans: fields and records, errors, decorators, the current span, parenting,
and the filtered-out NoopSpan."""

from __future__ import annotations

import re

import pytest

import alamos
from alamos import Experiment, Level, NoopSpan, Span, SpanContext, SpanRecord
from alamos.core.records import EventRecord
from alamos.testing import Recorder

HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- fields and records --------------------------------------------------------------


def test_span_fields(rec: Recorder, root: Experiment) -> None:
    cesium = root.sub("cesium")
    with cesium.trace.prod("write") as span:
        assert isinstance(span, Span)
        assert span.name == "write"
        assert span.path == "server.cesium"
        assert span.level is Level.PROD
        assert HEX32.fullmatch(span.context.trace_id)
        assert HEX16.fullmatch(span.context.span_id)
        assert span.trace_id == span.context.trace_id
        assert span.span_id == span.context.span_id
        assert span.context.sampled is True
        assert span.parent_id is None
        assert span.start_ns > 0 and span.end_ns is None
        assert span.status == "unset" and span.error_text is None
        assert dict(span.attributes) == {} and span.events == ()
        assert span.session_id is None
        assert span.recording
        span.set("bytes", 1024)
        span.set_attributes({"sync": True, "ratio": 0.5})
        span.event("flushed", pages=3)
    assert span.end_ns is not None and span.end_ns >= span.start_ns
    assert not span.recording
    assert dict(span.attributes) == {"bytes": 1024, "sync": True, "ratio": 0.5}
    (event,) = span.events
    assert isinstance(event, EventRecord)
    assert (event.name, dict(event.attributes)) == ("flushed", {"pages": 3})
    assert span.start_ns <= event.ts_ns <= span.end_ns
    assert "<Span server.cesium:write unset trace=" in repr(span)


def test_record_exposes_the_same_names(rec: Recorder, root: Experiment) -> None:
    with root.sub("cesium").trace.debug("write", attributes={"k": "v"}) as span:
        span.event("e", n=1)
    record = rec.span(name="write")
    assert isinstance(record, SpanRecord)
    for name in (
        "name",
        "path",
        "parent_id",
        "level",
        "start_ns",
        "end_ns",
        "status",
        "error_text",
        "events",
        "session_id",
    ):
        assert getattr(record, name) == getattr(span, name), name
    assert dict(record.attributes) == dict(span.attributes) == {"k": "v"}
    assert record.context.trace_id == span.context.trace_id == record.trace_id
    assert record.context.span_id == span.context.span_id == record.span_id == record.id
    assert record.duration_ns == span.end_ns - span.start_ns  # type: ignore[operator]
    assert record.export_level is Level.DEBUG
    assert record.location is not None  # Recorder trees run in debug mode
    with pytest.raises(TypeError):
        record.attributes["x"] = 1  # type: ignore[index]


def test_attributes_are_read_only(root: Experiment) -> None:
    with root.trace.prod("x") as span:
        span.set("a", 1)
        with pytest.raises(TypeError):
            span.attributes["b"] = 2  # type: ignore[index]


def test_set_returns_the_span_for_chaining(root: Experiment) -> None:
    with root.trace.prod("x") as span:
        assert span.set("a", 1).set_attributes({"b": 2}).event("e") is span
        assert span.set_status("ok") is span
    assert span.status == "ok"


def test_set_after_end_is_ignored(rec: Recorder, root: Experiment) -> None:
    with root.trace.prod("x") as span:
        pass
    span.set("late", 1).event("late")
    span.set_status("error", "late")
    assert span.error(ValueError("late")).args == ("late",)
    assert dict(span.attributes) == {} and span.events == ()
    assert span.status == "unset" and span.error_text is None
    assert rec.span(name="x").status == "unset"


def test_all_three_factories(rec: Recorder, root: Experiment) -> None:
    with root.trace.prod("p"), root.trace.debug("d"), root.trace.bench("b"):
        pass
    assert {s.name: s.level for s in rec.spans()} == {
        "p": Level.PROD,
        "d": Level.DEBUG,
        "b": Level.BENCH,
    }


def test_status_values(root: Experiment) -> None:
    with root.trace.prod("x") as span:
        span.set_status("error", "bad thing")
        assert (span.status, span.error_text) == ("error", "bad thing")
        span.set_status("ok")
        assert span.status == "ok"
        with pytest.raises(
            ValueError, match="invalid span status 'fine': use 'unset', 'ok' or 'error'"
        ):
            span.set_status("fine")


def test_start_and_end_by_hand(rec: Recorder, root: Experiment) -> None:
    span = root.trace.prod("manual").start()
    assert alamos.current_span() is span
    with root.trace.prod("child") as child:
        assert child.parent_id == span.span_id
    span.end()
    span.end()  # idempotent
    assert alamos.current_span() is None  # the ended span is no longer current
    assert len(rec.spans(name="manual")) == 1
    with root.trace.prod("after") as after:
        assert after.parent_id is None


def test_unnamed_factory_in_with_is_an_error(root: Experiment) -> None:
    with (
        pytest.raises(TypeError, match=r"a span needs a name: write `with exp\.trace\.prod"),
        root.trace.prod(),
    ):
        pass


# -- errors ----------------------------------------------------------------------------


def test_error_records_and_returns_exc(rec: Recorder, root: Experiment) -> None:
    exc = ValueError("bad value")
    with root.trace.prod("x") as span:
        assert span.error(exc) is exc
        assert span.status == "error"
        assert span.error_text == "ValueError: bad value"
    record = rec.span(name="x", status="error")
    (event,) = record.events
    assert event.name == "exception"
    assert event.attributes["type"] == "ValueError"
    assert event.attributes["message"] == "bad value"
    assert "ValueError: bad value" in str(event.attributes["stacktrace"])


def test_exception_leaving_the_block_is_recorded_and_reraised(
    rec: Recorder, root: Experiment
) -> None:
    with pytest.raises(KeyError), root.trace.prod("x"):
        raise KeyError("missing")
    record = rec.span(name="x")
    assert (record.status, record.error_text) == ("error", "KeyError: 'missing'")
    (event,) = record.events
    assert "raise KeyError" in str(event.attributes["stacktrace"])
    assert alamos.current_span() is None


def test_raise_span_error_records_once(rec: Recorder, root: Experiment) -> None:
    with pytest.raises(OSError), root.trace.prod("x") as span:
        raise span.error(OSError("disk"))
    assert len(rec.span(name="x").events) == 1


def test_another_exception_after_set_status_is_still_recorded(
    rec: Recorder, root: Experiment
) -> None:
    with pytest.raises(RuntimeError), root.trace.prod("x") as span:
        span.set_status("error", "HTTP 500")
        raise RuntimeError("then this")
    record = rec.span(name="x")
    assert record.error_text == "RuntimeError: then this"
    assert [e.attributes["type"] for e in record.events] == ["RuntimeError"]


def test_exception_without_message_and_unprintable(rec: Recorder, root: Experiment) -> None:
    class Nasty(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    with root.trace.prod("a") as span:
        span.error(ValueError())
    with root.trace.prod("b") as span:
        span.error(Nasty())
    assert rec.span(name="a").error_text == "ValueError"
    assert str(rec.span(name="b").error_text).endswith("<locals>.Nasty: <unprintable Nasty>")


def test_base_exceptions_are_not_errors(rec: Recorder, root: Experiment) -> None:
    with pytest.raises(KeyboardInterrupt), root.trace.prod("x"):
        raise KeyboardInterrupt
    assert rec.span(name="x").status == "unset"


# -- decorators ----------------------------------------------------------------------------


class Store:
    def __init__(self, exp: Experiment) -> None:
        self.exp = exp

    def write(self, key: str) -> str:
        @self.exp.trace.prod()
        def inner(k: str) -> str:
            return k.upper()

        return inner(key)


def test_decorator_on_a_sync_function(rec: Recorder, root: Experiment) -> None:
    @root.trace.prod()
    def read(key: str) -> str:
        """Docs."""
        span = alamos.current_span()
        assert span is not None
        return f"{key}:{span.name}"

    assert read("k") == "k:test_decorator_on_a_sync_function.<locals>.read"
    assert read.__name__ == "read" and read.__doc__ == "Docs."
    assert Store(root).write("k") == "K"
    assert [s.name for s in rec.spans()] == [
        "test_decorator_on_a_sync_function.<locals>.read",
        "Store.write.<locals>.inner",
    ]


@pytest.mark.anyio
async def test_decorator_on_an_async_function(rec: Recorder, root: Experiment) -> None:
    cesium = root.sub("cesium")

    @cesium.trace.debug()
    async def read(key: str) -> str:
        span = alamos.current_span()
        assert span is not None
        return key * 2

    assert await read("k") == "kk"
    (record,) = rec.spans()
    assert record.name == "test_decorator_on_an_async_function.<locals>.read"
    assert (record.path, record.level) == ("server.cesium", Level.DEBUG)


def test_named_decorator_and_exceptions(rec: Recorder, root: Experiment) -> None:
    @root.trace.bench("fetch")
    def fetch() -> None:
        raise LookupError("nope")

    with pytest.raises(LookupError):
        fetch()
    record = rec.span(name="fetch")
    assert (record.level, record.status) == (Level.BENCH, "error")


def test_decorator_follows_the_filter_at_call_time(rec: Recorder) -> None:
    root = rec.new("server", level="prod")

    @root.trace.debug()
    def work() -> int:
        return 1

    assert work() == 1
    assert rec.spans() == []
    root.set_level("debug")
    assert work() == 1
    assert [s.name for s in rec.spans()] == [
        "test_decorator_follows_the_filter_at_call_time.<locals>.work"
    ]


def test_each_call_is_a_new_span(rec: Recorder, root: Experiment) -> None:
    @root.trace.prod()
    def f() -> None:
        pass

    f()
    f()
    a, b = rec.spans()
    assert a.span_id != b.span_id and a.trace_id != b.trace_id


# -- current span and parenting --------------------------------------------------------------


def test_current_span(root: Experiment) -> None:
    assert alamos.current_span() is None
    with root.trace.prod("outer") as outer:
        assert alamos.current_span() is outer
        with root.trace.prod("inner") as inner:
            assert alamos.current_span() is inner
        assert alamos.current_span() is outer
    assert alamos.current_span() is None


def test_parenting_across_experiments(rec: Recorder, root: Experiment) -> None:
    api = root.sub("api")
    cesium = root.sub("cesium")
    with api.trace.prod("handle"):
        with cesium.trace.prod("write"), cesium.sub("wal").trace.debug("fsync"):
            pass
        with cesium.trace.prod("read"):
            pass
    handle, write, fsync, read = (rec.span(name=n) for n in ("handle", "write", "fsync", "read"))
    assert handle.parent_id is None
    assert write.parent_id == handle.span_id
    assert fsync.parent_id == write.span_id
    assert read.parent_id == handle.span_id
    assert len({s.trace_id for s in rec.spans()}) == 1
    assert fsync.path == "server.cesium.wal"


def test_parenting_across_trees(rec: Recorder, root: Experiment) -> None:
    other = rec.new("client")
    with other.trace.prod("call"), root.trace.prod("serve") as served:
        pass
    assert served.parent_id == rec.span(name="call").span_id


def test_filtered_out_span_is_skipped_in_the_chain(rec: Recorder) -> None:
    root = rec.new("server", level="prod")
    with root.trace.prod("a"), root.trace.debug("hidden"), root.trace.prod("b"):
        pass
    assert rec.span(name="b").parent_id == rec.span(name="a").span_id


def test_explicit_local_parent(rec: Recorder, root: Experiment) -> None:
    with root.trace.prod("a") as a:
        pass
    with root.trace.prod("b", parent=a) as b:
        assert b.parent_id == a.span_id and b.trace_id == a.trace_id


def test_noop_span_as_parent_means_the_current_span(rec: Recorder) -> None:
    root = rec.new("server", level="prod")
    hidden = root.trace.debug("hidden")
    with root.trace.prod("a") as a, root.trace.prod("b", parent=hidden) as b:
        assert b.parent_id == a.span_id
    with root.trace.prod("c", parent=hidden) as c:
        assert c.parent_id is None


# -- NoopSpan --------------------------------------------------------------------------------


def public(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_")}


def test_noop_span_has_the_span_api() -> None:
    assert public(Span) - public(NoopSpan) == set()


def test_filtered_out_span_is_a_shared_noop(rec: Recorder) -> None:
    root = rec.new("server", level="prod")
    cesium = root.sub("cesium")
    a = cesium.trace.debug("a")
    b = cesium.trace.debug("b", attributes={"x": 1})
    assert isinstance(a, NoopSpan) and a is b
    with a as span:
        assert span is a
        assert alamos.current_span() is None
        assert span.set("k", 1) is span
        assert span.set_attributes({"k": 1}) is span
        assert span.event("e", n=1) is span
        assert span.set_status("ok") is span
        exc = ValueError("x")
        assert span.error(exc) is exc
        assert span.start() is span
        assert span.end() is None
    assert span.level is Level.DEBUG and span.path == "server.cesium"
    assert span.context == SpanContext("0" * 32, "0" * 16, sampled=False)
    assert span.trace_id == "0" * 32 and span.span_id == "0" * 16
    assert (span.status, span.error_text, span.parent_id, span.session_id) == (
        "unset",
        None,
        None,
        None,
    )
    assert dict(span.attributes) == {} and span.events == () and not span.recording
    assert repr(span) == "<NoopSpan debug>"
    with pytest.raises(ZeroDivisionError), cesium.trace.bench("x"):
        1 / 0  # noqa: B018
    assert rec.spans() == []
