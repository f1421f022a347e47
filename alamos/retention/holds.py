"""Holds: traces garbage collection must not delete.

A hold is a row of ``alamos_holds``: the trace id, a reason, when it was
made and, optionally, when it ends (``until_ns``).  While it lasts, gc keeps
the whole trace (every span and log, from every service and node) whatever
the policy says.  An expired hold no longer keeps anything; gc removes it.
"""

from __future__ import annotations

import time

import attrs
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from alamos.core.errors import RetentionError
from alamos.report.sql.reading import reason_of
from alamos.report.sql.schema import holds as holds_table
from alamos.retention.db import open_db

__all__ = ["Hold", "hold", "list_holds", "unhold"]

#: Longest reason kept (the rest is cut).
MAX_REASON = 1_000


@attrs.frozen(slots=True)
class Hold:
    """One hold (see the module docstring)."""

    trace_id: str
    reason: str
    created_ns: int
    until_ns: int | None

    def active(self, now_ns: int | None = None) -> bool:
        """True while the hold keeps its trace."""
        now = time.time_ns() if now_ns is None else now_ns
        return self.until_ns is None or self.until_ns > now


def _check_trace_id(trace_id: str) -> None:
    if not isinstance(trace_id, str) or not trace_id or len(trace_id) > 256:
        raise ValueError(
            f"invalid trace id {trace_id!r}: expected the trace's id, e.g. 32 hex digits"
        )


def hold(
    url: str,
    trace_id: str,
    *,
    reason: str = "",
    until_ns: int | None = None,
    now_ns: int | None = None,
) -> Hold:
    """Hold ``trace_id`` in the database at ``url`` until ``until_ns`` (``None``:
    until :func:`unhold`).  Holding a held trace replaces its hold.  The trace
    need not be stored yet (a hold may come before its spans)."""
    _check_trace_id(trace_id)
    now = time.time_ns() if now_ns is None else now_ns
    value = Hold(trace_id, str(reason)[:MAX_REASON], now, until_ns)
    db = open_db(url)
    try:
        with db.write.begin() as conn:
            h = holds_table.c
            row = attrs.asdict(value)
            found = conn.execute(
                update(holds_table).where(h.trace_id == trace_id).values(**row)
            ).rowcount
            if not found:
                conn.execute(insert(holds_table).values(**row))
    except SQLAlchemyError as exc:
        raise RetentionError(f"cannot hold a trace in {db.shown}: {reason_of(exc)}") from exc
    finally:
        db.dispose()
    return value


def unhold(url: str, trace_id: str) -> bool:
    """Remove the hold of ``trace_id``; False if it had none."""
    _check_trace_id(trace_id)
    db = open_db(url)
    try:
        with db.write.begin() as conn:
            n = conn.execute(delete(holds_table).where(holds_table.c.trace_id == trace_id)).rowcount
    except SQLAlchemyError as exc:
        raise RetentionError(f"cannot remove a hold in {db.shown}: {reason_of(exc)}") from exc
    finally:
        db.dispose()
    return bool(n)


def list_holds(url: str) -> list[Hold]:
    """Every hold, expired ones included (until gc removes them), newest first."""
    db = open_db(url)
    try:
        with db.read.connect() as conn:
            h = holds_table.c
            rows = conn.execute(
                select(h.trace_id, h.reason, h.created_ns, h.until_ns).order_by(
                    h.created_ns.desc(), h.trace_id
                )
            ).all()
    except SQLAlchemyError as exc:
        raise RetentionError(f"cannot read the holds of {db.shown}: {reason_of(exc)}") from exc
    finally:
        db.dispose()
    return [Hold(*row) for row in rows]
