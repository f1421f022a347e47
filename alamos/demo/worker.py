"""A storage process for ``alamos demo --workers N``.

Prints ``PORT <n>`` once its socket is bound, serves the storage layer with
uvicorn (Starlette behind ``AlamosMiddleware``), and on SIGTERM shuts down
gracefully: the app's lifespan (:func:`alamos.asgi.lifespan`) closes the
root, flushing to the shared database, before uvicorn re-raises the signal.
"""

from __future__ import annotations

import argparse

import alamos
from alamos.demo.http import app, bind, server
from alamos.demo.layers import LocalStorage, StorageServer
from alamos.demo.summary import DEMO_STATS_ATTRIBUTES


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="alamos.demo.worker")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--level", default="debug")
    args = parser.parse_args(argv)
    root = alamos.new(
        "demo",
        service=f"demo-storage-{args.index}",
        db=args.db,
        level=args.level,
        console=False,
        stats_attributes=DEMO_STATS_ATTRIBUTES,
    )
    exp = root.sub("storage_server")
    storage = StorageServer(exp, LocalStorage(root.sub("storage")))
    sock = bind()
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    server(app("/page/{key}", storage.handle, exp, close=True), lifespan_on=True).run(
        sockets=[sock]
    )


if __name__ == "__main__":
    main()
