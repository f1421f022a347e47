"""alamos.httpx against a real uvicorn server running AlamosMiddleware."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

import alamos
from alamos.asgi import AlamosMiddleware
from alamos.httpx import AlamosTransport, AsyncAlamosTransport, instrument_client
from alamos.testing import Recorder

from .conftest import wait_span

Serve = Callable[[Any], str]


def make_app() -> Starlette:
    async def echo(request: Request) -> Response:
        return JSONResponse({"headers": dict(request.headers)})

    async def status(request: Request) -> Response:
        return PlainTextResponse("", status_code=int(request.path_params["code"]))

    async def stream(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"chunk{i};".encode()

        return StreamingResponse(body())

    return Starlette(
        routes=[
            Route("/echo", echo),
            Route("/status/{code:int}", status),
            Route("/stream", stream),
        ]
    )


@pytest.fixture
def server(rec: Recorder, serve: Serve) -> str:
    root = rec.new("server")
    return serve(AlamosMiddleware(make_app(), root.sub("http")))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_hop(rec: Recorder, outer: Any, port: int, path: str = "/echo") -> None:
    """outer (test) → client span → server span, one trace."""
    client = rec.span(path="client.out")
    server = wait_span(rec, path="server.http")
    assert client.name == f"GET 127.0.0.1:{port}"
    assert client.parent_id == outer.span_id
    assert server.parent_id == client.span_id
    assert client.trace_id == server.trace_id == outer.trace_id
    assert client.attributes["http.request.method"] == "GET"
    assert client.attributes["url.full"] == f"http://127.0.0.1:{port}{path}"
    assert client.attributes["server.address"] == "127.0.0.1"
    assert client.attributes["server.port"] == port


def test_sync_client_parent_child_across_the_hop(rec: Recorder, server: str) -> None:
    root = rec.new("client")
    port = httpx.URL(server).port
    assert port is not None
    client = instrument_client(httpx.Client(timeout=10), root.sub("out"))
    with client, root.trace.prod("outer") as outer:
        r = client.get(f"{server}/echo", params={"token": "secret"})
        assert alamos.current_span() is outer  # the client span is not left current
    sent = r.json()["headers"]
    check_hop(rec, outer, port)
    span = rec.span(path="client.out")
    assert sent["traceparent"] == f"00-{span.trace_id}-{span.span_id}-01"
    assert "tracestate" not in sent
    assert span.attributes["http.response.status_code"] == 200 and span.status == "unset"
    assert "secret" not in repr(span.attributes)  # the query string is not recorded


@pytest.mark.anyio
async def test_async_client_parent_child_across_the_hop(rec: Recorder, server: str) -> None:
    root = rec.new("client")
    port = httpx.URL(server).port
    async with instrument_client(httpx.AsyncClient(timeout=10), root.sub("out")) as client:
        with root.trace.prod("outer") as outer:
            r = await client.get(f"{server}/echo")
            assert alamos.current_span() is outer
    assert r.status_code == 200
    check_hop(rec, outer, int(port or 0))


@pytest.mark.anyio
async def test_concurrent_async_requests_keep_their_parents(rec: Recorder, server: str) -> None:
    root = rec.new("client")
    outers: dict[int, str] = {}
    async with instrument_client(httpx.AsyncClient(timeout=10), root.sub("out")) as client:

        async def one(i: int) -> None:
            with root.trace.prod(f"task{i}") as outer:
                outers[i] = outer.span_id
                await client.get(f"{server}/echo")

        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(one, i)
    clients = rec.spans(path="client.out")
    assert sorted(c.parent_id or "" for c in clients) == sorted(outers.values())
    for c in clients:
        assert wait_span(rec, path="server.http", where=lambda s, c=c: s.parent_id == c.span_id)


def test_incoming_tracestate_is_forwarded(rec: Recorder, server: str) -> None:
    root = rec.new("client")
    remote = alamos.SpanContext(
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True, "vendor=v1", True
    )
    client = instrument_client(httpx.Client(timeout=10), root.sub("out"))
    with client, root.trace.prod("handle", parent=remote):
        # A stale header set by the caller is replaced, not duplicated.
        sent = client.get(f"{server}/echo", headers={"traceparent": "stale"}).json()
    span = rec.span(path="client.out")
    assert sent["headers"]["traceparent"] == f"00-{span.trace_id}-{span.span_id}-01"
    assert sent["headers"]["tracestate"] == "vendor=v1"
    assert span.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    wait_span(rec, path="server.http")  # the server's span ends just after its response


@pytest.mark.parametrize(("code", "status"), [(200, "unset"), (404, "unset"), (502, "error")])
def test_status_code_recorded(rec: Recorder, server: str, code: int, status: str) -> None:
    root = rec.new("client")
    with instrument_client(httpx.Client(timeout=10), root.sub("out")) as client:
        assert client.get(f"{server}/status/{code}").status_code == code
    span = rec.span(path="client.out")
    assert span.attributes["http.response.status_code"] == code
    assert span.status == status
    if code >= 500:
        assert span.attributes["error.type"] == str(code)
    else:
        assert "error.type" not in span.attributes
    wait_span(rec, path="server.http")  # the server's span ends just after its response


def test_connection_refused_is_an_error(rec: Recorder) -> None:
    root = rec.new("client")
    port = closed_port()
    with (
        instrument_client(httpx.Client(timeout=5), root.sub("out")) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.get(f"http://127.0.0.1:{port}/")
    span = rec.span(path="client.out")
    assert span.status == "error" and span.error_text is not None
    assert span.error_text.startswith("ConnectError")
    assert "http.response.status_code" not in span.attributes
    assert span.attributes["error.type"] == "ConnectError"
    assert rec.unended() == []


@pytest.mark.anyio
async def test_async_connection_refused_is_an_error(rec: Recorder) -> None:
    root = rec.new("client")
    port = closed_port()
    async with instrument_client(httpx.AsyncClient(timeout=5), root.sub("out")) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")
    assert rec.span(path="client.out").status == "error"
    assert rec.unended() == []


def test_streaming_span_ends_at_close(rec: Recorder, server: str) -> None:
    root = rec.new("client")
    with instrument_client(httpx.Client(timeout=10), root.sub("out")) as client:
        with client.stream("GET", f"{server}/stream") as r:
            assert r.status_code == 200
            assert rec.spans(path="client.out") == []  # open while the body is pending
            body = b"".join(r.iter_bytes())
            assert body == b"chunk0;chunk1;chunk2;"
        span = rec.span(path="client.out")
    assert span.attributes["http.response.status_code"] == 200
    wait_span(rec, path="server.http")  # the server's span ends after its last byte
    assert rec.unended() == []


@pytest.mark.anyio
async def test_async_streaming_span_ends_at_close(rec: Recorder, server: str) -> None:
    root = rec.new("client")
    async with instrument_client(httpx.AsyncClient(timeout=10), root.sub("out")) as client:
        async with client.stream("GET", f"{server}/stream") as r:
            assert rec.spans(path="client.out") == []
            chunks = [c async for c in r.aiter_bytes()]
        assert b"".join(chunks) == b"chunk0;chunk1;chunk2;"
        assert len(rec.spans(path="client.out")) == 1
    wait_span(rec, path="server.http")
    assert rec.unended() == []


def test_filtered_out_client_span_still_propagates(rec: Recorder, server: str) -> None:
    root = rec.new("client")
    with instrument_client(httpx.Client(timeout=10), root.sub("out"), level="bench") as client:
        root.set_level("prod")
        with root.trace.prod("outer") as outer:
            client.get(f"{server}/echo")
    assert rec.spans(path="client.out") == []
    server_span = wait_span(rec, path="server.http")
    assert server_span.parent_id == outer.span_id  # joins the trace anyway


def test_no_current_span_starts_a_trace_at_the_client(rec: Recorder, server: str) -> None:
    root = rec.new("client")
    with instrument_client(httpx.Client(timeout=10), root.sub("out")) as client:
        client.get(f"{server}/echo")
    span = rec.span(path="client.out")
    assert span.parent_id is None
    assert wait_span(rec, path="server.http").parent_id == span.span_id


def test_instrument_twice_and_mounts(rec: Recorder, server: str) -> None:
    root = rec.new("client")
    client = httpx.Client(timeout=10, mounts={"http://127.0.0.1": httpx.HTTPTransport()})
    instrument_client(client, root.sub("out"))
    instrument_client(client, root.sub("out"))
    with client:
        client.get(f"{server}/echo")
    assert len(rec.spans(path="client.out")) == 1  # the mount's transport, wrapped once
    assert all(isinstance(t, AlamosTransport) for t in client._mounts.values())
    wait_span(rec, path="server.http")  # the server's span ends just after its response


def test_instrument_rejects_other_objects() -> None:
    with pytest.raises(TypeError, match="cannot instrument"):
        instrument_client(object(), alamos.NOOP)  # type: ignore[type-var]


@pytest.mark.anyio
async def test_transports_can_be_given_directly(rec: Recorder, server: str) -> None:
    root = rec.new("client")
    transport = AsyncAlamosTransport(httpx.AsyncHTTPTransport(), root.sub("out"))
    async with httpx.AsyncClient(transport=transport, timeout=10) as client:
        await client.get(f"{server}/echo")
    assert len(rec.spans(path="client.out")) == 1
    wait_span(rec, path="server.http")  # the server's span ends just after its response


def test_callers_header_kept_when_there_is_nothing_to_send(rec: Recorder, server: str) -> None:
    root = rec.new("client", level="prod")
    own = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with instrument_client(httpx.Client(timeout=10), root.sub("out"), level="debug") as client:
        sent = client.get(f"{server}/echo", headers={"traceparent": own}).json()
    assert sent["headers"]["traceparent"] == own  # no span of ours to replace it with
    assert wait_span(rec, path="server.http").parent_id == "00f067aa0ba902b7"
