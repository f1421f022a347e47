"""Trace search and debug sessions (SQLAlchemy Core: every value bound).

Search finds the traces with at least one span matching *all* the criteria
(path subtree, name, status, minimum duration, one attribute
``key=value``, time window), newest first, one page at a time.  An
attribute is compared as text: ``n=5`` finds ``5`` and ``"5"``.

Debug sessions are not a table: a session is the records that carry its id
(:mod:`alamos.experiment.session`), so its subtree, levels and time span are
read back from them.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
from sqlalchemy import Connection, Text, and_, case, cast, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from alamos.dashboard.db import Window
from alamos.report.sql.reading import in_subtree
from alamos.report.sql.schema import logs, spans

__all__ = [
    "PAGE_SIZE",
    "SearchQuery",
    "SessionRow",
    "TraceRow",
    "parse_search",
    "search_traces",
    "session_detail",
    "sessions",
    "status_is",
]

PAGE_SIZE = 25
_ATTR_RE = re.compile(r"\s*([^=\s][^=]*?)\s*=(.*)\Z", re.DOTALL)


@attrs.frozen
class SearchQuery:
    path: str = ""
    name: str = ""
    status: str = ""
    min_ms: float | None = None
    attr_key: str = ""
    attr_value: str = ""
    page: int = 0

    def query(self) -> dict[str, str]:
        out = {"path": self.path, "name": self.name, "status": self.status}
        if self.min_ms is not None:
            out["min_ms"] = f"{self.min_ms:g}"
        if self.attr_key:
            out["attr"] = f"{self.attr_key}={self.attr_value}"
        return {k: v for k, v in out.items() if v}


def parse_search(params: Any) -> SearchQuery:
    """The search form's fields; :class:`ValueError` with a message if bad."""
    status = (params.get("status") or "").strip()
    if status not in ("", "ok", "error"):
        raise ValueError(f"unknown status {status!r}: use ok or error")
    min_ms: float | None = None
    raw = (params.get("min_ms") or "").strip()
    if raw:
        try:
            min_ms = float(raw)
        except ValueError:
            raise ValueError(f"minimum duration {raw!r} is not a number of milliseconds") from None
        if not min_ms >= 0:
            raise ValueError("the minimum duration must be 0 ms or more")
    key = value = ""
    attr = params.get("attr") or ""
    if attr.strip():
        match = _ATTR_RE.match(attr)
        if match is None:
            raise ValueError(f"attribute filter {attr!r}: expected key=value")
        key, value = match.group(1), match.group(2).strip()
    try:
        page = max(0, int(params.get("page") or 0))
    except ValueError:
        raise ValueError("page must be a number") from None
    return SearchQuery(
        path=(params.get("path") or "").strip(),
        name=(params.get("name") or "").strip(),
        status=status,
        min_ms=min_ms,
        attr_key=key,
        attr_value=value,
        page=page,
    )


@attrs.frozen
class TraceRow:
    trace_id: str
    start_ns: int
    spans: int
    errors: int
    services: tuple[str, ...]
    root_name: str | None
    duration_ns: int


def _attribute(conn: Connection, key: str) -> ColumnElement[Any]:
    col = spans.c.attributes
    if conn.dialect.name == "postgresql":
        return col.op("->>")(key)
    # json_extract with a quoted key: a key may hold dots or brackets.
    quoted = '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return cast(func.json_extract(col, quoted), Text)


def status_is(status: str) -> ColumnElement[bool]:
    """``status = '<status>'`` with the value written into the SQL, not bound:
    a status is ``ok``, ``error`` or ``unset`` (checked here), and only a
    literal lets SQLite use the partial index of the errors,
    ``ix_alamos_spans_errors`` (search 24 h for errors of 1 ms or more on
    scripts/dashboard_bench.py: see docs/dashboard.md)."""
    if status not in ("ok", "error", "unset"):
        raise ValueError(f"unknown status {status!r}")
    return spans.c.status == literal_column(f"'{status}'")


def _conditions(conn: Connection, q: SearchQuery, window: Window) -> list[ColumnElement[bool]]:
    s = spans.c
    conds: list[ColumnElement[bool]] = [
        s.start_ns >= window.start_ns,
        s.start_ns < window.end_ns,
    ]
    if q.path:
        conds.append(in_subtree(s.path, q.path))
    if q.name:
        conds.append(s.name.contains(q.name, autoescape=True))
    if q.status:
        conds.append(status_is(q.status))
    if q.min_ms is not None:
        conds.append(s.duration_ns >= int(q.min_ms * 1e6))
    if q.attr_key:
        conds.append(_attribute(conn, q.attr_key) == q.attr_value)
    return conds


def search_traces(
    conn: Connection, q: SearchQuery, window: Window, page_size: int = PAGE_SIZE
) -> tuple[list[TraceRow], bool]:
    """One page of matching traces, newest first, and whether more follow."""
    s = spans.c
    wanted = (q.page + 1) * page_size + 1
    conds = _conditions(conn, q, window)
    # The newest matching spans, read back from the time index until enough
    # distinct traces are found: a GROUP BY trace_id over every span of the
    # window took 4.2 s for 24 h of scripts/dashboard_bench.py (1,000,000
    # spans); this reads a few hundred rows for a page.  The batch grows
    # fourfold, so a filter that matches rarely costs log(n) queries.
    batch = wanted * 8
    seen: dict[str, None] = {}
    while True:
        newest = conn.execute(
            select(s.trace_id)
            .where(*conds)
            .order_by(s.start_ns.desc(), s.trace_id, s.span_id)
            .limit(batch)
        ).all()
        seen = dict.fromkeys(r.trace_id for r in newest)
        if len(seen) >= wanted or len(newest) < batch:
            break
        batch *= 4
    ids = list(seen)[q.page * page_size : wanted]
    more = len(ids) > page_size
    ids = ids[:page_size]
    if not ids:
        return [], False
    stats = (
        select(
            s.trace_id,
            func.min(s.start_ns).label("start"),
            func.max(s.end_ns).label("end"),
            func.count().label("n"),
            func.sum(case((s.status == "error", 1), else_=0)).label("errors"),
        )
        .where(s.trace_id.in_(ids))
        .group_by(s.trace_id)
    )
    found = {r.trace_id: r for r in conn.execute(stats)}
    services: dict[str, set[str]] = {}
    for tid, service in conn.execute(
        select(s.trace_id, s.service).where(s.trace_id.in_(ids)).distinct()
    ):
        services.setdefault(tid, set()).add(service)
    roots: dict[str, tuple[str, int]] = {}
    root_q = (
        select(s.trace_id, s.name, s.duration_ns)
        .where(s.trace_id.in_(ids), s.parent_span_id.is_(None))
        .order_by(s.start_ns)
    )
    for r in conn.execute(root_q):
        roots.setdefault(r.trace_id, (r.name, int(r.duration_ns)))
    rows = []
    for tid in ids:
        r = found[tid]
        name, duration = roots.get(tid, (None, int(r.end) - int(r.start)))
        rows.append(
            TraceRow(
                trace_id=tid,
                start_ns=int(r.start),
                spans=int(r.n),
                errors=int(r.errors or 0),
                services=tuple(sorted(services.get(tid, ()))),
                root_name=name,
                duration_ns=duration,
            )
        )
    return rows, more


@attrs.define
class SessionRow:
    """A debug session, as its records show it."""

    session_id: str
    start_ns: int
    end_ns: int
    spans: int = 0
    logs: int = 0
    errors: int = 0
    paths: set[str] = attrs.field(factory=set)
    levels: set[str] = attrs.field(factory=set)

    @property
    def subtree(self) -> str:
        """The deepest path every record is in (``""``: the whole tree)."""
        parts = [p.split(".") for p in self.paths]
        if not parts:
            return ""
        common: list[str] = []
        for segment in zip(*parts, strict=False):
            if len(set(segment)) != 1:
                break
            common.append(segment[0])
        return ".".join(common)


def sessions(conn: Connection, window: Window, only: str | None = None) -> list[SessionRow]:
    """Debug sessions with records in the window (or session ``only``), newest first."""
    s, lg = spans.c, logs.c
    found: dict[str, SessionRow] = {}

    def span_where() -> list[ColumnElement[bool]]:
        if only is not None:
            return [s.session_id == only]
        return [s.session_id.is_not(None), s.end_ns >= window.start_ns, s.start_ns < window.end_ns]

    def log_where() -> list[ColumnElement[bool]]:
        if only is not None:
            return [lg.session_id == only]
        return [lg.session_id.is_not(None), lg.ts_ns >= window.start_ns, lg.ts_ns < window.end_ns]

    q1 = (
        select(
            s.session_id,
            s.path,
            s.level,
            func.min(s.start_ns).label("start"),
            func.max(s.end_ns).label("end"),
            func.count().label("n"),
            func.sum(case((s.status == "error", 1), else_=0)).label("errors"),
        )
        .where(and_(*span_where()))
        .group_by(s.session_id, s.path, s.level)
    )
    for r in conn.execute(q1):
        row = found.setdefault(r.session_id, SessionRow(r.session_id, int(r.start), int(r.end)))
        row.start_ns, row.end_ns = min(row.start_ns, int(r.start)), max(row.end_ns, int(r.end))
        row.spans += int(r.n)
        row.errors += int(r.errors or 0)
        row.paths.add(r.path)
        row.levels.add(r.level)
    q2 = (
        select(
            lg.session_id,
            lg.path,
            func.min(lg.ts_ns).label("start"),
            func.max(lg.ts_ns).label("end"),
            func.count().label("n"),
        )
        .where(and_(*log_where()))
        .group_by(lg.session_id, lg.path)
    )
    for r in conn.execute(q2):
        row = found.setdefault(r.session_id, SessionRow(r.session_id, int(r.start), int(r.end)))
        row.start_ns, row.end_ns = min(row.start_ns, int(r.start)), max(row.end_ns, int(r.end))
        row.logs += int(r.n)
        row.paths.add(r.path)
    return sorted(found.values(), key=lambda r: (-r.start_ns, r.session_id))


def session_detail(conn: Connection, session_id: str, limit: int = 200) -> dict[str, list[Any]]:
    """A session's traces (newest first) and logs (oldest first), ``limit`` each."""
    s, lg = spans.c, logs.c
    first = func.min(s.start_ns).label("start")
    traces = conn.execute(
        select(
            s.trace_id,
            first,
            func.count().label("n"),
            func.sum(case((s.status == "error", 1), else_=0)).label("errors"),
            func.min(s.name).label("name"),
        )
        .where(s.session_id == session_id)
        .group_by(s.trace_id)
        .order_by(first.desc(), s.trace_id)
        .limit(limit)
    ).all()
    log_rows = conn.execute(
        select(lg.ts_ns, lg.path, lg.level, lg.message, lg.trace_id)
        .where(lg.session_id == session_id)
        .order_by(lg.ts_ns, lg.id)
        .limit(limit)
    ).all()
    return {"traces": list(traces), "logs": list(log_rows)}
