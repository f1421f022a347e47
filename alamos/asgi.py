"""Server-side tracing and metrics for any ASGI 3 application.

::

    from fastapi import FastAPI
    import alamos
    from alamos.asgi import AlamosMiddleware, lifespan

    root = alamos.new("api", db="postgresql://...")
    app = FastAPI(lifespan=lifespan(root))          # closes the root at shutdown
    app.add_middleware(AlamosMiddleware, experiment=root.sub("http"))
    app.mount("/metrics", alamos.metrics.asgi_app(root))

Each HTTP request becomes one span on the given experiment, continuing the
caller's trace when the request carries a valid W3C ``traceparent`` and
starting a fresh trace otherwise, and is counted in OpenTelemetry's HTTP
server metrics.  The middleware is pure ASGI (no framework import), so the
``asgi`` extra installs nothing.  Attribute and metric names follow the
stable HTTP semantic conventions (:mod:`alamos.core.semconv`; the whole
mapping is in docs/http.md).

Span names are ``"{METHOD} {route}"``.  The route is the *template* the
framework matched (``/items/{id}``) when the framework leaves it in the
scope, as Starlette and FastAPI do in ``scope["route"]`` once routing is
done; it is therefore read when the response is over, not when the request
arrives.  Without a template (another framework, or a 404 that matched no
route) the span is named ``"{METHOD}"`` alone, as the conventions say, and the
metrics' ``http_route`` label is empty: span names are grouped on (the
statistics, recording rules and frame budgets group by name), so they must
stay few, like label values.  The raw path is always in ``url.path``.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import anyio.to_thread

from alamos.core.context import CURRENT, EXPECTED
from alamos.core.level import LevelLike, parse_level
from alamos.core.semconv import (
    DURATION_BUCKETS,
    NO_ROUTE,
    OTHER_METHOD,
    SERVER_ACTIVE,
    SERVER_ACTIVE_LABELS,
    SERVER_DURATION,
    SERVER_LABELS,
    is_client_error,
    normalize_method,
)
from alamos.experiment.experiment import Experiment
from alamos.metrics.exposition import multiprocess_dir
from alamos.trace.propagation import extract
from alamos.trace.span import NoopSpan, Span

__all__ = ["AlamosMiddleware", "lifespan"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Lifespan = Callable[[Any], contextlib.AbstractAsyncContextManager[Any]]

#: Longest path (or route) put in a span *name*; the full path is kept,
#: within the attribute limits, in ``url.path``.  A name is a grouping
#: key, and a 64 KiB URL would make a useless one.
MAX_NAME_PATH = 200

#: Set while a request is inside an :class:`AlamosMiddleware`, so that a
#: second middleware nested in the same request (a mounted sub-application
#: with its own experiment) makes a child span instead of a second server span.
_IN_REQUEST: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "alamos_asgi_in_request", default=False
)


class AlamosMiddleware:
    """Trace and measure every HTTP request of ``app`` on ``experiment``.

    * The span's parent is the context in the request's ``traceparent`` /
      ``tracestate`` headers (:func:`alamos.extract`).  A missing, malformed
      or hostile header starts a fresh trace: tracing headers come from
      outside and must never fail, nor be able to hijack, a request.  Any
      span that happens to be current where the server runs is ignored too,
      so that a request is always the root of its own trace or the child of
      its caller, never of the server's start-up code.
    * The span is current while the application runs, so spans opened by the
      handler (on any experiment) are its children.
    * Attributes (stable HTTP conventions): ``http.request.method``,
      ``url.path``, ``url.query``, ``url.scheme``, ``http.route`` (when
      known), ``http.response.status_code``, ``server.address``,
      ``server.port``, ``client.address``, ``user_agent.original``,
      ``network.protocol.version``, and ``error.type`` on an error.
    * Status: error on a 5xx response, or when the application raises (the
      exception is recorded and re-raised; the server then answers 500,
      which is recorded as the status code even when the 500 is sent from
      outside the middleware, as Starlette's ``ServerErrorMiddleware`` does).
      4xx answers are the client's mistake, not the server's, and leave the
      status unset.
    * ``expect_client_errors`` (default True): while the request runs, an
      ``HTTPException`` with a 4xx status leaving any span is *expected*:
      recorded as an event, not an error (:data:`alamos.core.context.EXPECTED`).
    * ``metrics`` (default True): ``http.server.request.duration`` (histogram,
      seconds) and ``http.server.active_requests`` (gauge) in ``experiment``,
      at the middleware's ``level``.

    ``websocket`` and ``lifespan`` scopes are passed through untouched.
    """

    def __init__(
        self,
        app: ASGIApp,
        experiment: Experiment,
        *,
        level: LevelLike = "prod",
        metrics: bool = True,
        expect_client_errors: bool = True,
    ) -> None:
        self.app = app
        self.experiment = experiment
        self.level = parse_level(level)
        self.expect_client_errors = expect_client_errors
        self._duration: Any = None
        self._active: Any = None
        if metrics:
            self._duration = experiment.metrics.histogram(
                SERVER_DURATION,
                "Duration of HTTP server requests (OpenTelemetry http.server.request.duration)",
                level=self.level,
                labelnames=SERVER_LABELS,
                buckets=DURATION_BUCKETS,
            )
            self._active = experiment.metrics.gauge(
                SERVER_ACTIVE,
                "HTTP server requests in progress (OpenTelemetry http.server.active_requests)",
                level=self.level,
                labelnames=SERVER_ACTIVE_LABELS,
                multiprocess_mode="livesum",
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        nested = _IN_REQUEST.get()
        parent = None if nested else extract(scope.get("headers") or ())
        given = _text(scope.get("method")) or "HTTP"
        method = normalize_method(given)
        shown = "HTTP" if method == OTHER_METHOD else method
        scheme = _text(scope.get("scheme")) or "http"
        span: Span | NoopSpan = self.experiment.trace.span(
            self.level, _name(shown, _text(scope.get("path")) or "/"), parent=parent
        )
        status: list[int] = []

        async def send_wrapper(message: Message) -> None:
            if message.get("type") == "http.response.start" and not status:
                code = message.get("status")
                if isinstance(code, int):
                    status.append(code)
                    span.set("http.response.status_code", code)
                    if code >= 500:
                        span.set("error.type", str(code))
                        if span.status != "error":  # keep an error the app recorded
                            span.set_status("error", f"HTTP {code}")
            await send(message)

        active = self._active
        if active is not None:
            active = active.labels(method, scheme)
            active.inc()
        error_type = ""
        route: str | None = None
        # With no usable incoming context the span must be a root: clear any
        # span current in the server's context for the time of the request.
        clear = None if nested or parent is not None else CURRENT.set(None)
        # Only a recording span can parent a nested middleware's span; under a
        # filtered-out one, the nested middleware reads the headers itself.
        in_request = _IN_REQUEST.set(isinstance(span, Span))
        try:
            with span:
                if isinstance(span, Span):
                    _request_attributes(span, scope, given, method, scheme)
                expect = EXPECTED.set(is_client_error) if self.expect_client_errors else None
                try:
                    await self.app(scope, receive, send_wrapper)
                except Exception as exc:
                    error_type = type(exc).__qualname__
                    span.set("error.type", error_type)
                    if not status:
                        # The server (or Starlette's ServerErrorMiddleware,
                        # outside us) answers 500 for it.
                        status.append(500)
                        span.set("http.response.status_code", 500)
                    raise
                finally:
                    if expect is not None:
                        with contextlib.suppress(ValueError):
                            EXPECTED.reset(expect)
                    route = _route_template(scope)
                    if route is not None:
                        span.set("http.route", route)
                    if isinstance(span, Span):
                        span.name = _name(shown, route)
        finally:
            with contextlib.suppress(ValueError):
                _IN_REQUEST.reset(in_request)
            if clear is not None:
                with contextlib.suppress(ValueError):
                    CURRENT.reset(clear)
            if active is not None:
                active.dec()
            if self._duration is not None:
                code = status[0] if status else 0
                if not error_type and code >= 500:
                    error_type = str(code)
                self._duration.labels(
                    method, route or NO_ROUTE, str(code) if code else "", error_type
                ).observe(time.perf_counter() - start)


def lifespan(root: Experiment, inner: Lifespan | None = None) -> Lifespan:
    """A Starlette / FastAPI ``lifespan=`` that closes ``root``'s tree when
    the server shuts down (after the last request, before the process exits),
    so that nothing recorded is lost::

        app = FastAPI(lifespan=alamos.asgi.lifespan(root))
        app = FastAPI(lifespan=alamos.asgi.lifespan(root, inner=my_lifespan))

    ``inner`` is your own lifespan, run inside (its shutdown code runs
    before the tree closes, so it may still record).  Closing runs in a
    worker thread (it waits for the database).  In prometheus_client's
    multiprocess mode, the process is then marked dead, so its share of
    ``livesum`` gauges (active requests) leaves the sum.

    This matters under uvicorn: after a graceful shutdown on SIGTERM or
    SIGINT, uvicorn raises the signal again, which kills the process before
    ``atexit`` hooks (alamos' last-resort close) run.
    """

    @contextlib.asynccontextmanager
    async def run(app: Any) -> AsyncIterator[Any]:
        try:
            if inner is None:
                yield None
            else:
                async with inner(app) as state:
                    yield state
        finally:
            await anyio.to_thread.run_sync(root.close)
            path = multiprocess_dir()
            if path is not None:
                from prometheus_client.multiprocess import mark_process_dead

                mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]

    return run


def _request_attributes(span: Span, scope: Scope, given: str, method: str, scheme: str) -> None:
    """The request's attributes (stable HTTP conventions), on a recording span."""
    span.set("http.request.method", method)
    if method != given:
        span.set("http.request.method_original", given)
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else _text(scope.get("path")) or "/"
    span.set("url.path", path)
    query = scope.get("query_string")
    if isinstance(query, bytes) and query:
        span.set("url.query", query.decode("latin-1"))
    span.set("url.scheme", scheme)
    host = agent = None
    headers = scope.get("headers")
    if isinstance(headers, list | tuple):
        for item in headers:
            if not isinstance(item, list | tuple) or len(item) != 2:
                continue
            name, value = item
            if not isinstance(value, bytes):
                continue
            if name == b"host" and host is None:
                host = value.decode("latin-1")
            elif name == b"user-agent" and agent is None:
                agent = value.decode("latin-1")
    address: str | None = None
    port: int | None = None
    if host:
        address, port = _split_host(host)
        if port is None and address is not None:
            port = 443 if scheme == "https" else 80
    else:
        server = scope.get("server")
        if isinstance(server, list | tuple) and len(server) == 2 and isinstance(server[0], str):
            address = server[0]
            port = server[1] if type(server[1]) is int else None
    if address:
        span.set("server.address", address)
    if port is not None:
        span.set("server.port", port)
    client = scope.get("client")
    if isinstance(client, list | tuple) and client and isinstance(client[0], str):
        span.set("client.address", client[0])
    if agent is not None:
        span.set("user_agent.original", agent)
    version = _text(scope.get("http_version"))
    if version:
        span.set("network.protocol.version", version)


def _split_host(host: str) -> tuple[str | None, int | None]:
    """``("example.com", 8080)`` of a ``Host`` header (``[::1]:80`` too)."""
    host = host.strip()
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return None, None
        address, rest = host[1:end], host[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    else:
        address, _, port = host.partition(":")
    if not port:
        return address or None, None
    if not port.isdigit() or len(port) > 5:
        return address or None, None
    return address or None, int(port)


def _text(value: object) -> str | None:
    """``value`` if it is a string (ASGI says it is; a buggy server may differ)."""
    return value if isinstance(value, str) else None


def _name(method: str, route: str | None) -> str:
    if route is None:
        return method[:32]
    if len(route) > MAX_NAME_PATH:
        route = route[:MAX_NAME_PATH] + "…"
    return f"{method[:32]} {route}"


def _route_template(scope: Scope) -> str | None:
    """The route template the framework matched, or ``None``.

    Starlette (and FastAPI) leave the matched route object in
    ``scope["route"]``; its ``path_format`` is the template without
    converters (``/items/{id}`` for ``/items/{id:int}``).  Under a ``Mount``
    the route's template is relative to the mount, whose matched prefix
    Starlette appended to ``root_path``: that prefix is put back in front.
    When the last route matched is itself a ``Mount`` (a mounted app that
    does no routing of its own, e.g. static files), its template already
    starts with its own prefix, so that part of ``root_path`` is not added
    twice.  Mount prefixes with parameters appear as matched, not as
    templates (Starlette keeps no template for them).
    """
    route = scope.get("route")
    if route is None:
        return None
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str) or not template:
        return None
    root = _text(scope.get("root_path")) or ""
    app_root = _text(scope.get("app_root_path"))
    if app_root is None:
        app_root = root
    prefix = root[len(app_root) :] if root.startswith(app_root) else ""
    own = getattr(route, "path", None)
    if prefix and hasattr(route, "routes") and isinstance(own, str) and prefix.endswith(own):
        prefix = prefix[: len(prefix) - len(own)]
    return prefix + template
