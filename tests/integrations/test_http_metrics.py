"""HTTP server and client metrics on the stable OpenTelemetry conventions
(issue 14, problem 3), expected HTTPExceptions under the middleware (problem
6), the lifespan helper, and the tree's process and GC collectors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI, HTTPException
from prometheus_client import generate_latest

import alamos
from alamos.asgi import AlamosMiddleware, lifespan
from alamos.core.semconv import DURATION_BUCKETS
from alamos.httpx import instrument_client
from alamos.testing import Recorder

from .conftest import wait_span

Serve = Callable[[Any], str]


def shop(root: alamos.Experiment) -> FastAPI:
    repo = root.sub("repo")
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        with repo.trace.prod("load") as span:
            span.set("id", item_id)
            if item_id == 0:
                raise HTTPException(status_code=404, detail="no such item")
            if item_id == 13:
                raise HTTPException(status_code=503, detail="unlucky")
        return {"id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    app.add_middleware(AlamosMiddleware, experiment=root.sub("http"))
    return app


def histogram(exp: alamos.Experiment, name: str) -> dict[tuple[str, ...], dict[str, Any]]:
    """label values → {"count", "sum", "buckets"} of histogram ``name`` of ``exp``."""
    metric = exp.metrics.get(name)
    assert metric is not None, f"no metric {name} in {exp.path}"
    return {
        tuple(s["labels"][n] for n in metric.labelnames): s for s in metric.samples() if s["count"]
    }


def wait_total(
    exp: alamos.Experiment, name: str, total: int, timeout: float = 5.0
) -> dict[tuple[str, ...], dict[str, Any]]:
    """:func:`histogram`, once it has counted ``total`` requests: the server
    observes a request after its response is sent, so after the client has it."""
    deadline = time.monotonic() + timeout
    while True:
        seen = histogram(exp, name)
        if sum(s["count"] for s in seen.values()) >= total or time.monotonic() > deadline:
            return seen
        time.sleep(0.005)


def test_server_request_duration_by_method_route_status_error(rec: Recorder, serve: Serve) -> None:
    root = rec.new("shop")
    url = serve(shop(root))
    with httpx.Client(base_url=url, timeout=10) as client:
        for target, code in [
            ("/items/1", 200),
            ("/items/2", 200),
            ("/items/0", 404),
            ("/items/13", 503),
            ("/boom", 500),
            ("/nowhere/1", 404),
            ("/nowhere/2", 404),
            ("/scanner/probe.php", 404),
        ]:
            assert client.get(target).status_code == code
        assert client.request("PROPFIND", "/items/1").status_code == 405
    http = root.sub("http")
    seen = wait_total(http, "http_server_request_duration_seconds", 9)
    counts = {labels: s["count"] for labels, s in seen.items()}
    assert counts == {
        ("GET", "/items/{item_id}", "200", ""): 2.0,
        ("GET", "/items/{item_id}", "404", ""): 1.0,
        ("GET", "/items/{item_id}", "503", "503"): 1.0,
        ("GET", "/boom", "500", "RuntimeError"): 1.0,
        # Three unknown URLs, one series: no route is one label value.
        ("GET", "", "404", ""): 3.0,
        # An unknown method is one value too.
        ("_OTHER", "/items/{item_id}", "405", ""): 1.0,
    }
    buckets = seen[("GET", "/items/{item_id}", "200", "")]["buckets"]
    assert [float(b) for b in buckets if b != "+Inf"] == list(DURATION_BUCKETS)
    assert buckets["+Inf"] == 2.0
    # The Prometheus names: dots become underscores, seconds in the name.
    text = generate_latest(root.registry).decode()
    assert (
        'shop_http_http_server_request_duration_seconds_count{error_type="",'
        'http_request_method="GET",http_response_status_code="404",http_route=""} 3.0'
    ) in text
    assert (
        'shop_http_http_server_active_requests{http_request_method="GET",url_scheme="http"} 0.0'
        in text
    )


def test_expected_http_exception_in_a_handler_span_is_not_an_error(
    rec: Recorder, serve: Serve
) -> None:
    """Problem 6: HTTPException(404) raised through a span marked it an error."""
    root = rec.new("shop")
    url = serve(shop(root))
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/items/0").status_code == 404
        server = wait_span(rec, path="shop.http")
        load = rec.span(name="load")
        assert load.parent_id == server.span_id
        assert (load.status, load.error_text) == ("unset", None)
        ((event),) = load.events
        assert dict(event.attributes) == {
            "type": "HTTPException",
            "message": "404: no such item",
            "expected": True,
        }
        assert server.status == "unset"
        assert server.attributes["http.response.status_code"] == 404
        assert server.name == "GET /items/{item_id}"
        # A 5xx HTTPException is the server's own error.
        rec.clear()
        assert client.get("/items/13").status_code == 503
        wait_span(rec, path="shop.http")
        assert rec.span(name="load").status == "error"


def test_client_errors_can_be_errors(rec: Recorder, serve: Serve) -> None:
    root = rec.new("shop")
    app = FastAPI()
    repo = root.sub("repo")

    @app.get("/x")
    async def x() -> None:
        with repo.trace.prod("load"):
            raise HTTPException(status_code=404)

    app.add_middleware(AlamosMiddleware, experiment=root.sub("http"), expect_client_errors=False)
    url = serve(app)
    assert httpx.get(f"{url}/x", timeout=10).status_code == 404
    wait_span(rec, path="shop.http")
    assert rec.span(name="load").status == "error"


def test_active_requests_gauge(rec: Recorder) -> None:
    root = rec.new("shop")
    seen: list[float | None] = []
    gauge: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(gauge[0].value(http_request_method="POST", url_scheme="https"))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    mw = AlamosMiddleware(app, root.sub("http"))
    gauge.append(root.sub("http").metrics.get("http_server_active_requests"))

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    scope = {"type": "http", "method": "POST", "scheme": "https", "path": "/", "headers": []}
    anyio.run(mw, scope, receive, send)
    assert seen == [1.0]
    assert gauge[0].value(http_request_method="POST", url_scheme="https") == 0.0


def test_metrics_off_and_filtered_out(rec: Recorder, serve: Serve) -> None:
    root = rec.new("shop", level="prod")

    async def hello(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hi"})

    url = serve(AlamosMiddleware(hello, root.sub("off"), metrics=False))
    url2 = serve(AlamosMiddleware(hello, root.sub("debug"), level="debug"))
    assert httpx.get(url, timeout=10).text == httpx.get(url2, timeout=10).text == "hi"
    assert root.sub("off").metrics.get("http_server_request_duration_seconds") is None
    quiet = root.sub("debug").metrics.get("http_server_request_duration_seconds")
    assert quiet is not None and not quiet.enabled


def test_client_request_duration(rec: Recorder, serve: Serve) -> None:
    root = rec.new("shop")
    url = serve(shop(root))
    port = str(httpx.URL(url).port)
    out = root.sub("out")
    with instrument_client(httpx.Client(timeout=10), out) as client:
        client.get(f"{url}/items/1")
        client.get(f"{url}/items/1")
        client.get(f"{url}/items/13")
        with pytest.raises(httpx.ConnectError):
            client.get("http://127.0.0.1:1/")
    counts = {
        labels: s["count"]
        for labels, s in wait_total(out, "http_client_request_duration_seconds", 4).items()
    }
    assert counts == {
        ("GET", "127.0.0.1", port, "200", ""): 2.0,
        ("GET", "127.0.0.1", port, "503", "503"): 1.0,
        ("GET", "127.0.0.1", "1", "", "ConnectError"): 1.0,
    }


def test_lifespan_closes_the_root_and_runs_the_inner_lifespan(rec: Recorder) -> None:
    root = rec.new("shop")
    events: list[str] = []

    @asynccontextmanager
    async def mine(app: Any) -> AsyncIterator[None]:
        events.append(f"startup, closed={root.closed}")
        yield
        events.append(f"shutdown, closed={root.closed}")

    app = FastAPI(lifespan=lifespan(root, inner=mine))
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(f"{message['type']}, closed={root.closed}")

    anyio.run(app, {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert events == ["startup, closed=False", "shutdown, closed=False"]
    assert sent == [
        "lifespan.startup.complete, closed=False",
        "lifespan.shutdown.complete, closed=True",
    ]


def test_the_tree_has_process_and_gc_collectors(rec: Recorder) -> None:
    text = generate_latest(rec.new("on").registry).decode()
    assert "python_gc_objects_collected_total" in text
    assert "process_cpu_seconds_total" in text
    off = generate_latest(rec.new("off", process_metrics=False).registry).decode()
    assert "python_gc" not in off and "process_cpu" not in off
