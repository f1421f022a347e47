"""Reading traces back from the database: one trace as a tree, recent traces.

A trace seen by several processes is scattered over the rows they exported
(``alamos_spans`` and ``alamos_logs``, see :mod:`alamos.report.schema`).
These functions put it back together with SQLAlchemy Core (every value is a
bound parameter) and return the same record classes the exporters receive
(:class:`~alamos.report.records.SpanRecord`, :class:`LogRecord`), so code
that inspects spans from a :class:`~alamos.testing.Recorder` works on spans
read from a database too.

The tree is built from **parent links only**.  Start times come from the
clocks of different machines; a child whose clock runs behind its parent's
can "start" before it, and ordering by time would put it in the wrong place
or level.  Time only orders siblings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    case,
    create_engine,
    exists,
    func,
    inspect,
    or_,
    select,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from alamos.experiment.level import Level, parse_level
from alamos.report.records import EventRecord, LogRecord, SpanRecord
from alamos.report.schema import logs as logs_table
from alamos.report.schema import spans as spans_table
from alamos.report.sql import normalize_url

__all__ = [
    "TraceNode",
    "TraceQueryError",
    "TraceSummary",
    "build_tree",
    "load_trace",
    "recent_traces",
    "unattached_logs",
    "valid_trace_id",
]

T = TypeVar("T")

_TRACE_ID_RE = re.compile(r"[0-9a-f]{32}")


class TraceQueryError(RuntimeError):
    """The database could not be read (unreachable, not a database, no alamos
    tables...).  The message says which database, with any password hidden."""


def valid_trace_id(trace_id: str) -> bool:
    """True if ``trace_id`` is 32 lower-case hex digits, as alamos stores them."""
    return isinstance(trace_id, str) and _TRACE_ID_RE.fullmatch(trace_id) is not None


# ---------------------------------------------------------------------------
# The tree
# ---------------------------------------------------------------------------


@attrs.define(eq=False)
class TraceNode:
    """A span in the tree of its trace, with its children and its logs.

    ``orphan`` is true for a span shown as a root although it has a parent:
    the parent is not in the database (not flushed yet, exported elsewhere,
    or filtered out by level) or the parent links form a cycle (corrupt rows).
    """

    span: SpanRecord
    children: list[TraceNode] = attrs.field(factory=list)
    logs: list[LogRecord] = attrs.field(factory=list)
    orphan: bool = False

    def walk(self) -> Iterator[tuple[int, TraceNode]]:
        """``(depth, node)`` for this node and its descendants, depth first.

        Iterative, so a deep trace cannot exhaust Python's recursion limit.
        """
        stack: list[tuple[int, TraceNode]] = [(0, self)]
        while stack:
            depth, node = stack.pop()
            yield depth, node
            stack.extend((depth + 1, c) for c in reversed(node.children))


def _sibling_key(s: SpanRecord) -> tuple[int, str]:
    return (s.start_ns, s.span_id)


def build_tree(spans: Iterable[SpanRecord], logs: Iterable[LogRecord] = ()) -> list[TraceNode]:
    """Arrange ``spans`` into trees by their parent links; return the roots.

    Roots come first (in start order), then orphans (spans whose parent is
    missing, marked ``orphan=True``).  Children are in start order under their
    parent: times decide only the order of siblings, never who is whose
    parent, so clock skew between nodes cannot break the tree.  Spans caught
    in a cycle of parent links (which alamos never writes, but a database is
    shared input) become orphan roots as well, so every span appears exactly
    once.  Each log is attached to the node of its ``span_id``; logs of no
    span in ``spans`` are left out (see :func:`unattached_logs`).
    """
    by_id: dict[str, TraceNode] = {}
    for s in spans:
        by_id.setdefault(s.span_id, TraceNode(s))
    roots: list[TraceNode] = []
    orphans: list[TraceNode] = []
    for node in by_id.values():
        pid = node.span.parent_id
        if pid is None:
            roots.append(node)
        elif pid not in by_id or pid == node.span.span_id:
            node.orphan = True
            orphans.append(node)
        else:
            by_id[pid].children.append(node)
    for node in by_id.values():
        node.children.sort(key=lambda n: _sibling_key(n.span))
    roots.sort(key=lambda n: _sibling_key(n.span))
    orphans.sort(key=lambda n: _sibling_key(n.span))
    result = roots + orphans
    seen = {id(n) for top in result for _, n in top.walk()}
    # Whatever is left is reachable from no root: a cycle of parent links.
    # Cut each cycle at its earliest span and show it as an orphan root.
    for node in sorted(by_id.values(), key=lambda n: _sibling_key(n.span)):
        if id(node) in seen:
            continue
        parent = by_id.get(node.span.parent_id or "")
        if parent is not None:
            parent.children.remove(node)
        node.orphan = True
        result.append(node)
        seen.update(id(n) for _, n in node.walk())
    for log in logs:
        owner = by_id.get(log.span_id or "")
        if owner is not None:
            owner.logs.append(log)
    for node in by_id.values():
        node.logs.sort(key=lambda r: (r.ts_ns, r.id))
    return result


def unattached_logs(spans: Iterable[SpanRecord], logs: Iterable[LogRecord]) -> list[LogRecord]:
    """The logs whose span is not among ``spans`` (or that name no span)."""
    ids = {s.span_id for s in spans}
    return sorted((r for r in logs if r.span_id not in ids), key=lambda r: (r.ts_ns, r.id))


# ---------------------------------------------------------------------------
# Database access
# ---------------------------------------------------------------------------


def _engine(url: str) -> Engine:
    """An engine for reading ``url``, failing clearly rather than creating a file.

    SQLite would silently create an empty database at a mistyped path; a
    reader checks that the file exists first.
    """
    try:
        u = normalize_url(url)
    except ValueError as exc:
        raise TraceQueryError(str(exc)) from exc
    shown = u.render_as_string(hide_password=True)
    connect_args: dict[str, Any] = {}
    if u.drivername == "sqlite":
        database = u.database or ""
        if database in ("", ":memory:"):
            raise TraceQueryError(f"{shown} is an in-memory database: it holds no traces")
        if not database.startswith("file:") and not Path(database).is_file():
            raise TraceQueryError(f"no SQLite database at {database} (from {shown})")
    else:
        connect_args["connect_timeout"] = 10
    return create_engine(u, poolclass=NullPool, connect_args=connect_args)


def _connect(url: str) -> tuple[Engine, Connection]:
    engine = _engine(url)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        conn = engine.connect()
        if not inspect(conn).has_table(spans_table.name):
            conn.close()
            raise TraceQueryError(
                f"{shown} has no alamos tables: nothing has been exported to it yet"
            )
    except SQLAlchemyError as exc:
        engine.dispose()
        raise TraceQueryError(f"cannot read {shown}: {_reason(exc)}") from exc
    except TraceQueryError:
        engine.dispose()
        raise
    return engine, conn


def _reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _run(url: str, work: Callable[[Connection], T]) -> T:
    engine, conn = _connect(url)
    try:
        with conn:
            return work(conn)
    except SQLAlchemyError as exc:
        shown = engine.url.render_as_string(hide_password=True)
        raise TraceQueryError(f"cannot read {shown}: {_reason(exc)}") from exc
    finally:
        engine.dispose()


def _level(value: object) -> Level:
    try:
        return parse_level(value)  # type: ignore[arg-type]
    except ValueError:
        return Level.PROD  # unknown text in a shared table: show it, don't fail


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _events(value: object) -> tuple[EventRecord, ...]:
    if not isinstance(value, list):
        return ()
    out = []
    for e in value:
        if isinstance(e, dict):
            ts = e.get("ts_ns")
            out.append(
                EventRecord(
                    str(e.get("name", "")),
                    ts if isinstance(ts, int) else 0,
                    _mapping(e.get("attributes")),
                )
            )
    return tuple(out)


def _span(row: Any) -> SpanRecord:
    return SpanRecord(
        trace_id=row.trace_id,
        span_id=row.span_id,
        parent_id=row.parent_span_id,
        path=row.path,
        name=row.name,
        level=_level(row.level),
        start_ns=row.start_ns,
        end_ns=row.end_ns,
        status=row.status,
        error_text=row.error,
        attributes=_mapping(row.attributes),
        events=_events(row.events),
        service=row.service,
        node=row.node,
        session_id=row.session_id,
        location=row.location,
    )


def _log(row: Any) -> LogRecord:
    return LogRecord(
        id=row.id,
        ts_ns=row.ts_ns,
        path=row.path,
        level=row.level,
        message=row.message,
        trace_id=row.trace_id,
        span_id=row.span_id,
        attributes=_mapping(row.attributes),
        location=row.location,
        service=row.service,
        node=row.node,
        session_id=row.session_id,
    )


def load_trace(url: str, trace_id: str) -> tuple[list[SpanRecord], list[LogRecord]]:
    """Every span and log of ``trace_id`` in the database at ``url``.

    Spans in start order and logs in time order (convenient, not meaningful
    across nodes: use :func:`build_tree` for structure).  An unknown trace
    gives two empty lists.  Raises :class:`ValueError` for an id that is not
    32 lower-case hex digits and :class:`TraceQueryError` if the database
    cannot be read.
    """
    if not valid_trace_id(trace_id):
        raise ValueError(f"invalid trace id {trace_id!r}: expected 32 lower-case hex digits")

    def work(conn: Connection) -> tuple[list[SpanRecord], list[LogRecord]]:
        s, lg = spans_table.c, logs_table.c
        span_rows = conn.execute(
            select(spans_table).where(s.trace_id == trace_id).order_by(s.start_ns, s.span_id)
        )
        found = [_span(r) for r in span_rows]
        log_rows = conn.execute(
            select(logs_table).where(lg.trace_id == trace_id).order_by(lg.ts_ns, lg.id)
        )
        return found, [_log(r) for r in log_rows]

    return _run(url, work)


@attrs.frozen
class TraceSummary:
    """One line of :func:`recent_traces`.

    ``root`` is the trace's root span, or its earliest orphan when the root
    is not in the database; ``duration_ns`` is the root's duration when the
    true root is there, else the extent of the spans found (which mixes the
    clocks of several nodes).
    """

    trace_id: str
    start_ns: int
    end_ns: int
    span_count: int
    error_count: int
    services: tuple[str, ...]
    root: SpanRecord | None

    @property
    def status(self) -> str:
        return "error" if self.error_count else "ok"

    @property
    def complete(self) -> bool:
        """True if the root found has no parent (not an orphan)."""
        return self.root is not None and self.root.parent_id is None

    @property
    def duration_ns(self) -> int:
        if self.root is not None and self.complete:
            return self.root.duration_ns
        return self.end_ns - self.start_ns


def recent_traces(
    url: str,
    path: str | None = None,
    since_ns: int | None = None,
    errors_only: bool = False,
    limit: int = 50,
) -> list[TraceSummary]:
    """The most recent traces, newest first, at most ``limit`` of them.

    ``path`` keeps traces with a span in that experiment's subtree (``path``
    itself or below it); ``since_ns`` those with a span starting at or after
    that time (ns since the epoch); ``errors_only`` those with a span in
    error.  Raises :class:`TraceQueryError` if the database cannot be read.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    s = spans_table.c

    def work(conn: Connection) -> list[TraceSummary]:
        conds = []
        if path is not None:
            conds.append(or_(s.path == path, s.path.startswith(path + ".", autoescape=True)))
        if since_ns is not None:
            conds.append(s.start_ns >= since_ns)
        errors = func.sum(case((s.status == "error", 1), else_=0))
        query = select(
            s.trace_id,
            func.min(s.start_ns).label("start_ns"),
            func.max(s.end_ns).label("end_ns"),
            func.count().label("span_count"),
            errors.label("error_count"),
        )
        if conds:
            matching = select(s.trace_id).where(and_(*conds)).distinct()
            query = query.where(s.trace_id.in_(matching.scalar_subquery()))
        query = query.group_by(s.trace_id)
        if errors_only:
            query = query.having(errors > 0)
        query = query.order_by(func.min(s.start_ns).desc(), s.trace_id).limit(limit)
        rows = conn.execute(query).all()
        ids = [r.trace_id for r in rows]
        if not ids:
            return []
        services: dict[str, set[str]] = {}
        for tid, service in conn.execute(
            select(s.trace_id, s.service).where(s.trace_id.in_(ids)).distinct()
        ):
            services.setdefault(tid, set()).add(service)
        roots = _roots(conn, ids)
        return [
            TraceSummary(
                trace_id=r.trace_id,
                start_ns=int(r.start_ns),
                end_ns=int(r.end_ns),
                span_count=int(r.span_count),
                error_count=int(r.error_count or 0),
                services=tuple(sorted(services.get(r.trace_id, ()))),
                root=roots.get(r.trace_id),
            )
            for r in rows
        ]

    return _run(url, work)


def _roots(conn: Connection, ids: Sequence[str]) -> dict[str, SpanRecord]:
    """For each trace in ``ids``: its root span, else its earliest orphan."""
    s = spans_table.c
    parent = spans_table.alias("parent")
    no_parent = or_(
        s.parent_span_id.is_(None),
        ~exists().where(parent.c.span_id == s.parent_span_id),
    )
    rows = conn.execute(
        select(spans_table)
        .where(s.trace_id.in_(ids), no_parent)
        .order_by(s.trace_id, s.start_ns, s.span_id)
    )
    best: dict[str, SpanRecord] = {}
    for row in rows:
        span = _span(row)
        held = best.get(span.trace_id)
        if held is None or (held.parent_id is not None and span.parent_id is None):
            best[span.trace_id] = span
    return best
