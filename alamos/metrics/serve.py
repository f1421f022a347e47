"""``alamos.metrics.serve(root, port)``: expose a tree's metrics over HTTP.

A thin wrapper around :func:`prometheus_client.start_http_server` bound to the
tree's own registry (``root.registry``), never the process-global one::

    server = alamos.metrics.serve(root, port=9464)   # GET /metrics
    ...
    server.close()          # or let root.close() do it

``port=0`` picks a free port (read it back from ``server.port``).  The server
runs in a daemon thread and is shut down when the tree closes.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple, Protocol

from prometheus_client import CollectorRegistry, start_http_server

from alamos.metrics.factory import Metrics, NoopMetrics

__all__ = ["MetricsServer", "serve"]


class MetricsServer(NamedTuple):
    """What :func:`serve` returns: prometheus_client's ``(server, thread)``
    pair (it unpacks like one), with the bound port and a ``close()``."""

    server: Any
    """The :class:`wsgiref.simple_server.WSGIServer`."""
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def url(self) -> str:
        host = self.server.server_address[0]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()
        self.thread.join(5.0)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HasMetrics(Protocol):
    """What :func:`serve` needs of an experiment: its registry and metrics."""

    @property
    def registry(self) -> CollectorRegistry: ...

    @property
    def metrics(self) -> Metrics | NoopMetrics: ...


def serve(root: HasMetrics, port: int, addr: str = "127.0.0.1") -> MetricsServer:
    """Serve the metrics of ``root``'s whole tree at ``http://addr:port/metrics``
    (every path answers with the exposition text, as in prometheus_client).

    Only enabled metrics are exposed.  Raises :class:`OSError` if the port is
    taken.  The server stops when the tree closes, or with ``close()``.
    """
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ValueError(f"invalid port {port!r}: use an int in [0, 65535] (0 picks a free port)")
    server, thread = start_http_server(port, addr=addr, registry=root.registry)
    running = MetricsServer(server, thread)
    on_close = root.metrics._on_close
    if on_close is not None:
        on_close(running.close)  # a closed tree: the caller closes it
    return running
