"""The W3C Trace Context conformance suite's cases, replayed in CI against
``w3c_service.py`` on a real uvicorn server.

Why a port and not the suite itself: the official suite (``w3c/trace-context``,
``test/test.py``) is only published in that GitHub repository, neither on
PyPI nor on npm, and CI reaches package registries only.  So every request
the suite makes (at ``STRICT_LEVEL=2``) is listed in :data:`CASES`, named
after the suite's test method (with ``#n`` when a method sends several), with
the header fields it sends and the outcome it expects.  The plumbing is the
suite's too: the test plays the harness, POSTs the list of callback URLs to
the service with the case's header fields (written byte for byte on a socket,
so repeated fields and odd name casing reach the server as the suite sends
them), and reads the headers of the callbacks the service makes.

The expectations are the suite's, made exact where it leaves a choice:

* ``trace=CONTINUED``: the callback carries the sent trace id, a new parent
  id, and the sent sampled flag; ``trace=RESTARTED``: a trace id that occurs
  nowhere in what was sent;
* ``state``: the exact ``tracestate`` members received, in order (``[]``: no
  ``tracestate`` field at all).  Where the suite accepts either of two
  answers (duplicate keys), we assert the one alamos gives: the left-most
  entry is kept.

Every callback is also checked against the grammar on its own, whatever the
case: exactly one valid version-00 ``traceparent``, at most one
``tracestate`` field, valid members, no duplicate key, at most 32 members and
512 characters.  The suite's ``TraceContext2Test`` (Trace Context Level 2's
"random" trace flag, run only with ``SPEC_LEVEL=2``) is not ported: alamos
does not send that flag yet.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest

from alamos.testing import Recorder

from .conftest import ThreadServer
from .w3c_service import build_app

T = "12345678901234567890123456789012"  # the suite's ids
P = "1234567890123456"
VALID = f"00-{T}-{P}-01"
UNSAMPLED = f"00-{T}-{P}-00"

CONTINUED = "continued"
RESTARTED = "restarted"

# The grammar of what the service sends, written out here rather than
# imported, so that alamos' parser is not what judges alamos' output.
TRACEPARENT_RE = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
KEY_RE = re.compile(r"[a-z0-9][a-z0-9_\-*/@]{0,255}")
VALUE_RE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")

KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
VALUE_CHARS = "".join(chr(c) for c in [*range(0x20, 0x2C), *range(0x2D, 0x3D), *range(0x3E, 0x7F)])
BARS = [f"bar{i:02d}={i:02d}" for i in range(1, 34)]
BAR_MEMBERS = [(f"bar{i:02d}", f"{i:02d}") for i in range(1, 33)]

Headers = list[tuple[str, str]]
Members = list[tuple[str, str]]


class Case(NamedTuple):
    name: str
    headers: Headers
    trace: str
    state: Members
    callbacks: int = 1


def _tp(value: str) -> Headers:
    return [("traceparent", value)]


def _ts(*values: str) -> Headers:
    """An unsampled valid traceparent (as the suite's tracestate cases send) and
    one ``tracestate`` field per value."""
    return [("traceparent", UNSAMPLED), *(("tracestate", v) for v in values)]


def _restart(name: str, traceparent: str) -> Case:
    return Case(name, _tp(traceparent), RESTARTED, [])


CASES: list[Case] = [
    # -- traceparent ------------------------------------------------------------
    Case("test_both_traceparent_and_tracestate_missing", [], RESTARTED, []),
    Case("test_traceparent_included_tracestate_missing", _tp(VALID), CONTINUED, []),
    Case(
        "test_traceparent_duplicated",
        [("traceparent", f"00-{T[:-1]}1-{P}-01"), ("traceparent", VALID)],
        RESTARTED,
        [],
    ),
    Case("test_traceparent_header_name#1", [("trace-parent", VALID)], RESTARTED, []),
    Case("test_traceparent_header_name#2", [("trace.parent", VALID)], RESTARTED, []),
    Case("test_traceparent_header_name_valid_casing#1", [("TraceParent", VALID)], CONTINUED, []),
    Case("test_traceparent_header_name_valid_casing#2", [("TrAcEpArEnT", VALID)], CONTINUED, []),
    Case("test_traceparent_header_name_valid_casing#3", [("TRACEPARENT", VALID)], CONTINUED, []),
    _restart("test_traceparent_version_0x00#1", VALID + "."),
    _restart("test_traceparent_version_0x00#2", VALID + "-what-the-future-will-be-like"),
    Case("test_traceparent_version_0xcc#1", _tp(f"cc-{T}-{P}-01"), CONTINUED, []),
    Case(
        "test_traceparent_version_0xcc#2",
        _tp(f"cc-{T}-{P}-01-what-the-future-will-be-like"),
        CONTINUED,
        [],
    ),
    _restart("test_traceparent_version_0xcc#3", f"cc-{T}-{P}-01.what-the-future-will-be-like"),
    _restart("test_traceparent_version_0xff", f"ff-{T}-{P}-01"),
    _restart("test_traceparent_version_illegal_characters#1", f".0-{T}-{P}-01"),
    _restart("test_traceparent_version_illegal_characters#2", f"0.-{T}-{P}-01"),
    _restart("test_traceparent_version_too_long#1", f"000-{T}-{P}-01"),
    _restart("test_traceparent_version_too_long#2", f"0000-{T}-{P}-01"),
    _restart("test_traceparent_version_too_short", f"0-{T}-{P}-01"),
    _restart("test_traceparent_trace_id_all_zero", f"00-{'0' * 32}-{P}-01"),
    _restart("test_traceparent_trace_id_illegal_characters#1", f"00-.{T[1:]}-{P}-01"),
    _restart("test_traceparent_trace_id_illegal_characters#2", f"00-{T[:-1]}.-{P}-01"),
    _restart("test_traceparent_trace_id_too_long", f"00-{T}3-{P}-01"),
    _restart("test_traceparent_trace_id_too_short", f"00-{T[:-1]}-{P}-01"),
    _restart("test_traceparent_parent_id_all_zero", f"00-{T}-{'0' * 16}-01"),
    _restart("test_traceparent_parent_id_illegal_characters#1", f"00-{T}-.{P[1:]}-01"),
    _restart("test_traceparent_parent_id_illegal_characters#2", f"00-{T}-{P[:-1]}.-01"),
    _restart("test_traceparent_parent_id_too_long", f"00-{T}-{P}7-01"),
    _restart("test_traceparent_parent_id_too_short", f"00-{T}-{P[:-1]}-01"),
    _restart("test_traceparent_trace_flags_illegal_characters#1", f"00-{T}-{P}-.0"),
    _restart("test_traceparent_trace_flags_illegal_characters#2", f"00-{T}-{P}-0."),
    _restart("test_traceparent_trace_flags_too_long", f"00-{T}-{P}-001"),
    _restart("test_traceparent_trace_flags_too_short", f"00-{T}-{P}-1"),
    Case("test_traceparent_ows_handling#1", _tp(" " + VALID), CONTINUED, []),
    Case("test_traceparent_ows_handling#2", _tp("\t" + VALID), CONTINUED, []),
    Case("test_traceparent_ows_handling#3", _tp(VALID + " "), CONTINUED, []),
    Case("test_traceparent_ows_handling#4", _tp(VALID + "\t"), CONTINUED, []),
    Case("test_traceparent_ows_handling#5", _tp("\t " + VALID + " \t"), CONTINUED, []),
    # -- tracestate -------------------------------------------------------------
    Case(
        "test_tracestate_included_traceparent_missing#1",
        [("tracestate", "foo=1")],
        RESTARTED,
        [],
    ),
    Case(
        "test_tracestate_included_traceparent_missing#2",
        [("tracestate", "foo=1,bar=2")],
        RESTARTED,
        [],
    ),
    Case(
        "test_tracestate_included_traceparent_included",
        _ts("foo=1,bar=2"),
        CONTINUED,
        [("foo", "1"), ("bar", "2")],
    ),
    Case(
        "test_tracestate_header_name#1",
        [("traceparent", UNSAMPLED), ("trace-state", "foo=1")],
        CONTINUED,
        [],
    ),
    Case(
        "test_tracestate_header_name#2",
        [("traceparent", UNSAMPLED), ("trace.state", "foo=1")],
        CONTINUED,
        [],
    ),
    *(
        Case(
            f"test_tracestate_header_name_valid_casing#{i}",
            [("traceparent", UNSAMPLED), (name, "foo=1")],
            CONTINUED,
            [("foo", "1")],
        )
        for i, name in enumerate(["TraceState", "TrAcEsTaTe", "TRACESTATE"], 1)
    ),
    Case("test_tracestate_empty_header#1", _ts(""), CONTINUED, []),
    Case("test_tracestate_empty_header#2", _ts("foo=1", ""), CONTINUED, [("foo", "1")]),
    Case("test_tracestate_empty_header#3", _ts("", "foo=1"), CONTINUED, [("foo", "1")]),
    Case(
        "test_tracestate_multiple_headers_different_keys",
        _ts("foo=1,bar=2", "rojo=1,congo=2", "baz=3"),
        CONTINUED,
        [("foo", "1"), ("bar", "2"), ("rojo", "1"), ("congo", "2"), ("baz", "3")],
    ),
    Case("test_tracestate_duplicated_keys#1", _ts("foo=1,foo=1"), CONTINUED, [("foo", "1")]),
    Case("test_tracestate_duplicated_keys#2", _ts("foo=1,foo=2"), CONTINUED, [("foo", "1")]),
    Case("test_tracestate_duplicated_keys#3", _ts("foo=1", "foo=1"), CONTINUED, [("foo", "1")]),
    Case("test_tracestate_duplicated_keys#4", _ts("foo=1", "foo=2"), CONTINUED, [("foo", "1")]),
    Case(
        "test_tracestate_all_allowed_characters#1",
        _ts(f"{KEY_CHARS}={VALUE_CHARS}"),
        CONTINUED,
        [(KEY_CHARS, VALUE_CHARS)],
    ),
    Case(
        "test_tracestate_all_allowed_characters#2",
        _ts(f"{KEY_CHARS}@a-z0-9_-*/={VALUE_CHARS}"),
        CONTINUED,
        [(KEY_CHARS + "@a-z0-9_-*/", VALUE_CHARS)],
    ),
    *(
        Case(
            f"test_tracestate_ows_handling#{i}",
            _ts(value),
            CONTINUED,
            [("foo", "1"), ("bar", "2"), ("baz", "3")],
        )
        for i, value in enumerate(
            ["foo=1 \t , \t bar=2, \t baz=3", "foo=1\t \t,\t \tbar=2,\t \tbaz=3"], 1
        )
    ),
    *(
        Case(f"test_tracestate_ows_handling#{i}", _ts(value), CONTINUED, [("foo", "1")])
        for i, value in enumerate([" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"], 3)
    ),
    Case("test_tracestate_key_illegal_characters#1", _ts("foo =1"), CONTINUED, []),
    Case("test_tracestate_key_illegal_characters#2", _ts("FOO=1"), CONTINUED, []),
    Case("test_tracestate_key_illegal_characters#3", _ts("foo.bar=1"), CONTINUED, []),
    Case(
        "test_tracestate_key_illegal_vendor_format#1",
        _ts("foo@=1,bar=2"),
        CONTINUED,
        [("foo@", "1"), ("bar", "2")],
    ),
    Case("test_tracestate_key_illegal_vendor_format#2", _ts("@foo=1,bar=2"), CONTINUED, []),
    Case(
        "test_tracestate_key_illegal_vendor_format#3",
        _ts("foo@@bar=1,bar=2"),
        CONTINUED,
        [("foo@@bar", "1"), ("bar", "2")],
    ),
    Case(
        "test_tracestate_key_illegal_vendor_format#4",
        _ts("foo@bar@baz=1,bar=2"),
        CONTINUED,
        [("foo@bar@baz", "1"), ("bar", "2")],
    ),
    Case(
        "test_tracestate_member_count_limit#1",
        _ts(
            ",".join(BARS[0:10]), ",".join(BARS[10:20]), ",".join(BARS[20:30]), "bar31=31,bar32=32"
        ),
        CONTINUED,
        BAR_MEMBERS,
    ),
    Case(
        "test_tracestate_member_count_limit#2",
        _ts(
            ",".join(BARS[0:10]), ",".join(BARS[10:20]), ",".join(BARS[20:30]), ",".join(BARS[30:])
        ),
        CONTINUED,
        [],
    ),
    *(
        Case(
            f"test_tracestate_key_length_limit#{i}",
            _ts("foo=1", f"{key}=1"),
            CONTINUED,
            [("foo", "1"), (key, "1")],
        )
        for i, key in [
            (1, "z" * 256),
            (3, "t" * 241 + "@" + "v" * 14),
            (4, "t" * 242 + "@v"),
            (5, "t@" + "v" * 15),
        ]
    ),
    Case("test_tracestate_key_length_limit#2", _ts("foo=1", "z" * 257 + "=1"), CONTINUED, []),
    Case("test_tracestate_value_illegal_characters#1", _ts("foo=bar=baz"), CONTINUED, []),
    Case("test_tracestate_value_illegal_characters#2", _ts("foo=,bar=3"), CONTINUED, []),
    # -- AdvancedTest: several callbacks from one request -------------------------
    Case("test_multiple_requests_with_valid_traceparent", _tp(VALID), CONTINUED, [], 3),
    Case("test_multiple_requests_without_traceparent", [], RESTARTED, [], 3),
    Case(
        "test_multiple_requests_with_illegal_traceparent",
        _tp(f"00-{'0' * 32}-{P}-01"),
        RESTARTED,
        [],
        3,
    ),
]


# ---------------------------------------------------------------------------
# the harness side
# ---------------------------------------------------------------------------


class Callbacks:
    """The harness's callback endpoint: a raw ASGI app that records the
    header fields of every request, by path, and answers ``null``."""

    def __init__(self) -> None:
        self.received: dict[str, list[tuple[bytes, bytes]]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        while (await receive()).get("more_body"):
            pass
        self.received[scope["path"]] = list(scope["headers"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"null"})


class Harness(NamedTuple):
    service_port: int
    callbacks_url: str
    callbacks: Callbacks


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    """The service and the callback endpoint, each on its own uvicorn, once
    for the module (the cases are independent: each uses its own paths)."""
    recorder = Recorder()
    callbacks = Callbacks()
    servers = [ThreadServer(callbacks), ThreadServer(build_app(recorder.new("w3c")))]
    try:
        for server in servers:
            server.start()
        yield Harness(servers[1].port, servers[0].url, callbacks)
    finally:
        for server in servers:
            if server.thread.is_alive():
                server.stop()
        recorder.close()


def post_raw(port: int, path: str, headers: Headers, body: bytes) -> tuple[int, bytes]:
    """POST ``body`` with exactly the header fields ``headers``, in order and
    case as given; return the status and the response body."""
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
        + b"".join(f"{name}: {value}\r\n".encode() for name, value in headers)
        + b"\r\n"
        + body
    )
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
    assert match, data[:200]
    return int(match.group(1)), rest


class Seen(NamedTuple):
    """The trace context of one callback."""

    trace_id: str
    parent_id: str
    flags: str
    state: Members


def read_context(fields: list[tuple[bytes, bytes]]) -> Seen:
    """Check one callback's tracing headers against the grammar, and read them."""
    parents = [v.decode("ascii") for k, v in fields if k.lower() == b"traceparent"]
    assert len(parents) == 1, f"expected one traceparent, got {parents}"
    match = TRACEPARENT_RE.fullmatch(parents[0])
    assert match, f"invalid traceparent sent: {parents[0]!r}"
    trace_id, parent_id, flags = match.groups()
    assert trace_id != "0" * 32 and parent_id != "0" * 16
    assert flags in ("00", "01"), f"flags other than sampled sent: {flags}"
    states = [v.decode("ascii") for k, v in fields if k.lower() == b"tracestate"]
    assert len(states) <= 1, f"tracestate sent as several fields: {states}"
    members: Members = []
    if states:
        assert states[0], "an empty tracestate was sent"
        assert len(states[0]) <= 512
        for member in states[0].split(","):
            key, eq, value = member.partition("=")
            assert eq and KEY_RE.fullmatch(key) and VALUE_RE.fullmatch(value), member
            members.append((key, value))
        keys = [k for k, _ in members]
        assert len(set(keys)) == len(keys) <= 32, keys
    return Seen(trace_id, parent_id, flags, members)


def run_case(harness: Harness, case: Case, tag: str) -> list[Seen]:
    """Send ``case`` to the service; the contexts of its callbacks, in order."""
    paths = [f"/{tag}.{i}" for i in range(case.callbacks)]
    actions = [{"url": harness.callbacks_url + path, "arguments": []} for path in paths]
    status, body = post_raw(
        harness.service_port, "/test", case.headers, json.dumps(actions).encode()
    )
    assert status == 200, body[:300]
    missing = [p for p in paths if p not in harness.callbacks.received]
    assert not missing, f"the service made no callback to {missing}"
    return [read_context(harness.callbacks.received.pop(path)) for path in paths]


# ---------------------------------------------------------------------------
# the cases
# ---------------------------------------------------------------------------


def test_cases_cover_every_strict_test_of_the_suite() -> None:
    # The suite's TraceContextTest and AdvancedTest methods (STRICT_LEVEL=2).
    suite = {
        "test_both_traceparent_and_tracestate_missing",
        "test_traceparent_included_tracestate_missing",
        "test_traceparent_duplicated",
        "test_traceparent_header_name",
        "test_traceparent_header_name_valid_casing",
        "test_traceparent_version_0x00",
        "test_traceparent_version_0xcc",
        "test_traceparent_version_0xff",
        "test_traceparent_version_illegal_characters",
        "test_traceparent_version_too_long",
        "test_traceparent_version_too_short",
        "test_traceparent_trace_id_all_zero",
        "test_traceparent_trace_id_illegal_characters",
        "test_traceparent_trace_id_too_long",
        "test_traceparent_trace_id_too_short",
        "test_traceparent_parent_id_all_zero",
        "test_traceparent_parent_id_illegal_characters",
        "test_traceparent_parent_id_too_long",
        "test_traceparent_parent_id_too_short",
        "test_traceparent_trace_flags_illegal_characters",
        "test_traceparent_trace_flags_too_long",
        "test_traceparent_trace_flags_too_short",
        "test_traceparent_ows_handling",
        "test_tracestate_included_traceparent_missing",
        "test_tracestate_included_traceparent_included",
        "test_tracestate_header_name",
        "test_tracestate_header_name_valid_casing",
        "test_tracestate_empty_header",
        "test_tracestate_multiple_headers_different_keys",
        "test_tracestate_duplicated_keys",
        "test_tracestate_all_allowed_characters",
        "test_tracestate_ows_handling",
        "test_tracestate_key_illegal_characters",
        "test_tracestate_key_illegal_vendor_format",
        "test_tracestate_member_count_limit",
        "test_tracestate_key_length_limit",
        "test_tracestate_value_illegal_characters",
        "test_multiple_requests_with_valid_traceparent",
        "test_multiple_requests_without_traceparent",
        "test_multiple_requests_with_illegal_traceparent",
    }
    names = [case.name for case in CASES]
    assert len(set(names)) == len(names)
    assert {name.partition("#")[0] for name in names} == suite


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_w3c_suite_case(harness: Harness, case: Case) -> None:
    seen = run_case(harness, case, re.sub(r"\W", "_", case.name))
    sent = [value for _, value in case.headers]
    for s in seen:
        if case.trace == CONTINUED:
            assert s.trace_id == T, f"trace not continued: {s}"
            assert s.parent_id != P, "the parent id was forwarded, not replaced"
            sent_flags = next(v for k, v in case.headers if k.lower() == "traceparent")
            assert s.flags == sent_flags.strip(" \t")[53:55], "sampled flag not propagated"
        else:
            assert not any(s.trace_id in value for value in sent), f"trace not restarted: {s}"
        assert s.state == case.state
    # One request is one trace, and every callback has a parent of its own.
    assert len({s.trace_id for s in seen}) == 1
    assert len({s.parent_id for s in seen}) == case.callbacks


def test_service_refuses_non_loopback_callbacks(harness: Harness) -> None:
    # The service fetches URLs named in a request body: never other hosts.
    body = json.dumps([{"url": "http://192.0.2.1/x", "arguments": []}]).encode()
    assert post_raw(harness.service_port, "/test", [], body)[0] == 400
    assert post_raw(harness.service_port, "/test", [], b"{not json")[0] == 400
