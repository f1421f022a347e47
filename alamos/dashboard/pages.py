"""The dashboard's pages: each handler reads the request, runs its queries on
one connection and renders its template.

Handlers are plain functions: Starlette runs them in its thread pool, so a
slow query never blocks the event loop (the hold form's handler is async,
to read the body, and runs its write in the thread pool).  Every failure to read the
database is a :class:`~alamos.core.errors.TraceQueryError` and every bad
parameter a :class:`ValueError`; :mod:`alamos.dashboard.app` turns both
into pages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from alamos.core.level import LOG_LEVELS
from alamos.dashboard import analysis, queries, search
from alamos.dashboard import metrics as metric_queries
from alamos.dashboard.db import WINDOWS, Database, Filters, Window, parse_filters, parse_window
from alamos.dashboard.hold import DURATIONS, apply, hold_of, parse_form
from alamos.dashboard.waterfall import build_waterfall
from alamos.report.query import (
    BudgetMap,
    budget_report,
    frames_of,
    load_trace,
    valid_trace_id,
)
from alamos.rules import RuleSet

__all__ = ["Pages"]

#: The frames chart of the analysis page shows at most this many (the newest).
CHART_FRAMES = 2000
#: A trace with more spans than this is cut on the trace page (and says so).
MAX_WATERFALL_SPANS = 5000


@attrs.define
class Pages:
    """The handlers, bound to one database and the app's options."""

    db: Database
    db_url: str
    render: Callable[..., Response]
    """``render(request, template, context, status=200)``"""
    budgets: BudgetMap | None = None
    rules: RuleSet | None = None
    rules_file: str | None = None
    """The ``--rules`` file's name, to show."""
    budget_frames: int = analysis.MAX_BUDGET_FRAMES

    def _common(self, request: Request, page: str) -> dict[str, Any]:
        params = request.query_params
        window = parse_window(params)
        filters = parse_filters(params)
        return {
            "page": page,
            "window": window,
            "windows": list(WINDOWS),
            "filters": filters,
            "keep": {**window.query(), **filters.query()},
            "database": self.db.shown,
        }

    # -- the tree ------------------------------------------------------------

    def tree(self, request: Request) -> Response:
        ctx = self._common(request, "tree")
        window: Window = ctx["window"]
        filters: Filters = ctx["filters"]
        with self.db.connect() as conn:
            rows = queries.tree_rows(conn, window, filters, cache=self.db.sketches)
            options = queries.filter_options(conn)
        if not rows:
            ctx.update(
                title="Nothing recorded yet",
                message=(
                    f"{self.db.shown} holds the alamos tables but no experiment, span or log "
                    "(with these filters). Run your instrumented program, or `alamos demo`, "
                    "and reload."
                ),
            )
            return self.render(request, "message.html", ctx)
        ctx.update(rows=rows, options=options, log_levels=list(LOG_LEVELS))
        return self.render(request, "tree.html", ctx)

    # -- one layer -----------------------------------------------------------

    def layer(self, request: Request) -> Response:
        path = request.path_params["path"]
        ctx = self._common(request, "layer")
        window, filters = ctx["window"], ctx["filters"]
        log_level = (request.query_params.get("log_level") or "").upper()
        if log_level and log_level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {log_level!r}: use {', '.join(LOG_LEVELS)}")
        text = request.query_params.get("q") or ""
        with self.db.connect() as conn:
            if not queries.exists_path(conn, path):
                return self.render(
                    request,
                    "message.html",
                    {
                        **ctx,
                        "title": "Unknown layer",
                        "message": f"No experiment, span or log has the path {path!r}.",
                    },
                    status=404,
                )
            series = queries.layer_series(conn, path, window, filters, cache=self.db.sketches)
            approx = series["latency"].approx  # only over a window read from the statistics
            latency = "Latency (p50/p99 ≈, within 1%)" if approx else "Latency"
            ctx.update(
                path=path,
                approx=approx,
                charts=[
                    series["latency"].to_json(latency, "ms"),
                    series["throughput"].to_json("Throughput", "spans/s"),
                    series["errors"].to_json("Errors", "errors"),
                ],
                slowest=queries.slowest_spans(conn, path, window, filters),
                errors=queries.recent_errors(conn, path, window, filters),
                logs=queries.layer_logs(conn, path, window, filters, log_level, text),
                log_level=log_level,
                log_levels=list(LOG_LEVELS),
                q=text,
                metrics=[m.to_json() for m in metric_queries.metric_charts(conn, path, window)],
                reports=metric_queries.latest_reports(conn, path),
                crumbs=_crumbs(path),
            )
        return self.render(request, "layer.html", ctx)

    # -- one trace -----------------------------------------------------------

    def trace(self, request: Request) -> Response:
        trace_id = request.path_params["trace_id"]
        ctx = self._common(request, "trace")
        if not valid_trace_id(trace_id):
            return self._unknown_trace(request, ctx, trace_id, "is not a trace id")
        with self.db.connect() as conn:  # the same clear errors as every page
            held = hold_of(conn, trace_id)
        found, logs = load_trace(self.db_url, trace_id)
        if not found:
            return self._unknown_trace(request, ctx, trace_id, "is not in this database")
        cut = len(found) > MAX_WATERFALL_SPANS
        waterfall = build_waterfall(found[:MAX_WATERFALL_SPANS], logs)
        ctx.update(
            trace_id=trace_id,
            wf=waterfall,
            cut=cut,
            total=len(found),
            hold=held,
            hold_active=held is not None and held.active(),
            hold_durations=[d for d in DURATIONS if d],
        )
        return self.render(request, "trace.html", ctx)

    async def hold(self, request: Request) -> Response:
        """``POST /trace/<id>/hold``: see :mod:`alamos.dashboard.hold`.  The
        Guard has checked the origin (and the token) before this runs."""
        trace_id = request.path_params["trace_id"]
        if not valid_trace_id(trace_id):
            ctx = self._common(request, "trace")
            return self._unknown_trace(request, ctx, trace_id, "is not a trace id")
        form = parse_form(await request.body())
        await run_in_threadpool(apply, self.db_url, trace_id, form)
        return RedirectResponse(f"/trace/{trace_id}", status_code=303)

    def _unknown_trace(
        self, request: Request, ctx: dict[str, Any], trace_id: str, why: str
    ) -> Response:
        ctx.update(
            title="Unknown trace",
            message=f"The trace {trace_id!r} {why}. Search for traces instead.",
        )
        return self.render(request, "message.html", ctx, status=404)

    # -- search --------------------------------------------------------------

    def search(self, request: Request) -> Response:
        ctx = self._common(request, "search")
        q = search.parse_search(request.query_params)
        with self.db.connect() as conn:
            rows, more = search.search_traces(conn, q, ctx["window"])
        ctx.update(q=q, rows=rows, more=more, keep={**ctx["keep"], **q.query()})
        return self.render(request, "search.html", ctx)

    # -- analysis ------------------------------------------------------------

    def analysis(self, request: Request) -> Response:
        ctx = self._common(request, "analysis")
        window: Window = ctx["window"]
        params = request.query_params
        path = (params.get("path") or "").strip()
        by = params.get("by") or "name"
        if by not in ("name", "path"):
            raise ValueError(f"unknown grouping {by!r}: use by=name or by=path")
        every = params.get("frames") == "all"
        with self.db.connect() as conn:
            frames = analysis.frame_names(conn, window)
            frame = params.get("frame") or (frames[0] if frames else "")
            limit = None if every else self.budget_frames
            scope = analysis.budget_scope(conn, frame, window, limit) if frame else None
            # The chart's frames from the start of its newest CHART_FRAMES on:
            # the same rows (frames_of reads the frames before its range for
            # the running mean), without computing the running mean of every
            # frame of the window (?frames=all, 8,334 frames of 1 h on
            # scripts/dashboard_bench.py: 60 -> 26 ms).
            chart_scope = (
                analysis.budget_scope(conn, frame, window, CHART_FRAMES) if frame else None
            )
            stats = analysis.statistics(conn, self.db_url, window, path or None, by)
            spikes = analysis.stored_spikes(conn, window)
            rules = None if self.rules is None else analysis.rule_views(conn, self.rules, window)
            paths = analysis.layer_paths(conn)
        report = chart = None
        if frame and scope is not None and chart_scope is not None:
            report = budget_report(
                self.db_url,
                frame,
                self.budgets,
                since_ns=scope.since_ns,
                until_ns=window.end_ns,
                top=5,
            )
            rows = frames_of(
                self.db_url,
                frame,
                since_ns=max(scope.since_ns, chart_scope.since_ns),
                until_ns=window.end_ns,
                limit=CHART_FRAMES,
            )
            chart = {
                "title": f"Frames: {frame}",
                "unit": "ms",
                "x": [r.start_ns / 1e9 for r in rows],
                "series": {"duration ms": [r.duration_ns / 1e6 for r in rows]},
                "points": True,
            }
        ctx.update(
            frames=frames,
            frame=frame,
            scope=scope,
            report=report,
            frames_chart=chart,
            budgets=self.budgets,
            stats=stats,
            by=by,
            path=path,
            paths=paths,
            spikes=spikes,
            rules=rules,
            rules_file=self.rules_file,
            max_spikes=analysis.MAX_SPIKES,
        )
        return self.render(request, "analysis.html", ctx)

    # -- debug sessions ------------------------------------------------------

    def sessions(self, request: Request) -> Response:
        ctx = self._common(request, "sessions")
        with self.db.connect() as conn:
            ctx["sessions"] = search.sessions(conn, ctx["window"])
        return self.render(request, "sessions.html", ctx)

    def session(self, request: Request) -> Response:
        session_id = request.path_params["session_id"]
        ctx = self._common(request, "sessions")
        with self.db.connect() as conn:
            found = search.sessions(conn, ctx["window"], only=session_id)
            if not found:
                ctx.update(
                    title="Unknown debug session",
                    message=f"No record carries the debug session id {session_id!r}.",
                )
                return self.render(request, "message.html", ctx, status=404)
            ctx.update(session=found[0], **search.session_detail(conn, session_id))
        return self.render(request, "session.html", ctx)


def _crumbs(path: str) -> list[tuple[str, str]]:
    parts = path.split(".")
    return [(p, ".".join(parts[: i + 1])) for i, p in enumerate(parts)]
