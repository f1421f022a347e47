"""Drive the demo: start the server(s), run concurrent clients, show progress.

Single process (default): the api server (Starlette behind
``AlamosMiddleware``, run by uvicorn in this event loop) with api → cesium →
storage in one experiment tree, and clients on instrumented httpx clients.
With ``workers > 1``: this process runs the clients and the api layer, and
``workers - 1`` storage processes (``python -m alamos.demo.worker``, uvicorn
too) serve the storage layer over loopback HTTP, each with its own root
exporting to the same database.  One request is then one trace across
processes.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

import anyio

import alamos
from alamos.demo.http import app, client, serve
from alamos.demo.layers import Api, Cesium, LocalStorage, RemoteStorage, Storage

__all__ = ["Counters", "run_workload"]


class Counters:
    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0


async def _client(
    exp: alamos.Experiment, port: int, until: float, counters: Counters, seed: int
) -> None:
    rng = random.Random(seed)
    async with client(exp, f"http://127.0.0.1:{port}") as http:
        while time.monotonic() < until:
            key = f"k{rng.randrange(200)}"
            write = rng.random() < 0.3
            method = "PUT" if write else "GET"
            with exp.trace.prod("request") as span:
                span.set_attributes({"method": method, "key": key})
                body = os.urandom(rng.randrange(16, 256)) if write else b""
                response = await http.request(method, f"/kv/{key}", content=body)
                span.set("http.response.status_code", response.status_code)
                if response.status_code >= 500:
                    span.set_status("error", f"server returned {response.status_code}")
                    counters.errors += 1
            counters.requests += 1


def _spawn_storage(index: int, db: str, level: str) -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alamos.demo.worker",
            "--index",
            str(index),
            "--db",
            db,
            "--level",
            level,
        ],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"storage worker {index} failed to start (said {line!r})")
    return proc, int(line.split()[1])


async def run_workload(
    root: alamos.Experiment,
    *,
    seconds: float,
    clients: int,
    workers: int,
    db: str,
    level: str,
    progress: Callable[[float, Counters], None],
) -> Counters:
    """Run the workload for ``seconds``; call ``progress(fraction, counters)``
    about ten times a second."""
    counters = Counters()
    procs: list[subprocess.Popen[bytes]] = []
    storage: Storage
    remote: RemoteStorage | None = None
    try:
        if workers > 1:
            ports = []
            for i in range(1, workers):
                proc, port = _spawn_storage(i, db, level)
                procs.append(proc)
                ports.append(port)
            storage = remote = RemoteStorage(root.sub("storage_client"), ports)
        else:
            storage = LocalStorage(root.sub("storage"))
        api_exp = root.sub("api")
        api = Api(api_exp, Cesium(root.sub("cesium"), storage))
        client_exp = root.sub("client")
        async with AsyncExitStack() as stack:
            tg = await stack.enter_async_context(anyio.create_task_group())
            port = await tg.start(serve, app("/kv/{key}", api.handle, api_exp))
            start = time.monotonic()
            until = start + seconds
            async with anyio.create_task_group() as clients_tg:
                for i in range(clients):
                    clients_tg.start_soon(_client, client_exp, port, until, counters, i)
                while time.monotonic() < until:
                    progress(min(1.0, (time.monotonic() - start) / seconds), counters)
                    await anyio.sleep(0.1)
            progress(1.0, counters)
            tg.cancel_scope.cancel()
        if remote is not None:
            await remote.aclose()
    finally:
        for proc in procs:
            if proc.stdin is None and proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    return counters
