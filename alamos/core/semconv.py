"""OpenTelemetry's stable HTTP semantic conventions, as the integrations use them.

The names of span attributes and metrics, the Prometheus label names they
map to (a Prometheus label cannot hold a dot: ``http.route`` →
``http_route``), the request-duration buckets, and the two rules shared by
the server (:mod:`alamos.asgi`) and the client (:mod:`alamos.httpx`) side:
which methods are known, and which exceptions are a client's mistake.
docs/http.md has the whole mapping.
"""

from __future__ import annotations

__all__ = [
    "CLIENT_DURATION",
    "CLIENT_LABELS",
    "DURATION_BUCKETS",
    "KNOWN_METHODS",
    "NO_ROUTE",
    "OTHER_METHOD",
    "SERVER_ACTIVE",
    "SERVER_ACTIVE_LABELS",
    "SERVER_DURATION",
    "SERVER_LABELS",
    "is_client_error",
    "normalize_method",
]

#: ``http.request.method`` values kept as they are (RFC 9110 and PATCH, RFC 5789).
KNOWN_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
)
#: What any other method becomes (the original is kept in
#: ``http.request.method_original``): a label cannot take every string a
#: client sends.
OTHER_METHOD = "_OTHER"

#: The conventions' advisory buckets for ``http.*.request.duration``, in seconds.
DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)

#: ``http.server.request.duration`` (a histogram in seconds), as an alamos
#: metric name: exported as ``<path>_http_server_request_duration_seconds``.
SERVER_DURATION = "http_server_request_duration_seconds"
#: ``http.server.active_requests`` (an up-down counter): a gauge.
SERVER_ACTIVE = "http_server_active_requests"
#: ``http.client.request.duration``.
CLIENT_DURATION = "http_client_request_duration_seconds"

#: Labels of the server's duration: method, route *template*, status code,
#: error type.  A request that matched no route has :data:`NO_ROUTE`, so a
#: scanner's random URLs make one series, not one each.
SERVER_LABELS = ("http_request_method", "http_route", "http_response_status_code", "error_type")
#: Labels of the active-requests gauge (the status is not known yet).
SERVER_ACTIVE_LABELS = ("http_request_method", "url_scheme")
#: Labels of the client's duration: the server is the peer, bounded by your code.
CLIENT_LABELS = (
    "http_request_method",
    "server_address",
    "server_port",
    "http_response_status_code",
    "error_type",
)

#: The ``http_route`` (and empty labels) of a request without one: empty,
#: which Prometheus treats as the label being absent, as the conventions do.
NO_ROUTE = ""


def normalize_method(method: str) -> str:
    """``method`` if it is a known HTTP method, else :data:`OTHER_METHOD`."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


def is_client_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an ``HTTPException`` (any class of that name in its
    MRO: Starlette's, FastAPI's, or your own) with a 4xx ``status_code``:
    the client's mistake, expected by a server, not an error of it."""
    code = getattr(exc, "status_code", None)
    if type(code) is not int or not 400 <= code < 500:
        return False
    return any(cls.__name__ == "HTTPException" for cls in type(exc).__mro__)
