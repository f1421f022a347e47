"""One process of the A → B → C chain used by ``test_multiprocess.py``.

Run as ``python chain_service.py SERVICE DB_URL SPOOL_DIR [NEXT_URL]``.  It
builds its own alamos root (``service=SERVICE``, exporting to ``DB_URL``),
serves ``GET /chain/{hop}`` with uvicorn on a free port of 127.0.0.1, prints
``PORT <n>`` once listening, and on SIGTERM/SIGINT stops serving, closes the
root (flushing every record to the database) and prints ``CLOSED``.

Each request opens a ``work`` span (a child of the server span, to show the
span is current in the handler), logs a line, and, if NEXT_URL is given,
calls ``NEXT_URL/chain/{hop + 1}`` with an instrumented httpx client.
"""

from __future__ import annotations

import signal
import socket
import sys

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import alamos
from alamos.asgi import AlamosMiddleware
from alamos.httpx import instrument_client


def main(service: str, db: str, spool: str, next_url: str | None) -> None:
    root = alamos.new(service, db=db, console=False, spool_dir=spool, flush_interval=0.05)
    work = root.sub("work")
    client_exp = root.sub("client")

    async def chain(request: Request) -> Response:
        hop = request.path_params["hop"]
        downstream = None
        with work.trace.prod("work") as span:
            span.set("hop", hop)
            work.log.info("hop {hop} in {service}", hop=hop, service=service)
            if next_url is not None:
                async with instrument_client(httpx.AsyncClient(timeout=20), client_exp) as c:
                    r = await c.get(f"{next_url}/chain/{hop + 1}")
                r.raise_for_status()
                downstream = r.json()
        current = alamos.current_span()
        assert current is not None
        return JSONResponse(
            {"service": service, "trace_id": current.trace_id, "downstream": downstream}
        )

    app = AlamosMiddleware(Starlette(routes=[Route("/chain/{hop:int}", chain)]), root.sub("http"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, http="h11")
    server = uvicorn.Server(config)
    # uvicorn handles SIGTERM/SIGINT while serving, then restores the previous
    # handlers and raises the signal again: with the default handler that
    # would kill the process before the root is flushed.  This one just notes it.
    stops: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stops.append(signum))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    try:
        if not stops:
            server.run(sockets=[sock])  # returns on SIGTERM / SIGINT
    finally:
        sock.close()
        root.close(timeout=30)
    print("CLOSED", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], args[1], args[2], args[3] if len(args) > 3 else None)
