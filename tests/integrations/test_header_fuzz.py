"""Property-based fuzzing of the tracing headers through AlamosMiddleware (issue 10).

Whatever header fields a request carries (near-valid ``traceparent`` and
``tracestate`` values, several of each, any name casing, baggage-like
fields, raw bytes that are not even text), the middleware answers the
request, and its server span is either the child of exactly what
:func:`alamos.extract` reads from the same fields, or the root of a fresh
trace when that is ``None``.  Either way the span's own context injects as
valid headers.  ASGI scopes are built by hand, so values no HTTP parser
would let through (NUL, CR/LF, non-ASCII) reach the middleware too;
``test_hostile_headers.py`` covers the real wire.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import alamos
from alamos.asgi import AlamosMiddleware
from alamos.testing import Recorder
from alamos.trace.span import Span

FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

HEX = "0123456789abcdef"
TRACEPARENT_RE = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]")


@st.composite
def traceparents(draw: st.DrawFn) -> bytes:
    """A valid-looking traceparent (any version and flags), often damaged."""
    version = draw(st.sampled_from(["00", "cc", "ff", "0"]))
    trace_id = draw(st.text(HEX, min_size=31, max_size=33))
    span_id = draw(st.text(HEX, min_size=15, max_size=17))
    flags = draw(st.text(HEX, min_size=2, max_size=2))
    value = f"{version}-{trace_id}-{span_id}-{flags}{draw(st.sampled_from(['', '-x', '.']))}"
    raw = value.encode()
    if draw(st.booleans()):
        i = draw(st.integers(0, len(raw)))
        raw = raw[:i] + draw(st.binary(max_size=2)) + raw[i:]
    return raw


# Valid keys and values built from character lists (st.from_regex is much
# slower to draw from), mixed with arbitrary text.
LC_DIGIT = "abcdefghijklmnopqrstuvwxyz0123456789"
NBLK = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ",=")
keys = st.builds(str.__add__, st.sampled_from(LC_DIGIT), st.text(LC_DIGIT + "_-*/@", max_size=12))
values = st.builds(str.__add__, st.text(NBLK + " ", max_size=12), st.sampled_from(NBLK))
members = st.tuples(st.one_of(keys, st.text(max_size=4)), st.one_of(values, st.text(max_size=4)))
tracestates = st.lists(members, max_size=34).map(
    lambda ms: ",".join(f"{k}={v}" for k, v in ms).encode("utf-8", "replace")
)
baggage = st.lists(members, max_size=5).map(
    lambda ms: ",".join(f"{k}={v};p=1" for k, v in ms).encode("utf-8", "replace")
)
fields = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from([b"traceparent", b"TraceParent", b"TRACEPARENT"]), traceparents()
        ),
        st.tuples(st.sampled_from([b"tracestate", b"TraceState"]), tracestates),
        st.tuples(st.sampled_from([b"baggage", b"correlation-context", b"trace-state"]), baggage),
        st.tuples(st.binary(max_size=12), st.binary(max_size=40)),
    ),
    max_size=5,
)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@FUZZ
@given(headers=fields)
def test_fuzz_middleware_parents_exactly_what_extract_reads(
    rec: Recorder, loop: asyncio.AbstractEventLoop, headers: list[tuple[bytes, bytes]]
) -> None:
    root = rec.trees[0] if rec.trees else rec.new("fuzz")
    seen: list[Span | None] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(alamos.current_span())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": headers}
    loop.run_until_complete(AlamosMiddleware(app, root.sub("http"))(scope, receive, send))
    assert sent[0]["status"] == 200
    span = seen[0]
    assert isinstance(span, Span) and span.end_ns is not None
    expected = alamos.extract(headers)
    if expected is None:
        assert span.parent_id is None and span.context.tracestate is None
    else:
        assert (span.trace_id, span.parent_id) == (expected.trace_id, expected.span_id)
        assert span.context.tracestate == expected.tracestate
        assert span.sampled == expected.sampled  # parent_based: the caller decides
    carrier: dict[str, str] = {}
    alamos.inject(carrier, span.context)
    assert TRACEPARENT_RE.fullmatch(carrier["traceparent"])
    assert carrier.get("tracestate", "x") != ""
