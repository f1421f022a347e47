"""A deliberately tiny HTTP/1.1 over anyio streams, for the demo.

It exists to show trace propagation over a real socket with nothing but
``alamos.inject`` / ``alamos.extract`` on a plain ``dict`` of headers: the
same two calls work for any transport (message queues, raw streams).  It
supports keep-alive, ``Content-Length`` bodies and nothing else, and bounds
every read so a hostile peer cannot make it allocate without limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

__all__ = ["HttpClient", "Request", "Response", "serve"]

MAX_HEAD = 16 * 1024
MAX_BODY = 1024 * 1024


class Request:
    __slots__ = ("body", "headers", "method", "target")

    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
        self.status = status
        self.body = body
        self.headers = headers or {}


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


async def _read_message(buf: BufferedByteReceiveStream) -> tuple[str, dict[str, str], bytes]:
    head = await buf.receive_until(b"\r\n\r\n", MAX_HEAD)
    first, headers = _parse_head(head)
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        length = -1
    if not 0 <= length <= MAX_BODY:
        raise ValueError("bad content-length")
    body = await buf.receive_exactly(length) if length else b""
    return first, headers, body


def _encode(first: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [first, *(f"{k}: {v}" for k, v in headers.items()), f"content-length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


Handler = Callable[[Request], Awaitable[Response]]


async def serve(handler: Handler, *, port: int = 0, ready: Callable[[int], None]) -> None:
    """Serve ``handler`` on 127.0.0.1 until cancelled; ``ready(port)`` is
    called once listening."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)

    async def connection(stream: SocketStream) -> None:
        buf = BufferedByteReceiveStream(stream)
        async with stream:
            while True:
                try:
                    first, headers, body = await _read_message(buf)
                    method, target, _ = first.split(" ", 2)
                except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                    return
                except (ValueError, anyio.DelimiterNotFound):
                    await stream.send(_encode("HTTP/1.1 400 Bad Request", {}, b""))
                    return
                response = await handler(Request(method, target, headers, body))
                reason = _REASONS.get(response.status, "Unknown")
                try:
                    await stream.send(
                        _encode(
                            f"HTTP/1.1 {response.status} {reason}", response.headers, response.body
                        )
                    )
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return

    port_ = listener.extra(anyio.abc.SocketAttribute.local_port)
    ready(port_)
    await listener.serve(connection)


class HttpClient:
    """One keep-alive connection to a demo server."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._stream: SocketStream | None = None
        self._buf: BufferedByteReceiveStream | None = None

    async def request(
        self, method: str, target: str, headers: dict[str, str], body: bytes = b""
    ) -> Response:
        if self._stream is None:
            self._stream = await anyio.connect_tcp("127.0.0.1", self.port)
            self._buf = BufferedByteReceiveStream(self._stream)
        assert self._buf is not None
        await self._stream.send(_encode(f"{method} {target} HTTP/1.1", headers, body))
        first, rheaders, rbody = await _read_message(self._buf)
        return Response(int(first.split(" ", 2)[1]), rbody, rheaders)

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None
