"""Reading log records back from the database: ``alamos logs``.

:func:`find_logs` selects from ``alamos_logs`` with SQLAlchemy Core (every
value a bound parameter) and returns :class:`~alamos.core.records.LogRecord`
objects, in time order: the newest ``limit`` matching rows, or every row at
or after ``since_ns`` (what ``alamos logs -f`` polls for).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from sqlalchemy import Connection, and_, select

from alamos.core.level import LOG_LEVELS
from alamos.core.records import LogRecord
from alamos.report.query.decode import read_log, text_columns
from alamos.report.sql.reading import in_subtree
from alamos.report.sql.reading import run_read as _run
from alamos.report.sql.schema import logs as logs_table

__all__ = ["LogQuery", "find_logs", "log_level_at_least"]

_NAMES = tuple(LOG_LEVELS)


def log_level_at_least(name: str) -> tuple[str, ...]:
    """The log level names at or above ``name`` (any case); ValueError for
    an unknown name, listing the known ones."""
    upper = name.strip().upper()
    if upper not in _NAMES:
        raise ValueError(
            f"invalid log level {name!r}: use one of {', '.join(n.lower() for n in _NAMES)}"
        )
    return _NAMES[_NAMES.index(upper) :]


@attrs.frozen
class LogQuery:
    """Which logs: ``path`` (the experiment and its subtree), ``min_level``
    (a log level name: that level and above), ``trace_id``, ``grep`` (a
    substring of the message, case-insensitive)."""

    path: str | None = None
    min_level: str | None = None
    trace_id: str | None = None
    grep: str | None = None

    def conditions(self) -> list[object]:
        c = logs_table.c
        out: list[object] = []
        if self.path is not None:
            out.append(in_subtree(c.path, self.path))
        if self.min_level is not None:
            out.append(c.level.in_(log_level_at_least(self.min_level)))
        if self.trace_id is not None:
            out.append(c.trace_id == self.trace_id)
        if self.grep:
            out.append(c.message.icontains(self.grep, autoescape=True))
        return out


def find_logs(
    url: str, query: LogQuery, *, since_ns: int | None = None, limit: int | None = 100
) -> list[LogRecord]:
    """The logs matching ``query`` at or after ``since_ns``, in time order:
    the newest ``limit`` of them (``None``: all).  Raises
    :class:`~alamos.core.errors.TraceQueryError` if the database cannot be read."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    conds = query.conditions()  # a bad level fails before connecting
    c = logs_table.c
    if since_ns is not None:
        conds.append(c.ts_ns >= since_ns)

    def work(conn: Connection) -> list[LogRecord]:
        stmt = select(*text_columns(logs_table))
        if conds:
            stmt = stmt.where(and_(*conds))  # type: ignore[arg-type]
        if limit is None:
            rows = conn.execute(stmt.order_by(c.ts_ns, c.id))
            return [read_log(r) for r in rows]
        newest = conn.execute(stmt.order_by(c.ts_ns.desc(), c.id.desc()).limit(limit))
        return [read_log(r) for r in reversed(list(newest))]

    return _run(url, work)


def new_logs(found: Sequence[LogRecord], seen: set[str]) -> list[LogRecord]:
    """The records of ``found`` whose id is not in ``seen`` (added to it)."""
    out = [r for r in found if r.id not in seen]
    seen.update(r.id for r in out)
    return out
