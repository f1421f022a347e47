"""Who may talk to the dashboard, and what its pages may load.

The dashboard shows everything the instrumented programs recorded: span
attributes, log messages and reports can hold request data, paths and
secrets.  So it listens on loopback by default, and

* binding any other address needs ``--allow-remote`` *and* a token that
  every request carries (``Authorization: Bearer <token>``, or the cookie
  set by opening any page once with ``?token=<token>``); without it the
  answer is 401;
* on loopback, the ``Host`` header must name a loopback host too: a web page
  in the user's browser could otherwise reach the dashboard through DNS
  rebinding (a name of the attacker's that resolves to 127.0.0.1);
* a request that can change something (any method but GET, HEAD and
  OPTIONS: the trace page's hold form) must come from the dashboard's own
  pages: its ``Origin`` header (else its ``Referer``) must name the very
  host the request was sent to (``Host``), or the answer is 403.  A form on
  another site open in the same browser would otherwise be able to post it
  (cross-site request forgery); the browser always sends ``Origin`` with a
  POST, and the pages' ``Referrer-Policy: same-origin`` keeps it (with
  ``no-referrer`` a browser sends ``Origin: null``) while still sending no
  address to other sites;
* every response carries a strict Content-Security-Policy (scripts and
  styles only from the dashboard itself, no inline script, no frames, no
  outside connections), so text from the database that slipped past the
  templates' escaping could still not run.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = ["CSP", "SAFE_METHODS", "TOKEN_COOKIE", "Guard", "is_loopback", "same_origin"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
TOKEN_COOKIE = "alamos_dashboard_token"
#: Methods that change nothing: no origin check.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    # same-origin, not no-referrer: with no-referrer the browser sends
    # "Origin: null" with the hold form's POST, which the origin check refuses.
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_of(header: str) -> str:
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def same_origin(headers: dict[str, str]) -> bool:
    """True if the request's ``Origin`` (else its ``Referer``) is an
    http(s) address of the host named by its ``Host`` header.  The scheme is
    not compared: behind a TLS proxy the page is https, the request to the
    dashboard http."""
    host = headers.get("host", "").strip().lower()
    source = headers.get("origin")
    if source is None:
        source = headers.get("referer")
    if not host or not source or source.strip() == "null":
        return False
    try:
        parts = urlsplit(source.strip())
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host


class Guard:
    """ASGI middleware: the token (if any), the Host check (on loopback), the
    origin check of requests that change something, the security headers on
    every response."""

    def __init__(self, app: ASGIApp, token: str | None, loopback_only: bool) -> None:
        self.app = app
        self.token = token
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.loopback_only and not is_loopback(_host_of(headers.get("host", ""))):
            await _plain(send, 403, "Forbidden: this dashboard answers only to a loopback host.")
            return
        if self.token is not None:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            given = query.get("token")
            if given is not None and self._ok(given):
                # Trade the token in the URL for a cookie, and drop it from the URL
                # (it would stay in the history and be shown on screen).
                query.pop("token")
                raw = scope.get("raw_path") or scope["path"].encode("utf-8")
                location = raw + (f"?{urlencode(query)}".encode() if query else b"")
                cookie = f"{TOKEN_COOKIE}={given}; Path=/; HttpOnly; SameSite=Strict"
                await _redirect(send, location, cookie)
                return
            if not self._authorised(headers):
                await _plain(
                    send,
                    401,
                    "Unauthorized: this dashboard needs its token. Open it once with "
                    "?token=<token> (the token the `alamos dashboard` command printed), "
                    "or send 'Authorization: Bearer <token>'.",
                )
                return

        if scope.get("method", "GET") not in SAFE_METHODS and not same_origin(headers):
            await _plain(
                send,
                403,
                "Forbidden: a request that changes something must come from the dashboard's "
                "own pages (its Origin or Referer header must name this host). A script "
                f"can send 'Origin: http://{_printable(headers.get('host', ''))}'.",
            )
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _ok(self, given: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given.encode(), self.token.encode())

    def _authorised(self, headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and self._ok(auth[7:].strip()):
            return True
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:
            return False
        held = cookie.get(TOKEN_COOKIE)
        return held is not None and self._ok(held.value)


def _printable(text: str) -> str:
    return "".join(c for c in text[:200] if c.isprintable())


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), *_HEADERS]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="alamos dashboard"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: bytes, cookie: str) -> None:
    headers = [
        (b"location", location),
        (b"set-cookie", cookie.encode("latin-1")),
        *_HEADERS,
    ]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
