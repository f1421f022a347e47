"""The demo's layers: api → cesium → storage, each a sub-experiment.

Latencies are simulated with ``anyio.sleep`` and a few requests fail on
purpose, so the per-layer summary has something to show: spans, p50/p99,
errors and logs by level.
"""

from __future__ import annotations

import random
from typing import Protocol

import anyio

import alamos
from alamos.demo.http import HttpClient, Request, Response

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

    Keys are spread over the storage processes by hash; each request carries
    the current trace in ``traceparent`` via :func:`alamos.inject`.
    """

    def __init__(self, exp: alamos.Experiment, ports: list[int]) -> None:
        self.exp = exp
        self.ports = ports
        self._free: dict[int, list[HttpClient]] = {p: [] for p in ports}

    async def _call(self, method: str, key: str, body: bytes = b"") -> bytes:
        port = self.ports[hash(key) % len(self.ports)]
        pool = self._free[port]
        client = pool.pop() if pool else HttpClient(port)
        not_found = False
        with self.exp.trace.prod(f"{method} storage") as span:
            span.set("peer.port", port)
            headers: dict[str, str] = {}
            alamos.inject(headers)
            try:
                response = await client.request(method, f"/page/{key}", headers, body)
            except BaseException:
                await client.aclose()
                raise
            pool.append(client)
            span.set("http.status_code", response.status)
            not_found = response.status == 404
            if response.status >= 500:
                raise span.error(OSError(f"storage returned {response.status}"))
        if not_found:
            raise NotFound(key)
        return response.body

    async def read(self, key: str) -> bytes:
        return await self._call("GET", key)

    async def write(self, key: str, value: bytes) -> None:
        await self._call("PUT", key, value)

    async def aclose(self) -> None:
        for pool in self._free.values():
            for client in pool:
                await client.aclose()


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
        parent = alamos.extract(request.headers)
        with (
            self.latency.time(),
            self.exp.trace.prod(f"{request.method} /kv", parent=parent) as span,
        ):
            key = request.target.rsplit("/", 1)[-1]
            span.set_attributes({"http.method": request.method, "key": key})
            try:
                if request.method == "GET":
                    body = await self.cesium.read(key)
                    response = Response(200, body)
                else:
                    await self.cesium.write(key, request.body)
                    response = Response(200)
            except NotFound:
                response = Response(404)
            except OSError as exc:
                self.exp.log.warning("request for {key} failed: {exc}", key=key, exc=str(exc))
                span.error(exc)
                response = Response(500)
            span.set("http.status_code", response.status)
            self.requests.labels(request.method, str(response.status)).inc()
            return response


class StorageServer:
    """A storage process's request handler (``--workers``)."""

    def __init__(self, exp: alamos.Experiment, storage: LocalStorage) -> None:
        self.exp = exp
        self.storage = storage

    async def handle(self, request: Request) -> Response:
        parent = alamos.extract(request.headers)
        key = request.target.rsplit("/", 1)[-1]
        with self.exp.trace.prod(f"{request.method} /page", parent=parent) as span:
            span.set("key", key)
            try:
                if request.method == "GET":
                    return Response(200, await self.storage.read(key))
                await self.storage.write(key, request.body)
                return Response(200)
            except NotFound:
                return Response(404)
            except OSError as exc:
                span.error(exc)
                return Response(500)
