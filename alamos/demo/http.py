"""The demo's HTTP: what users write, on the real integrations.

The servers are Starlette applications behind
:class:`~alamos.asgi.AlamosMiddleware` (a span per request, continuing the
caller's trace, and the HTTP server metrics), run by uvicorn; the clients
are httpx clients instrumented with :func:`alamos.httpx.instrument_client`
(a client span per request, its context sent in ``traceparent``).  The
storage processes of ``--workers`` close their tree with
:func:`alamos.asgi.lifespan`, the only close that runs after uvicorn's
SIGTERM.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import alamos
from alamos.asgi import AlamosMiddleware, lifespan
from alamos.httpx import instrument_client

__all__ = ["Handler", "app", "bind", "client", "serve"]

#: A request handler of the demo's layers: request → response.
Handler = Callable[[Request], Awaitable[Response]]

START_TIMEOUT = 10.0


def app(
    path: str, handler: Handler, experiment: alamos.Experiment, *, close: bool = False
) -> AlamosMiddleware:
    """A Starlette app answering GET and PUT on ``path`` (a route template)
    with ``handler``, traced and measured on ``experiment``; ``close``: its
    lifespan closes ``experiment``'s tree at shutdown."""
    starlette = Starlette(
        routes=[Route(path, handler, methods=["GET", "PUT"])],
        lifespan=lifespan(experiment.root) if close else None,
    )
    return AlamosMiddleware(starlette, experiment)


def bind() -> socket.socket:
    """A listening socket on a free port of 127.0.0.1 (bound here, so the port
    is known before uvicorn starts and nobody else can take it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def server(asgi: Any, *, lifespan_on: bool = False) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(
            asgi,
            lifespan="on" if lifespan_on else "off",
            log_level="warning",
            access_log=False,
        )
    )


async def serve(asgi: Any, *, task_status: anyio.abc.TaskStatus[int]) -> None:
    """Serve ``asgi`` with uvicorn in this event loop until cancelled;
    ``task_status.started(port)`` once it accepts connections."""
    sock = bind()
    running = server(asgi)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: running.serve(sockets=[sock]))
            with anyio.fail_after(START_TIMEOUT):
                while not running.started:
                    await anyio.sleep(0.01)
            task_status.started(int(sock.getsockname()[1]))
            try:
                await anyio.sleep_forever()
            finally:
                running.should_exit = True
    finally:
        sock.close()


def client(experiment: alamos.Experiment, base_url: str = "") -> httpx.AsyncClient:
    """An async httpx client, instrumented on ``experiment`` (keep-alive
    connections, so the demo measures requests rather than handshakes)."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    return instrument_client(
        httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits), experiment
    )
