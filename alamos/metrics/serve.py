"""``alamos.metrics.serve(root, port)``: expose a tree's metrics over HTTP.

A thin wrapper around :func:`prometheus_client.start_http_server` bound to the
tree's own registry (``root.registry``), never the process-global one::

    server = alamos.metrics.serve(root, port=9464)   # GET /metrics
    ...
    server.close()          # or let root.close() do it

``port=0`` picks a free port (read it back from ``server.port``).  The server
runs in a daemon thread and is shut down when the tree closes.

**Many workers.**  Under ``uvicorn --workers N`` or gunicorn every worker
runs the same start-up code, and only the first can bind the port.  A taken
port therefore does not raise (it would stop the worker, and uvicorn stops
the whole server with it): ``serve()`` logs a warning that says so and
returns a :class:`MetricsServer` whose ``serving`` is False.  The way to
expose a multi-worker server is :func:`alamos.metrics.asgi_app` mounted in
the application, with prometheus_client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``), where a scrape of any worker shows the sum of
all of them (see :mod:`alamos.metrics.exposition`).  In multiprocess mode,
``serve()`` also exposes that sum, so the one worker that got the port
serves everybody's metrics.  ``if_taken="raise"`` raises instead.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Iterator
from typing import Any, Literal, Protocol

from prometheus_client import CollectorRegistry, start_http_server

from alamos.core.errors import MetricsPortInUse
from alamos.metrics.exposition import exposition_registry, multiprocess_dir
from alamos.metrics.factory import Metrics, NoopMetrics

__all__ = ["MetricsServer", "serve"]

log = logging.getLogger("alamos")


class MetricsServer:
    """What :func:`serve` returns: prometheus_client's ``(server, thread)``
    pair (it unpacks like one), with the bound port and a ``close()``.

    ``serving`` is False when the port was taken (another worker has it):
    ``server`` and ``thread`` are then None, ``port`` is the port asked for,
    and ``close()`` does nothing."""

    __slots__ = ("_port", "server", "thread")

    def __init__(self, server: Any, thread: threading.Thread | None, port: int = 0) -> None:
        self.server = server
        """The :class:`wsgiref.simple_server.WSGIServer` (None if not serving)."""
        self.thread = thread
        self._port = port

    def __iter__(self) -> Iterator[Any]:
        return iter((self.server, self.thread))

    @property
    def serving(self) -> bool:
        return self.server is not None

    @property
    def port(self) -> int:
        return self._port if self.server is None else int(self.server.server_port)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.server is None else str(self.server.server_address[0])
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self.server is None or self.thread is None:
            return
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()
        self.thread.join(5.0)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = self.url if self.serving else f"not serving (port {self.port} taken)"
        return f"<MetricsServer {state}>"


class HasMetrics(Protocol):
    """What :func:`serve` needs of an experiment: its registry and metrics."""

    @property
    def registry(self) -> CollectorRegistry: ...

    @property
    def metrics(self) -> Metrics | NoopMetrics: ...


def serve(
    root: HasMetrics,
    port: int,
    addr: str = "127.0.0.1",
    *,
    if_taken: Literal["warn", "raise"] = "warn",
) -> MetricsServer:
    """Serve the metrics of ``root``'s whole tree at ``http://addr:port/metrics``
    (every path answers with the exposition text, as in prometheus_client).

    Only enabled metrics are exposed; in multiprocess mode
    (``PROMETHEUS_MULTIPROC_DIR``), the sum of every process's.  If the port
    is taken, logs a warning explaining why and what to do instead, and
    returns a server that is not ``serving`` (``if_taken="raise"``: raises
    :class:`alamos.MetricsPortInUse`, an :class:`OSError`).  The server stops
    when the tree closes, or with ``close()``.
    """
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ValueError(f"invalid port {port!r}: use an int in [0, 65535] (0 picks a free port)")
    if if_taken not in ("warn", "raise"):
        raise ValueError(f"invalid if_taken {if_taken!r}: use 'warn' or 'raise'")
    registry = exposition_registry(root)
    try:
        server, thread = start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        message = _taken_message(addr, port)
        if if_taken == "raise":
            raise MetricsPortInUse(message) from exc
        log.warning("alamos: %s", message)
        return MetricsServer(None, None, port)
    running = MetricsServer(server, thread)
    on_close = root.metrics._on_close
    if on_close is not None:
        on_close(running.close)  # a closed tree: the caller closes it
    return running


def _taken_message(addr: str, port: int) -> str:
    if multiprocess_dir() is not None:
        return (
            f"metrics port {addr}:{port} is taken, probably by another worker, which serves "
            "the metrics of every worker (multiprocess mode): not serving them here"
        )
    return (
        f"metrics port {addr}:{port} is taken (another process, or another worker of "
        "`uvicorn --workers N` / gunicorn), so this process's metrics are not served. "
        "With several workers, mount alamos.metrics.asgi_app(root) in the application "
        "(app.mount('/metrics', ...)) and set PROMETHEUS_MULTIPROC_DIR to an empty directory "
        "before starting the server, so that any worker's /metrics shows the sum of all of "
        "them; or pick a free port"
    )
