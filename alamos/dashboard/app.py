"""The dashboard as an ASGI app: :func:`create_app`.

Templates are Jinja2 with autoescaping on (every value from the database is
escaped); the pages' data for charts goes into ``data-`` attributes through
``tojson`` (which escapes ``<``, ``>``, ``&`` and ``'``), and the only
scripts are the static files, as the Content-Security-Policy of
:mod:`alamos.dashboard.security` requires.  A database that is missing,
empty or unreachable, an unknown trace and a bad parameter each get a page
that says what to do, never a stack trace.  The one request that writes is
the trace page's hold form (:mod:`alamos.dashboard.hold`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from alamos.core.errors import RetentionError, TraceQueryError
from alamos.dashboard.analysis import MAX_BUDGET_FRAMES
from alamos.dashboard.db import Database
from alamos.dashboard.pages import Pages
from alamos.dashboard.security import Guard
from alamos.report.query import BudgetMap
from alamos.rules import RuleSet

__all__ = ["create_app"]

HERE = Path(__file__).parent
_log = logging.getLogger("alamos.dashboard")
#: Shown for a missing value (an en dash).
DASH = "\u2013"


def _ms(ns: object) -> str:
    if ns is None:
        return DASH
    value = int(ns) / 1e6  # type: ignore[call-overload]
    if value >= 1000:
        return f"{value / 1000:,.2f} s"
    return f"{value:,.3f} ms" if value < 10 else f"{value:,.1f} ms"


def _when(ns: object) -> str:
    if ns is None:
        return DASH
    moment = datetime.fromtimestamp(int(ns) / 1e9, UTC)  # type: ignore[call-overload]
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _pct(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.1f}%"


def _rate(value: float) -> str:
    return f"{value:,.2f}/s" if value < 100 else f"{value:,.0f}/s"


def _num(value: float | None) -> str:
    """A metric value: whole numbers with thousands separators, others to 6
    significant digits."""
    if value is None:
        return DASH
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.6g}"


def _spark(values: list[int]) -> str:
    """The points of an SVG polyline 100 wide and 20 high."""
    if not values:
        return ""
    top = max(values) or 1
    step = 100 / max(len(values) - 1, 1)
    return " ".join(f"{i * step:.1f},{20 - 18 * v / top:.1f}" for i, v in enumerate(values))


def _url(path: str, *params: dict[str, Any], **more: Any) -> str:
    """``path`` with the query of ``params`` merged in order (empty values dropped)."""
    merged: dict[str, Any] = {}
    for p in params:
        merged.update(p)
    merged.update(more)
    query = urlencode({k: v for k, v in merged.items() if v not in (None, "")})
    return path + (f"?{query}" if query else "")


def _layer_url(path: str, *params: dict[str, Any], **more: Any) -> str:
    return _url("/layer/" + quote(path, safe=""), *params, **more)


def _lifespan(database: Database) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            database.dispose()

    return lifespan


def create_app(
    db: str,
    *,
    token: str | None = None,
    loopback_only: bool = True,
    budgets: BudgetMap | None = None,
    rules: RuleSet | None = None,
    rules_file: str | None = None,
    budget_frames: int = MAX_BUDGET_FRAMES,
    refresh_seconds: int = 10,
) -> Any:
    """The dashboard over the database at ``db`` (a URL).

    ``token``: every request must carry it (see
    :mod:`alamos.dashboard.security`); ``loopback_only``: refuse requests
    whose ``Host`` is not a loopback name (DNS rebinding).  ``budgets``: the
    budget map of the analysis page (``None``: each span name is its own
    budget).  ``rules``: the recording rules whose series the analysis page
    shows (``rules_file``: where they came from, shown with them).
    ``budget_frames``: the frame budgets cover at most this many frames, the
    window's newest (``?frames=all`` on the page: all of them).
    ``refresh_seconds``: the period of the pages' auto-refresh.
    """
    database = Database(db)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ms=_ms, when=_when, pct=_pct, rate=_rate, spark=_spark)
    env.globals.update(url=_url, layer_url=_layer_url, num=_num, refresh_seconds=refresh_seconds)
    templates = Jinja2Templates(env=env)

    def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        return templates.TemplateResponse(request, name, context, status_code=status)

    if budget_frames < 1:
        raise ValueError(f"budget_frames must be at least 1, not {budget_frames}")
    pages = Pages(database, db, render, budgets, rules, rules_file, budget_frames)

    def error_page(request: Request, title: str, message: str, status: int) -> Response:
        context = {"page": "error", "title": title, "message": message, "database": database.shown}
        return render(request, "message.html", context, status=status)

    async def on_query_error(request: Request, exc: Exception) -> Response:
        return error_page(request, "The database cannot be read", str(exc), 503)

    async def on_retention_error(request: Request, exc: Exception) -> Response:
        return error_page(request, "The hold could not be changed", str(exc), 503)

    async def on_bad_value(request: Request, exc: Exception) -> Response:
        return error_page(request, "Bad request", str(exc), 400)

    async def on_not_found(request: Request, exc: Exception) -> Response:
        return error_page(request, "Not found", f"No page at {request.url.path}.", 404)

    async def on_error(request: Request, exc: Exception) -> Response:
        _log.exception("dashboard page %s failed", request.url.path)
        return error_page(
            request,
            "Something went wrong",
            f"{type(exc).__name__} while building this page; the command's output has "
            "the details. Please report it.",
            500,
        )

    routes = [
        Route("/", pages.tree, name="tree"),
        Route("/layer/{path:path}", pages.layer, name="layer"),
        Route("/trace/{trace_id}", pages.trace, name="trace"),
        Route("/trace/{trace_id}/hold", pages.hold, methods=["POST"], name="hold"),
        Route("/search", pages.search, name="search"),
        Route("/analysis", pages.analysis, name="analysis"),
        Route("/sessions", pages.sessions, name="sessions"),
        Route("/session/{session_id}", pages.session, name="session"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            TraceQueryError: on_query_error,
            RetentionError: on_retention_error,
            ValueError: on_bad_value,
            404: on_not_found,
            Exception: on_error,
        },
        lifespan=_lifespan(database),
    )
    return Guard(app, token=token, loopback_only=loopback_only)
