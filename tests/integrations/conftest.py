"""Fixtures for the integration tests: real uvicorn servers on loopback.

``serve(app)`` runs an ASGI app under uvicorn in a thread, on a free port of
127.0.0.1 (the socket is bound here, port 0, so there is no race for the
port), and returns its base URL; the server is stopped after the test.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn

from alamos.core.records import SpanRecord
from alamos.testing import Recorder

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class ThreadServer:
    """uvicorn serving ``app`` in a background thread."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(
            app, lifespan="off", log_level="critical", access_log=False, http="h11"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(STOP_TIMEOUT)
        self.sock.close()
        assert not self.thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    servers: list[ThreadServer] = []

    def start(app: Any) -> str:
        server = ThreadServer(app)
        servers.append(server)
        server.start()
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def rec(alamos_recorder: Recorder) -> Recorder:
    """The plugin's recorder: its trees are closed after the test, and spans
    left unended fail it."""
    return alamos_recorder


def wait_span(rec: Recorder, timeout: float = 5.0, **filters: Any) -> SpanRecord:
    """The one span matching ``filters``, waiting for it to end.

    A server span ends once the response has been *sent*, so a client can
    hold the response a moment before the server's span is recorded.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = rec.spans(**filters)
        if found or time.monotonic() > deadline:
            return rec.span(**filters)
        time.sleep(0.005)
