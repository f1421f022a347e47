"""Sampling, remote parents, and inject/extract through alamos' public API."""

from __future__ import annotations

import pytest

import alamos
from alamos import Experiment, SpanContext, sampling
from alamos.testing import Recorder
from alamos.trace.sampling import ALWAYS, DEFAULT, NEVER, Sampler, coerce_sampler

LOW = "0" * 16  # trace ids whose low 64 bits are tiny: kept by ratio(0.5)
HIGH = "f" * 16  # ... and huge: dropped by ratio(0.5)
TRACE_LOW = "ab" * 8 + "0" * 15 + "1"
TRACE_HIGH = "ab" * 8 + HIGH
PARENT = "00f067aa0ba902b7"


def roots_sampled(root: Experiment, n: int = 200) -> int:
    count = 0
    for _ in range(n):
        with root.trace.prod("r") as span:
            count += span.context.sampled
    return count


# -- samplers -------------------------------------------------------------------------


def test_default_is_parent_based_always(rec: Recorder) -> None:
    assert coerce_sampler(None) is DEFAULT
    assert sampling.parent_based(ALWAYS) == DEFAULT
    root = rec.new("server", sampler=None)
    assert roots_sampled(root) == 200
    assert len(rec.spans()) == 200


@pytest.mark.parametrize("sampler", [ALWAYS, "always", 1.0, 1])
def test_always(rec: Recorder, sampler: object) -> None:
    root = rec.new("server", sampler=sampler)
    assert roots_sampled(root, 50) == 50
    # ALWAYS ignores a remote parent's "not sampled".
    with root.trace.prod("x", parent=SpanContext(TRACE_HIGH, PARENT, sampled=False)) as span:
        assert span.context.sampled
    assert len(rec.spans()) == 51


@pytest.mark.parametrize("sampler", [NEVER, "never", "NEVER", 0.0, 0])
def test_never(rec: Recorder, sampler: object) -> None:
    root = rec.new("server", sampler=sampler)
    assert roots_sampled(root, 50) == 0
    with root.trace.prod("x", parent=SpanContext(TRACE_LOW, PARENT, sampled=True)) as span:
        assert not span.context.sampled
    assert rec.spans() == []


def test_ratio_is_decided_by_the_trace_id(rec: Recorder) -> None:
    root = rec.new("server", sampler=sampling.ratio(0.5))
    for tid, expected in ((TRACE_LOW, True), (TRACE_HIGH, False)):
        for parent_sampled in (True, False):  # ratio has no parent rule
            ctx = SpanContext(tid, PARENT, sampled=parent_sampled)
            with root.trace.prod("x", parent=ctx) as span:
                assert span.context.sampled is expected
    # Roughly half of random traces; never all or none for 400 traces.
    kept = roots_sampled(root, 400)
    assert 0 < kept < 400


def test_ratio_bounds() -> None:
    assert sampling.ratio(0).threshold == 0
    assert sampling.ratio(1).threshold == 1 << 64
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"sampling ratio must be in \[0, 1\], got"):
            sampling.ratio(bad)
    with pytest.raises(ValueError, match="sampling ratio must be in"):
        alamos.new("server", sampler=2.0, console=False)


def test_parent_based_follows_the_parent(rec: Recorder) -> None:
    root = rec.new("server", sampler=sampling.parent_based(NEVER))
    assert roots_sampled(root, 20) == 0
    with root.trace.prod("a", parent=SpanContext(TRACE_HIGH, PARENT, sampled=True)) as a:
        assert a.context.sampled
        with root.trace.prod("child") as child:  # local children follow too
            assert child.context.sampled
    with root.trace.prod("b", parent=SpanContext(TRACE_LOW, PARENT, sampled=False)) as b:
        assert not b.context.sampled
    assert {s.name for s in rec.spans()} == {"a", "child"}


def test_parent_based_string() -> None:
    assert coerce_sampler("parent") is DEFAULT
    assert coerce_sampler("parent_based") is DEFAULT
    s = sampling.parent_based(sampling.ratio(0.25))
    assert isinstance(s, Sampler) and s.follow_parent and s.name == "parent_based(ratio(0.25))"


@pytest.mark.parametrize("bad", ["sometimes", object(), True, [0.5]])
def test_bad_samplers(bad: object) -> None:
    with pytest.raises(
        ValueError, match=r"invalid sampler .*: use alamos\.sampling\.ALWAYS, NEVER"
    ):
        alamos.new("server", sampler=bad, console=False)


# -- non-sampled spans still propagate ---------------------------------------------------------


def test_non_sampled_span_propagates_its_ids(rec: Recorder) -> None:
    root = rec.new("server", sampler=NEVER)
    with root.trace.prod("outer") as outer:
        assert alamos.current_span() is outer
        assert not outer.context.sampled and not outer.recording
        with root.sub("cesium").trace.prod("inner") as inner:
            assert inner.trace_id == outer.trace_id
            assert inner.parent_id == outer.span_id
            root.log.info("inside")
        carrier: dict[str, str] = {}
        alamos.inject(carrier)
        assert carrier["traceparent"] == f"00-{outer.trace_id}-{outer.span_id}-00"
    assert rec.spans() == []
    (log,) = rec.logs()  # logs are not sampled: they keep the ids
    assert (log.trace_id, log.span_id) == (outer.trace_id, inner.span_id)


# -- remote parents and propagation ----------------------------------------------------------


def test_remote_parent(rec: Recorder) -> None:
    root = rec.new("server")
    ctx = SpanContext("4bf92f3577b34da6a3ce929d0e0e4736", PARENT, sampled=True, remote=True)
    with root.trace.prod("handle", parent=ctx) as span, root.trace.prod("child") as child:
        pass
    assert span.trace_id == ctx.trace_id and span.parent_id == PARENT
    assert child.trace_id == ctx.trace_id and child.parent_id == span.span_id
    record = rec.span(name="handle")
    assert (record.trace_id, record.parent_id) == (ctx.trace_id, PARENT)


@pytest.mark.parametrize(
    "ctx",
    [
        SpanContext("0" * 32, PARENT),
        SpanContext("4bf92f3577b34da6a3ce929d0e0e4736", "0" * 16),
        SpanContext("not hex", PARENT),
    ],
)
def test_invalid_remote_parent_starts_a_new_trace(rec: Recorder, ctx: SpanContext) -> None:
    root = rec.new("server")
    with root.trace.prod("x", parent=ctx) as span:
        assert span.parent_id is None and span.trace_id != ctx.trace_id
        assert int(span.trace_id, 16) != 0


def test_inject_extract_round_trip(rec: Recorder) -> None:
    client = rec.new("client")
    server = rec.new("server")
    headers: dict[str, str] = {}
    with client.trace.prod("call") as call:
        alamos.inject(headers)
    assert headers["traceparent"] == f"00-{call.trace_id}-{call.span_id}-01"
    ctx = alamos.extract(headers)
    assert ctx is not None and ctx.remote
    assert (ctx.trace_id, ctx.span_id, ctx.sampled) == (call.trace_id, call.span_id, True)
    with server.trace.prod("handle", parent=ctx):
        pass
    handle = rec.span(name="handle")
    assert handle.trace_id == call.trace_id and handle.parent_id == call.span_id


def test_inject_tracestate_and_explicit_context(rec: Recorder) -> None:
    ctx = SpanContext("4bf92f3577b34da6a3ce929d0e0e4736", PARENT, tracestate="vendor=1")
    root = rec.new("server")
    with root.trace.prod("handle", parent=ctx):
        headers: dict[str, str] = {}
        alamos.inject(headers)
    assert headers["tracestate"] == "vendor=1"
    explicit: dict[str, str] = {}
    alamos.inject(explicit, ctx)
    assert explicit["traceparent"] == f"00-{ctx.trace_id}-{PARENT}-01"


def test_inject_without_a_current_span_writes_nothing() -> None:
    headers: dict[str, str] = {}
    alamos.inject(headers)
    assert "traceparent" not in headers


@pytest.mark.parametrize(
    "carrier",
    [{}, {"traceparent": "garbage"}, {"traceparent": 3}, None, 42, "text", [("a",)]],
)
def test_extract_never_raises(carrier: object) -> None:
    assert alamos.extract(carrier) is None


def test_extract_from_a_hostile_carrier() -> None:
    class Hostile(dict):  # type: ignore[type-arg]
        def items(self) -> object:
            raise RuntimeError("boom")

    assert alamos.extract(Hostile()) is None
