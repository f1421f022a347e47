"""Server-side tracing for any ASGI 3 application: :class:`AlamosMiddleware`.

::

    from starlette.applications import Starlette
    import alamos
    from alamos.asgi import AlamosMiddleware

    root = alamos.new("api", db="postgresql://...")
    app = AlamosMiddleware(Starlette(routes=...), root.sub("http"))

Each HTTP request becomes one span on the given experiment, continuing the
caller's trace when the request carries a valid W3C ``traceparent`` and
starting a fresh trace otherwise.  The middleware is pure ASGI (no framework
import), so the ``asgi`` extra installs nothing.

Span names are ``"{METHOD} {route}"``.  The route is the *template* the
framework matched (``/items/{id}``) when the framework leaves it in the
scope, as Starlette and FastAPI do in ``scope["route"]`` once routing is
done; it is therefore read when the response is over, not when the request
arrives.  Without a template (another framework, or a 404 that matched no
route) the raw path is used instead.  That is the cardinality trade-off: a
template groups every ``/items/1``, ``/items/2`` ... under one name, which is
what dashboards and ``GROUP BY name`` want, while raw paths make one name
per distinct URL (and a scanner probing random URLs makes many).  The raw
path is always in the ``http.target`` attribute, so nothing is lost either
way.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from alamos.core.context import CURRENT
from alamos.core.level import LevelLike, parse_level
from alamos.experiment.experiment import Experiment
from alamos.trace.propagation import extract
from alamos.trace.span import NoopSpan, Span

__all__ = ["AlamosMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Longest path (or route) put in a span *name*; the full target is kept,
#: within the attribute limits, in ``http.target``.  A name is a grouping
#: key, and a 64 KiB URL would make a useless one.
MAX_NAME_PATH = 200

#: Set while a request is inside an :class:`AlamosMiddleware`, so that a
#: second middleware nested in the same request (a mounted sub-application
#: with its own experiment) makes a child span instead of a second server span.
_IN_REQUEST: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "alamos_asgi_in_request", default=False
)


class AlamosMiddleware:
    """Trace every HTTP request of ``app`` as a span on ``experiment``.

    * The span's parent is the context in the request's ``traceparent`` /
      ``tracestate`` headers (:func:`alamos.extract`).  A missing, malformed
      or hostile header starts a fresh trace: tracing headers come from
      outside and must never fail, nor be able to hijack, a request.  Any
      span that happens to be current where the server runs is ignored too,
      so that a request is always the root of its own trace or the child of
      its caller, never of the server's start-up code.
    * The span is current while the application runs, so spans opened by the
      handler (on any experiment) are its children.
    * Attributes: ``http.method``, ``http.target`` (raw path and query
      string), ``http.route`` (when known) and ``http.status_code``.
    * Status: error on a 5xx response, or when the application raises (the
      exception is recorded and re-raised).  4xx answers are the client's
      mistake, not the server's, and leave the status unset.

    ``websocket`` and ``lifespan`` scopes are passed through untouched.
    """

    def __init__(self, app: ASGIApp, experiment: Experiment, *, level: LevelLike = "prod") -> None:
        self.app = app
        self.experiment = experiment
        self.level = parse_level(level)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        nested = _IN_REQUEST.get()
        parent = None if nested else extract(scope.get("headers") or ())
        method = _text(scope.get("method")) or "HTTP"
        span: Span | NoopSpan = self.experiment.trace.span(
            self.level, _name(method, _text(scope.get("path")) or "/"), parent=parent
        )
        status: list[int] = []

        async def send_wrapper(message: Message) -> None:
            if message.get("type") == "http.response.start" and not status:
                code = message.get("status")
                if isinstance(code, int):
                    status.append(code)
                    span.set("http.status_code", code)
                    if code >= 500:
                        span.set_status("error", f"HTTP {code}")
            await send(message)

        # With no usable incoming context the span must be a root: clear any
        # span current in the server's context for the time of the request.
        clear = None if nested or parent is not None else CURRENT.set(None)
        # Only a recording span can parent a nested middleware's span; under a
        # filtered-out one, the nested middleware reads the headers itself.
        in_request = _IN_REQUEST.set(isinstance(span, Span))
        try:
            with span:
                span.set("http.method", method)
                span.set("http.target", _target(scope))
                try:
                    await self.app(scope, receive, send_wrapper)
                finally:
                    route = _route_template(scope)
                    if route is not None:
                        span.set("http.route", route)
                    if isinstance(span, Span):
                        span.name = _name(method, route or _text(scope.get("path")) or "/")
        finally:
            with contextlib.suppress(ValueError):
                _IN_REQUEST.reset(in_request)
            if clear is not None:
                with contextlib.suppress(ValueError):
                    CURRENT.reset(clear)


def _text(value: object) -> str | None:
    """``value`` if it is a string (ASGI says it is; a buggy server may differ)."""
    return value if isinstance(value, str) else None


def _name(method: str, path: str) -> str:
    if len(path) > MAX_NAME_PATH:
        path = path[:MAX_NAME_PATH] + "…"
    return f"{method[:32]} {path}"


def _target(scope: Scope) -> str:
    """The request target as received: raw (still %-encoded) path and query."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else _text(scope.get("path")) or "/"
    query = scope.get("query_string")
    if isinstance(query, bytes) and query:
        return f"{path}?{query.decode('latin-1')}"
    return path


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
