"""The test service the W3C Trace Context conformance suite drives, built on alamos.

The official suite (``w3c/trace-context``, ``test/test.py``) does not call a
library: it sends HTTP requests to a *service* and looks at the requests that
service makes next.  Its protocol (``test/README.md`` there):

* the harness POSTs to the service a JSON list of actions, each
  ``{"url": ..., "arguments": [...]}``, with the ``traceparent`` /
  ``tracestate`` header fields of the case under test;
* for each action, in order, the service POSTs ``arguments`` (as JSON) to
  ``url``, propagating the trace context of the request it is serving;
* the harness reads the ``traceparent`` / ``tracestate`` of those callbacks.

Here the incoming side is :class:`alamos.asgi.AlamosMiddleware` (which calls
:func:`alamos.extract`) and the outgoing side an httpx client instrumented
with :func:`alamos.httpx.instrument_client` (which opens one client span per
callback and calls :func:`alamos.inject`), i.e. exactly the path a real
alamos server takes.  One client span per callback is also what the suite's
``test_multiple_requests_*`` expect: a distinct parent id on each callback.

Run it for the official suite (which is not vendored here) with::

    python -m tests.integrations.w3c_service 5000     # serves POST /test
    STRICT_LEVEL=2 python test.py http://127.0.0.1:5000/test

``tests/integrations/test_w3c_harness.py`` serves :func:`build_app` on
uvicorn and replays the suite's cases against it in CI.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import alamos
from alamos.asgi import AlamosMiddleware
from alamos.httpx import instrument_client

#: Callback hosts the service will POST to.  It is a test service that fetches
#: URLs named in a request body: it must never be turned against another host.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

#: Per-callback timeout (the suite waits 5 s for the whole case by default).
CALLBACK_TIMEOUT = 4.0


def _actions(body: Any) -> list[tuple[str, Any]] | None:
    """The (url, arguments) pairs of a harness request body, or ``None`` if malformed."""
    if not isinstance(body, list):
        return None
    actions: list[tuple[str, Any]] = []
    for action in body:
        if not isinstance(action, dict) or not isinstance(action.get("url"), str):
            return None
        url = httpx.URL(action["url"])
        if url.scheme != "http" or url.host not in LOOPBACK_HOSTS:
            return None
        actions.append((action["url"], action.get("arguments") or []))
    return actions


def build_app(root: alamos.Experiment) -> AlamosMiddleware:
    """The service as an ASGI app: ``POST /test`` on ``root.sub("http")``.

    Server spans go to ``<root>.http``, client spans to ``<root>.client``.
    The response is ``{"callbacks": [status, ...]}``, or 400 for a body that
    is not a list of actions on loopback URLs, or 502 if a callback failed.
    """
    client_exp = root.sub("client")

    async def test(request: Request) -> Response:
        try:
            actions = _actions(await request.json())
        except ValueError:
            actions = None
        if actions is None:
            return JSONResponse({"error": "expected [{url, arguments}] on loopback"}, 400)
        statuses: list[int] = []
        # Callbacks are plain http on loopback (checked by _actions), so no
        # TLS context is needed: building one loads the CA bundle, 0.3 s a
        # request here.  trust_env=False: no proxy from the environment.
        client = httpx.AsyncClient(timeout=CALLBACK_TIMEOUT, trust_env=False, verify=False)
        async with instrument_client(client, client_exp) as c:
            for url, arguments in actions:
                try:
                    response = await c.post(url, json=arguments)
                except httpx.HTTPError as exc:
                    return JSONResponse({"error": f"callback {url}: {exc!r}"}, 502)
                statuses.append(response.status_code)
        return JSONResponse({"callbacks": statuses})

    app = Starlette(routes=[Route("/test", test, methods=["POST"])])
    return AlamosMiddleware(app, root.sub("http"))


def main(port: int) -> None:
    """Serve the service on 127.0.0.1:``port`` until interrupted."""
    import uvicorn

    root = alamos.new("w3c", console=False)
    try:
        uvicorn.run(build_app(root), host="127.0.0.1", port=port, log_level="warning")
    finally:
        root.close(timeout=5)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
