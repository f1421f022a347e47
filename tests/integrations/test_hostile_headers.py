"""Malformed or hostile tracing headers never break a request: each gives a
fresh trace (a server span with no parent and a trace id of its own).

Two layers: raw bytes written to a real uvicorn server over a socket (so the
test, not an HTTP client library, decides what is on the wire), and ASGI
scopes built by hand for what no HTTP parser would let through (NUL, CR/LF
inside a value, values that are not bytes at all).
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

import alamos
from alamos.asgi import AlamosMiddleware
from alamos.testing import Recorder

from .conftest import wait_span

T = "4bf92f3577b34da6a3ce929d0e0e4736"
S = "00f067aa0ba902b7"
VALID = f"00-{T}-{S}-01".encode()
Serve = Callable[[Any], str]

# (case id, header lines sent with the request)
WIRE_CASES: list[tuple[str, list[bytes]]] = [
    ("huge-traceparent", [b"traceparent: 00-" + b"a" * 12_000]),
    ("huge-tracestate-no-parent", [b"tracestate: " + b"k=v," * 3_000]),
    ("binary", [b"traceparent: \x80\xff\xfe\xe9" * 10]),
    ("binary-right-length", [b"traceparent: 00-" + b"\xe9" * 32 + b"-" + S.encode() + b"-01"]),
    ("encoded-crlf-injection", [b"traceparent: " + VALID + b"%0d%0aX-Injected:%201"]),
    ("crlf-in-tracestate-only", [b"tracestate: a=1%0d%0atraceparent: " + VALID]),
    ("comma-second-parent", [b"traceparent: " + VALID + b", 00-" + b"1" * 32 + b"-" + b"2" * 16]),
    ("duplicate-traceparent", [b"traceparent: " + VALID, b"traceparent: " + VALID]),
    ("upper-case-hex", [f"traceparent: 00-{T.upper()}-{S.upper()}-01".encode()]),
    ("upper-case-trace-only", [f"traceparent: 00-{T.upper()}-{S}-01".encode()]),
    ("zero-trace-id", [f"traceparent: 00-{'0' * 32}-{S}-01".encode()]),
    ("zero-span-id", [f"traceparent: 00-{T}-{'0' * 16}-01".encode()]),
    ("version-ff", [f"traceparent: ff-{T}-{S}-01".encode()]),
    ("version-00-extra-field", [b"traceparent: " + VALID + b"-extra"]),
    ("future-version-no-dash", [f"traceparent: cc-{T}-{S}-01x".encode()]),
    ("short-ids", [f"traceparent: 00-{T[:31]}-{S}-01".encode()]),
    ("empty", [b"traceparent: "]),
    ("tab-inside", [f"traceparent: 00-{T}\t-{S}-01".encode()]),
    (
        "100-tracestate-members-bad-parent",
        [
            b"traceparent: 00-xyz",
            b"tracestate: " + ",".join(f"k{i}=v{i}" for i in range(100)).encode(),
        ],
    ),
]


def raw_request(port: int, target: str, header_lines: list[bytes]) -> int:
    """Send one HTTP/1.1 request byte for byte; return the status code."""
    request = (
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode()
        + b"".join(line + b"\r\n" for line in header_lines)
        + b"\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
    assert match, data[:200]
    return int(match.group(1))


async def ok_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_hostile_headers_on_the_wire_give_fresh_traces(rec: Recorder, serve: Serve) -> None:
    root = rec.new("server")
    url = serve(AlamosMiddleware(ok_app, root.sub("http")))
    port = int(url.rsplit(":", 1)[1])
    trace_ids = set()
    for i, (case, lines) in enumerate(WIRE_CASES):
        assert raw_request(port, f"/case{i}", lines) == 200, case
        # No route template: every span is named "GET"; the path tells them apart.
        deadline = time.monotonic() + 5.0
        while len(rec.spans(name="GET")) <= i and time.monotonic() < deadline:
            time.sleep(0.005)
        (span,) = [s for s in rec.spans(name="GET") if s.attributes["url.path"] == f"/case{i}"]
        assert span.parent_id is None, case
        assert span.trace_id not in (T, T.upper(), "0" * 32, "1" * 32), case
        assert re.fullmatch(r"[0-9a-f]{32}", span.trace_id), case
        trace_ids.add(span.trace_id)
    assert len(trace_ids) == len(WIRE_CASES)  # a new trace each time


def test_valid_parent_with_100_tracestate_members(rec: Recorder, serve: Serve) -> None:
    """W3C §3.3: a broken tracestate is dropped, the traceparent still counts."""
    root = rec.new("server")
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        current = alamos.current_span()
        seen.append(current.context if current is not None else None)
        await ok_app(scope, receive, send)

    url = serve(AlamosMiddleware(app, root.sub("http")))
    port = int(url.rsplit(":", 1)[1])
    members = ",".join(f"k{i}=v{i}" for i in range(100)).encode()
    assert raw_request(port, "/", [b"traceparent: " + VALID, b"tracestate: " + members]) == 200
    span = wait_span(rec, path="server.http")
    assert (span.trace_id, span.parent_id) == (T, S)
    assert seen[0].tracestate is None


# Header lists no HTTP server would produce: the middleware must not care.
ASGI_CASES: list[tuple[str, Any]] = [
    ("nul-byte", [(b"traceparent", VALID + b"\x00")]),
    ("crlf-in-value", [(b"traceparent", VALID + b"\r\nx-evil: 1")]),
    ("crlf-before-value", [(b"traceparent", b"\r\n" + VALID)]),
    ("tracestate-crlf", [(b"traceparent", b"bad"), (b"tracestate", b"a=1\r\nb=2")]),
    ("one-megabyte", [(b"traceparent", b"0" * 1_000_000)]),
    ("value-not-bytes", [(b"traceparent", 12345)]),
    ("value-none", [(b"traceparent", None)]),
    ("name-not-bytes", [(None, VALID), (b"traceparent", object())]),
    ("not-pairs", [b"traceparent", (b"traceparent",), 42]),
    ("headers-none", None),
    ("headers-not-a-list", 3.5),
    ("unicode-name", [("tráceparent", VALID)]),
    ("str-value-with-unicode", [(b"traceparent", f"00-{T[:-1]}é-{S}-01")]),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("case", "headers"), ASGI_CASES, ids=[c for c, _ in ASGI_CASES])
async def test_hostile_asgi_headers_give_fresh_traces(
    rec: Recorder, case: str, headers: Any
) -> None:
    root = rec.new("server")
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers}
    await AlamosMiddleware(ok_app, root.sub("http"))(scope, receive, send)
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"ok"
    span = rec.span(path="server.http")
    assert span.parent_id is None
    assert span.trace_id != T
