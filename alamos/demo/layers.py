"""The demo's layers: api → cesium → storage, each a sub-experiment.

Latencies are simulated with ``anyio.sleep`` and a few requests fail on
purpose, so the per-layer summary has something to show: spans, p50/p99,
errors and logs by level.
"""

from __future__ import annotations

import random
from typing import Protocol

import anyio
from starlette.requests import Request
from starlette.responses import Response

import alamos
from alamos.demo.http import client

__all__ = ["Api", "Cesium", "LocalStorage", "RemoteStorage", "StorageServer"]


class NotFound(KeyError):
    pass


class Storage(Protocol):
    async def read(self, key: str) -> bytes: ...
    async def write(self, key: str, value: bytes) -> None: ...


class LocalStorage:
    """Pages in memory; the bottom layer (``<root>.storage``)."""

    def __init__(self, exp: alamos.Experiment) -> None:
        self.exp = exp
        self.wal = exp.sub("wal")
        self.pages: dict[str, bytes] = {}
        self.io = exp.metrics.histogram("io_seconds", "Simulated disk time", level="debug")
        self.bytes_written = exp.metrics.counter("bytes_written", "Bytes written to pages")

    async def read(self, key: str) -> bytes:
        with self.exp.trace.debug("read_page") as span:
            span.set("key", key)
            delay = random.expovariate(1 / 0.0004)
            self.io.observe(delay)
            await anyio.sleep(delay)
            value = self.pages.get(key)
            if value is None:
                self.exp.log.debug("page {key} not found", key=key)
                span.set("found", False)
        if value is None:
            raise NotFound(key)
        return value

    async def write(self, key: str, value: bytes) -> None:
        with self.exp.trace.prod("write_page") as span:
            span.set_attributes({"key": key, "bytes": len(value)})
            with self.wal.trace.debug("fsync"):
                delay = random.expovariate(1 / 0.0008)
                self.io.observe(delay)
                await anyio.sleep(delay)
            if random.random() < 0.01:
                self.exp.log.error("disk write failed for {key}", key=key)
                raise span.error(OSError(f"simulated I/O error writing {key}"))
            self.pages[key] = value
            self.bytes_written.inc(len(value))


class RemoteStorage:
    """The storage layer behind HTTP, in other processes (``--workers``).

    Keys are spread over the storage processes by hash; each call is a span
    (``GET storage``) around an instrumented httpx client's request, whose
    client span sends the trace to the storage process in ``traceparent``.
    """

    def __init__(self, exp: alamos.Experiment, ports: list[int]) -> None:
        self.exp = exp
        self.ports = ports
        self.http = client(exp)

    async def _call(self, method: str, key: str, body: bytes = b"") -> bytes:
        port = self.ports[hash(key) % len(self.ports)]
        with self.exp.trace.prod(f"{method} storage") as span:
            span.set("server.port", port)
            response = await self.http.request(
                method, f"http://127.0.0.1:{port}/page/{key}", content=body
            )
            span.set("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                raise span.error(OSError(f"storage returned {response.status_code}"))
        if response.status_code == 404:
            raise NotFound(key)
        return response.content

    async def read(self, key: str) -> bytes:
        return await self._call("GET", key)

    async def write(self, key: str, value: bytes) -> None:
        await self._call("PUT", key, value)

    async def aclose(self) -> None:
        await self.http.aclose()


class Cesium:
    """The middle layer: a small read cache in front of storage."""

    def __init__(self, exp: alamos.Experiment, storage: Storage) -> None:
        self.exp = exp
        self.storage = storage
        self.cache: dict[str, bytes] = {}
        self.hits = exp.metrics.counter("cache_hits", "Reads served from cache", level="debug")
        self.writes = exp.metrics.counter("writes", "Writes accepted")
        self.cached = exp.metrics.gauge("cache_entries", "Entries in the read cache")
        exp.attach("cache", lambda: {"entries": len(self.cache), "limit": 512})

    async def read(self, key: str) -> bytes:
        # A missing key is an answer (404), not a failure: the span records
        # found=false and the NotFound is raised outside it.
        found: bytes | None = None
        with self.exp.trace.prod("read") as span:
            if key in self.cache:
                self.hits.inc()
                span.set("cache", "hit")
                return self.cache[key]
            span.set("cache", "miss")
            try:
                found = await self.storage.read(key)
            except NotFound:
                span.set("found", False)
            else:
                if len(self.cache) < 512:
                    self.cache[key] = found
                    self.cached.set(len(self.cache))
        if found is None:
            raise NotFound(key)
        return found

    async def write(self, key: str, value: bytes) -> None:
        with self.exp.trace.prod("write") as span:
            span.set("bytes", len(value))
            await self.storage.write(key, value)
            self.cache.pop(key, None)
            self.writes.inc()


class Api:
    """The top layer: turns HTTP requests into cesium calls."""

    def __init__(self, exp: alamos.Experiment, cesium: Cesium) -> None:
        self.exp = exp
        self.cesium = cesium
        self.requests = exp.metrics.counter(
            "requests", "Requests handled", labelnames=["method", "status"]
        )
        self.latency = exp.metrics.histogram("request_seconds", "Request latency")

    async def handle(self, request: Request) -> Response:
        """``GET`` / ``PUT /kv/{key}``.  The request's span is the middleware's
        (``GET /kv/{key}`` on this experiment, a child of the client's span)."""
        span = alamos.current_span()
        with self.latency.time():
            key = request.path_params["key"]
            if span is not None:
                span.set("key", key)
            try:
                if request.method == "GET":
                    response = Response(await self.cesium.read(key))
                else:
                    await self.cesium.write(key, await request.body())
                    response = Response()
            except NotFound:
                response = Response(status_code=404)
            except OSError as exc:
                self.exp.log.warning("request for {key} failed: {exc}", key=key, exc=str(exc))
                if span is not None:
                    span.error(exc)
                response = Response(status_code=500)
            self.requests.labels(request.method, str(response.status_code)).inc()
            return response


class StorageServer:
    """A storage process's request handler (``--workers``)."""

    def __init__(self, exp: alamos.Experiment, storage: LocalStorage) -> None:
        self.exp = exp
        self.storage = storage

    async def handle(self, request: Request) -> Response:
        """``GET`` / ``PUT /page/{key}`` (the middleware's span is current)."""
        key = request.path_params["key"]
        try:
            if request.method == "GET":
                return Response(await self.storage.read(key))
            await self.storage.write(key, await request.body())
            return Response()
        except NotFound:
            return Response(status_code=404)
        except OSError as exc:
            span = alamos.current_span()
            if span is not None:
                span.error(exc)
            return Response(status_code=500)
