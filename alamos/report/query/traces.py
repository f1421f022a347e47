"""Reading traces back from the database: one trace as a tree, recent traces.

A trace seen by several processes is scattered over the rows they exported
(``alamos_spans`` and ``alamos_logs``, see :mod:`alamos.report.sql.schema`).
These functions put it back together with SQLAlchemy Core (every value is a
bound parameter) and return the same record classes the exporters receive
(:class:`~alamos.core.records.SpanRecord`, :class:`LogRecord`), so code
that inspects spans from a :class:`~alamos.testing.Recorder` works on spans
read from a database too.

The tree of a trace is built from **parent links only**, never from times,
which come from the clocks of different machines: see
:mod:`alamos.report.query.trace_tree`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

import attrs
from sqlalchemy import (
    Connection,
    and_,
    case,
    exists,
    func,
    or_,
    select,
)

from alamos.core.records import LogRecord, SpanRecord
from alamos.report.query.decode import read_log, read_span, text_columns
from alamos.report.sql.reading import in_subtree
from alamos.report.sql.reading import run_read as _run
from alamos.report.sql.schema import logs as logs_table
from alamos.report.sql.schema import spans as spans_table

__all__ = ["TraceSummary", "load_trace", "recent_traces", "valid_trace_id"]

T = TypeVar("T")
R = TypeVar("R")

_TRACE_ID_RE = re.compile(r"[0-9a-f]{32}")


def valid_trace_id(trace_id: str) -> bool:
    """True if ``trace_id`` is 32 lower-case hex digits, as alamos stores them."""
    return isinstance(trace_id, str) and _TRACE_ID_RE.fullmatch(trace_id) is not None


def load_trace(url: str, trace_id: str) -> tuple[list[SpanRecord], list[LogRecord]]:
    """Every span and log of ``trace_id`` in the database at ``url``.

    Spans in start order and logs in time order (convenient, not meaningful
    across nodes: use :func:`~alamos.report.query.trace_tree.build_tree` for
    structure).  An unknown trace gives two empty lists.  Raises
    :class:`ValueError` for an id that is not 32 lower-case hex digits and
    :class:`TraceQueryError` if the database cannot be read.
    """
    if not valid_trace_id(trace_id):
        raise ValueError(f"invalid trace id {trace_id!r}: expected 32 lower-case hex digits")

    def work(conn: Connection) -> tuple[list[SpanRecord], list[LogRecord]]:
        s, lg = spans_table.c, logs_table.c
        span_rows = conn.execute(
            select(*text_columns(spans_table))
            .where(s.trace_id == trace_id)
            .order_by(s.start_ns, s.span_id)
        )
        found = [read_span(r) for r in span_rows]
        log_rows = conn.execute(
            select(*text_columns(logs_table))
            .where(lg.trace_id == trace_id)
            .order_by(lg.ts_ns, lg.id)
        )
        return found, [read_log(r) for r in log_rows]

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
            conds.append(in_subtree(s.path, path))
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
    # The parent is looked for in the same trace: a span id is unique only
    # within its trace (the table's key is the pair).
    no_parent = or_(
        s.parent_span_id.is_(None),
        ~exists().where(parent.c.span_id == s.parent_span_id, parent.c.trace_id == s.trace_id),
    )
    rows = conn.execute(
        select(*text_columns(spans_table))
        .where(s.trace_id.in_(ids), no_parent)
        .order_by(s.trace_id, s.start_ns, s.span_id)
    )
    best: dict[str, SpanRecord] = {}
    for row in rows:
        span = read_span(row)
        held = best.get(span.trace_id)
        if held is None or (held.parent_id is not None and span.parent_id is None):
            best[span.trace_id] = span
    return best
