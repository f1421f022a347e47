"""A storage process for ``alamos demo --workers N``.

Prints ``PORT <n>`` once listening, serves the storage layer over loopback
HTTP, and on SIGTERM closes its root (flushing to the shared database).
"""

from __future__ import annotations

import argparse
import signal
import sys

import anyio

import alamos
from alamos.demo.http import serve
from alamos.demo.layers import LocalStorage, StorageServer
from alamos.demo.summary import DEMO_STATS_ATTRIBUTES


async def _main(index: int, db: str, level: str) -> None:
    with alamos.new(
        "demo",
        service=f"demo-storage-{index}",
        db=db,
        level=level,
        console=False,
        stats_attributes=DEMO_STATS_ATTRIBUTES,
    ) as root:
        server = StorageServer(root.sub("storage_server"), LocalStorage(root.sub("storage")))

        def ready(port: int) -> None:
            print(f"PORT {port}", flush=True)

        async with anyio.create_task_group() as tg:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                tg.start_soon(lambda: serve(server.handle, ready=ready))
                async for _ in signals:
                    tg.cancel_scope.cancel()
                    break


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="alamos.demo.worker")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--level", default="debug")
    args = parser.parse_args(argv)
    anyio.run(_main, args.index, args.db, args.level)
    sys.exit(0)


if __name__ == "__main__":
    main()
