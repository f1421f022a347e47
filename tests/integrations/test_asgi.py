"""AlamosMiddleware behind a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

import alamos
from alamos.asgi import AlamosMiddleware
from alamos.testing import Recorder

from .conftest import wait_span

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
Serve = Callable[[Any], str]


async def hello(scope: Any, receive: Any, send: Any) -> None:
    """A raw ASGI app: 200, "hello"."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def starlette_app(rec_root: alamos.Experiment) -> Starlette:
    work = rec_root.sub("work")

    async def item(request: Request) -> Response:
        with work.trace.prod("load") as span:
            work.log.info("loading {id}", id=request.path_params["id"])
            span.set("id", request.path_params["id"])
        current = alamos.current_span()
        assert current is not None
        return JSONResponse(
            {"trace_id": current.trace_id, "tracestate": current.context.tracestate}
        )

    async def unavailable(request: Request) -> Response:
        return PlainTextResponse("later", status_code=503)

    async def teapot(request: Request) -> Response:
        return PlainTextResponse("no", status_code=418)

    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    return Starlette(
        routes=[
            Route("/items/{id:int}", item),
            Route("/unavailable", unavailable),
            Route("/teapot", teapot),
            Route("/boom", boom),
            Mount("/v1", routes=[Route("/users/{name}", item)]),
            Mount("/static", app=hello),
        ]
    )


@pytest.fixture
def app_url(rec: Recorder, serve: Serve) -> str:
    root = rec.new("server")
    return serve(AlamosMiddleware(starlette_app(root), root.sub("http")))


def test_server_span_attributes(rec: Recorder, serve: Serve) -> None:
    root = rec.new("server")
    url = serve(AlamosMiddleware(hello, root.sub("http")))
    r = httpx.get(f"{url}/a%20b/c?x=1&y=2", timeout=10)
    assert r.status_code == 200 and r.text == "hello"
    span = wait_span(rec, path="server.http")
    # No route template: the method alone (OpenTelemetry's rule; a raw path
    # would make one span name per URL), the path in url.path.
    assert span.name == "GET"
    assert span.level == alamos.Level.PROD
    assert span.parent_id is None
    assert span.status == "unset"
    port = int(url.rsplit(":", 1)[1])
    assert dict(span.attributes) == {
        "http.request.method": "GET",
        "url.path": "/a%20b/c",
        "url.query": "x=1&y=2",
        "url.scheme": "http",
        "server.address": "127.0.0.1",
        "server.port": port,
        "client.address": "127.0.0.1",
        "user_agent.original": f"python-httpx/{httpx.__version__}",
        "network.protocol.version": "1.1",
        "http.response.status_code": 200,
    }


def test_route_template_names_the_span(rec: Recorder, app_url: str) -> None:
    r = httpx.get(f"{app_url}/items/42", timeout=10)
    assert r.status_code == 200
    span = wait_span(rec, path="server.http")
    assert span.name == "GET /items/{id}"
    assert span.attributes["http.route"] == "/items/{id}"
    assert span.attributes["url.path"] == "/items/42"
    assert "url.query" not in span.attributes


@pytest.mark.parametrize(
    ("target", "name"),
    [
        ("/v1/users/ann", "GET /v1/users/{name}"),  # a route inside a Mount
        ("/static/css/site.css", "GET /static/{path}"),  # a mounted app, no routing
        ("/nowhere/1", "GET"),  # no route: the method alone, never the raw path
    ],
)
def test_route_templates_under_mounts(rec: Recorder, app_url: str, target: str, name: str) -> None:
    httpx.get(f"{app_url}{target}", timeout=10)
    assert wait_span(rec, path="server.http").name == name


def test_handler_spans_and_logs_are_children(rec: Recorder, app_url: str) -> None:
    body = httpx.get(f"{app_url}/items/7", timeout=10).json()
    server = wait_span(rec, path="server.http")
    load = rec.span(name="load")
    assert load.parent_id == server.span_id
    assert load.trace_id == server.trace_id == body["trace_id"]
    log = rec.log(message="loading 7")
    assert (log.trace_id, log.span_id) == (server.trace_id, load.span_id)


def test_incoming_traceparent_is_the_parent(rec: Recorder, app_url: str) -> None:
    headers = {"traceparent": f"00-{TRACE}-{SPAN}-01", "tracestate": "vendor=x,other=y"}
    body = httpx.get(f"{app_url}/items/1", headers=headers, timeout=10).json()
    server = wait_span(rec, path="server.http")
    assert server.trace_id == TRACE
    assert server.parent_id == SPAN
    assert body == {"trace_id": TRACE, "tracestate": "vendor=x,other=y"}


@pytest.mark.parametrize(("target", "code"), [("/unavailable", 503), ("/teapot", 418)])
def test_status_codes(rec: Recorder, app_url: str, target: str, code: int) -> None:
    assert httpx.get(f"{app_url}{target}", timeout=10).status_code == code
    span = wait_span(rec, path="server.http")
    assert span.attributes["http.response.status_code"] == code
    if code >= 500:
        assert (span.status, span.error_text) == ("error", f"HTTP {code}")
        assert span.attributes["error.type"] == str(code)
    else:
        assert span.status == "unset"  # a 4xx is the client's mistake
        assert "error.type" not in span.attributes


def test_exception_is_recorded_and_reraised(rec: Recorder, app_url: str) -> None:
    r = httpx.get(f"{app_url}/boom", timeout=10)
    assert r.status_code == 500  # Starlette answers, then re-raises to us
    span = wait_span(rec, path="server.http")
    assert span.name == "GET /boom"
    assert span.status == "error"
    assert span.error_text == "RuntimeError: boom"
    assert [e.name for e in span.events] == ["exception"]
    assert span.attributes["http.response.status_code"] == 500
    assert span.attributes["error.type"] == "RuntimeError"


@pytest.mark.anyio
async def test_exception_propagates_to_the_server(rec: Recorder) -> None:
    root = rec.new("server")

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("bad")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        raise AssertionError("nothing should be sent")

    mw = AlamosMiddleware(broken, root.sub("http"))
    scope = {"type": "http", "method": "POST", "path": "/x", "headers": []}
    with pytest.raises(ValueError, match="bad"):
        await mw(scope, receive, send)
    span = rec.span(path="server.http")
    assert (span.name, span.status, span.error_text) == ("POST", "error", "ValueError: bad")
    # Nothing was sent: the server answers 500 for the exception.
    assert span.attributes["http.response.status_code"] == 500
    assert span.attributes["error.type"] == "ValueError"
    assert alamos.current_span() is None


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["websocket", "lifespan"])
async def test_other_scopes_pass_through(rec: Recorder, kind: str) -> None:
    root = rec.new("server")
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send, alamos.current_span()))

    async def receive() -> dict[str, Any]:
        return {}

    async def send(message: Any) -> None:
        return None

    scope = {"type": kind, "path": "/ws", "headers": [(b"traceparent", b"x")]}
    await AlamosMiddleware(app, root.sub("http"))(scope, receive, send)
    assert seen == [(scope, receive, send, None)]
    assert rec.spans() == []


@pytest.mark.anyio
async def test_ambient_span_is_not_the_parent(rec: Recorder) -> None:
    """A span current where the server runs must not adopt every request."""
    root = rec.new("server")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    mw = AlamosMiddleware(hello, root.sub("http"))
    with root.trace.prod("startup") as startup:
        startup_trace = startup.trace_id
        await mw({"type": "http", "method": "GET", "path": "/", "headers": []}, receive, send)
        assert alamos.current_span() is startup
    span = rec.span(path="server.http")
    assert span.parent_id is None
    assert span.trace_id != startup_trace


def test_nested_middleware_makes_a_child(rec: Recorder, serve: Serve) -> None:
    """A mounted sub-app with its own middleware: its span is a child of the
    outer one, not a second span with the remote parent."""
    root = rec.new("server")
    inner = AlamosMiddleware(hello, root.sub("admin"))
    outer = Starlette(routes=[Mount("/admin", app=inner)])
    url = serve(AlamosMiddleware(outer, root.sub("http")))
    headers = {"traceparent": f"00-{TRACE}-{SPAN}-01"}
    assert httpx.get(f"{url}/admin/x", headers=headers, timeout=10).status_code == 200
    top = wait_span(rec, path="server.http")
    sub = rec.span(path="server.admin")
    assert top.parent_id == SPAN and top.trace_id == TRACE
    assert sub.parent_id == top.span_id and sub.trace_id == TRACE
    assert top.name == "GET /admin/{path}"


def test_filtered_out_level_still_serves(rec: Recorder, serve: Serve) -> None:
    root = rec.new("server", level="prod")
    url = serve(AlamosMiddleware(hello, root.sub("http"), level="debug"))
    assert httpx.get(f"{url}/", timeout=10).text == "hello"
    assert rec.spans(path="server.http") == []


def test_level_is_validated() -> None:
    with pytest.raises(ValueError, match="invalid level"):
        AlamosMiddleware(hello, alamos.NOOP, level="loud")


def test_noop_experiment(serve: Serve) -> None:
    url = serve(AlamosMiddleware(hello, alamos.NOOP))
    assert httpx.get(f"{url}/", timeout=10).text == "hello"


def test_nested_under_a_filtered_out_middleware(rec: Recorder, serve: Serve) -> None:
    """The outer middleware records nothing: the inner one reads the headers."""
    root = rec.new("server", level="prod")
    inner = AlamosMiddleware(hello, root.sub("admin"))
    outer = Starlette(routes=[Mount("/admin", app=inner)])
    url = serve(AlamosMiddleware(outer, root.sub("http"), level="debug"))
    headers = {"traceparent": f"00-{TRACE}-{SPAN}-01"}
    assert httpx.get(f"{url}/admin/x", headers=headers, timeout=10).status_code == 200
    sub = wait_span(rec, path="server.admin")
    assert (sub.trace_id, sub.parent_id) == (TRACE, SPAN)
    assert rec.spans(path="server.http") == []


def test_starlette_add_middleware(rec: Recorder, serve: Serve) -> None:
    """The form the docs show: ``app.add_middleware(AlamosMiddleware, experiment=...)``."""
    root = rec.new("server")
    app = starlette_app(root)
    app.add_middleware(AlamosMiddleware, experiment=root.sub("http"))
    url = serve(app)
    assert httpx.get(f"{url}/items/5", timeout=10).status_code == 200
    span = wait_span(rec, path="server.http")
    assert span.name == "GET /items/{id}"
    assert rec.span(name="load").parent_id == span.span_id
    # Inside Starlette's error middleware: the exception reaches us (error),
    # the 500 is sent by the outer layer, and recorded all the same (issue
    # 14, problem 4: the span had no status code).
    rec.clear()
    assert httpx.get(f"{url}/boom", timeout=10).status_code == 500
    span = wait_span(rec, path="server.http")
    assert (span.status, span.error_text) == ("error", "RuntimeError: boom")
    assert span.attributes["http.response.status_code"] == 500
    assert span.attributes["error.type"] == "RuntimeError"
