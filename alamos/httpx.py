"""Client-side tracing for httpx: a span per outgoing request, and propagation.

::

    import httpx
    import alamos.httpx

    client = alamos.httpx.instrument_client(httpx.AsyncClient(), root.sub("storage_client"))
    r = await client.get("http://storage:8001/keys/1")   # traced, traceparent sent

Each request sent through an instrumented client opens a prod-level *client
span* named ``"{METHOD} {host}"`` (with ``:port`` when the URL names a
non-default port), a child of the span current at the call, and sends that
span's context in ``traceparent`` / ``tracestate``, so the server's span
(:class:`alamos.asgi.AlamosMiddleware`) becomes its child.  The span ends
when the response is closed: after the body for ordinary calls, and at
``response.close()`` (the end of ``with client.stream(...)``) for
streaming ones, so its duration covers the whole exchange.

This is done with a transport wrapper rather than event hooks: a request
hook is not called back when the connection fails, so a span opened there
could never be ended with the error, while a transport sees every outcome.
:class:`AlamosTransport` and :class:`AsyncAlamosTransport` can also be given
to the client directly (``httpx.Client(transport=AlamosTransport(...))``).

Recorded, on the stable HTTP conventions (docs/http.md): ``http.request.method``,
``url.full`` (scheme, host, port and path; the query string and any
``user:password@`` are left out, as they often carry secrets),
``server.address``, ``server.port``, ``http.response.status_code``, and
``error.type`` on an error.  A 5xx answer or a transport error (connection
refused, timeout...) sets the status to error; as on the server side, a 4xx
is left unset.  Each exchange is also measured in the experiment's
``http.client.request.duration`` histogram (seconds, until the response is
closed, as the span), by method, server address and port, status code and
error type: ``<path>_http_client_request_duration_seconds``.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Generic, TypeVar

import httpx

from alamos.core.level import Level, LevelLike, parse_level
from alamos.core.semconv import (
    CLIENT_DURATION,
    CLIENT_LABELS,
    DURATION_BUCKETS,
    normalize_method,
)
from alamos.experiment.experiment import Experiment
from alamos.trace.propagation import TRACEPARENT, TRACESTATE, inject
from alamos.trace.span import NoopSpan, Span

__all__ = ["AlamosTransport", "AsyncAlamosTransport", "instrument_client"]

ClientT = TypeVar("ClientT", httpx.Client, httpx.AsyncClient)
TransportT = TypeVar("TransportT", bound=httpx.BaseTransport | httpx.AsyncBaseTransport)

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _histogram(experiment: Experiment, level: Level, metrics: bool) -> Any:
    if not metrics:
        return None
    return experiment.metrics.histogram(
        CLIENT_DURATION,
        "Duration of HTTP client requests (OpenTelemetry http.client.request.duration)",
        level=level,
        labelnames=CLIENT_LABELS,
        buckets=DURATION_BUCKETS,
    )


class _Exchange:
    """One request's span and measurement, ended once (response closed or failed)."""

    __slots__ = (
        "address",
        "code",
        "duration",
        "ended",
        "error_type",
        "method",
        "port",
        "span",
        "start",
    )

    def __init__(
        self, span: Span | NoopSpan, duration: Any, method: str, address: str, port: int | None
    ) -> None:
        self.span = span
        self.duration = duration
        self.method = method
        self.address = address
        self.port = port
        self.code = 0
        self.error_type = ""
        self.ended = False
        self.start = time.perf_counter()

    def response(self, response: httpx.Response) -> None:
        code = self.code = response.status_code
        self.span.set("http.response.status_code", code)
        if code >= 500:
            self.error_type = str(code)
            self.span.set("error.type", self.error_type)
            self.span.set_status("error", f"HTTP {code}")

    def fail(self, exc: BaseException) -> None:
        """End the exchange because ``exc`` interrupted it."""
        if isinstance(exc, Exception):
            self.error_type = type(exc).__qualname__
            self.span.set("error.type", self.error_type)
            self.span.error(exc)
        else:  # cancelled (or interrupted): not the server's fault, but not a success
            self.span.set("http.cancelled", True)
            self.error_type = type(exc).__qualname__
        self.end()

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        self.span.end()
        if self.duration is not None:
            self.duration.labels(
                self.method,
                self.address,
                "" if self.port is None else str(self.port),
                str(self.code) if self.code else "",
                self.error_type,
            ).observe(time.perf_counter() - self.start)


def _start(
    experiment: Experiment, level: Level, duration: Any, request: httpx.Request
) -> _Exchange:
    """Open the client span for ``request`` and write its context into the headers.

    The span is started in a *copy* of the current context: starting a span
    makes it current, and a client span must not stay current in the
    caller's context once ``send`` returns (it ends later, when the response
    is closed, and would otherwise become the parent of unrelated work).
    """
    url = request.url
    given = request.method
    method = normalize_method(given)
    host = url.host
    netloc = host if url.port is None else f"{host}:{url.port}"
    port = url.port if url.port is not None else _DEFAULT_PORTS.get(url.scheme)
    span: Span | NoopSpan = experiment.trace.span(level, f"{given} {netloc}")
    contextvars.copy_context().run(span.start)
    if isinstance(span, Span):
        span.set("http.request.method", method)
        if method != given:
            span.set("http.request.method_original", given)
        span.set("url.full", f"{url.scheme}://{netloc}{url.path}")
        span.set("server.address", host)
        if port is not None:
            span.set("server.port", port)
    carrier: dict[str, str] = {}
    # A filtered-out client span still forwards the caller's context, so the
    # server's span joins the trace (as a child of the caller's span).
    inject(carrier, span.context if isinstance(span, Span) else None)
    if carrier:
        # Replace, never add to, headers the caller set: two traceparent
        # fields make the receiver discard both (W3C §3.2.1 / test suite).
        for name in (TRACEPARENT, TRACESTATE):
            if name in request.headers:
                del request.headers[name]
        request.headers.update(carrier)
    return _Exchange(span, duration, method, host, port)


class _SpanStream(httpx.SyncByteStream):
    """The response body, ending the exchange when it is closed."""

    def __init__(self, stream: httpx.SyncByteStream, exchange: _Exchange) -> None:
        self._stream = stream
        self._exchange = exchange

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except BaseException as exc:
            self._exchange.fail(exc)
            raise

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._exchange.end()


class _AsyncSpanStream(httpx.AsyncByteStream):
    """The async response body, ending the exchange when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, exchange: _Exchange) -> None:
        self._stream = stream
        self._exchange = exchange

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except BaseException as exc:
            self._exchange.fail(exc)
            raise

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._exchange.end()


class _Wrapper(Generic[TransportT]):
    """What both transports share: the wrapped transport, the experiment,
    the level of the spans and the duration histogram (None: ``metrics=False``)."""

    def __init__(
        self,
        transport: TransportT,
        experiment: Experiment,
        *,
        level: LevelLike = "prod",
        metrics: bool = True,
    ) -> None:
        self.transport: TransportT = transport
        self.experiment = experiment
        self.level = parse_level(level)
        self._duration = _histogram(experiment, self.level, metrics)


class AlamosTransport(_Wrapper[httpx.BaseTransport], httpx.BaseTransport):
    """Wrap a sync httpx transport: a client span per request, context injected,
    and the duration measured (``metrics=False``: no histogram)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        exchange = _start(self.experiment, self.level, self._duration, request)
        try:
            response = self.transport.handle_request(request)
            exchange.response(response)
        except BaseException as exc:
            exchange.fail(exc)
            raise
        stream = response.stream
        assert isinstance(stream, httpx.SyncByteStream)
        response.stream = _SpanStream(stream, exchange)
        return response

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> AlamosTransport:
        self.transport.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.transport.__exit__(*exc)  # type: ignore[arg-type]


class AsyncAlamosTransport(_Wrapper[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport):
    """Wrap an async httpx transport (asyncio or trio): a client span per request."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        exchange = _start(self.experiment, self.level, self._duration, request)
        try:
            response = await self.transport.handle_async_request(request)
            exchange.response(response)
        except BaseException as exc:
            exchange.fail(exc)
            raise
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        response.stream = _AsyncSpanStream(stream, exchange)
        return response

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def __aenter__(self) -> AsyncAlamosTransport:
        await self.transport.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.transport.__aexit__(*exc)  # type: ignore[arg-type]


def instrument_client(
    client: ClientT, experiment: Experiment, *, level: LevelLike = "prod", metrics: bool = True
) -> ClientT:
    """Trace every request ``client`` sends; returns ``client`` itself.

    Wraps the client's transport and those of its mounts (proxies, or
    ``mounts=``), so requests are traced whichever transport serves them.
    Calling it twice on the same client changes nothing (the first wrap wins).

    httpx offers no public way to replace a built client's transports, so
    this relies on ``Client._transport`` and ``Client._mounts`` (stable since
    httpx 0.18); it raises :class:`TypeError` if they are not there.  To stay
    on public API only, pass ``transport=AlamosTransport(...)`` when building
    the client.
    """
    lvl = parse_level(level)
    transport = getattr(client, "_transport", None)
    mounts = getattr(client, "_mounts", None)
    if transport is None or not isinstance(mounts, dict):
        raise TypeError(
            f"cannot instrument {client!r}: expected an httpx.Client or httpx.AsyncClient "
            "(with _transport and _mounts); build the client with "
            "transport=alamos.httpx.AlamosTransport(...) instead"
        )
    if isinstance(client, httpx.AsyncClient):

        def wrap_async(t: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
            if isinstance(t, AsyncAlamosTransport):
                return t
            return AsyncAlamosTransport(t, experiment, level=lvl, metrics=metrics)

        client._transport = wrap_async(client._transport)
        for pattern, t in list(client._mounts.items()):
            if t is not None:
                client._mounts[pattern] = wrap_async(t)
        return client
    if isinstance(client, httpx.Client):

        def wrap_sync(t: httpx.BaseTransport) -> httpx.BaseTransport:
            if isinstance(t, AlamosTransport):
                return t
            return AlamosTransport(t, experiment, level=lvl, metrics=metrics)

        client._transport = wrap_sync(client._transport)
        for pattern, t2 in list(client._mounts.items()):
            if t2 is not None:
                client._mounts[pattern] = wrap_sync(t2)
        return client
    raise TypeError(f"cannot instrument {client!r}: not an httpx.Client or httpx.AsyncClient")
