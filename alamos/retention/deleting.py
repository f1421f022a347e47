"""gc's deletes: one batch of pending traces, and bounded deletes by condition.

Each call is one transaction of at most ``limit`` rows, so an exporter
writing to the same database waits for one batch at most.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
from sqlalchemy import Connection, Table, delete, literal_column, select, tuple_, update

from alamos.report.sql.schema import gc_pending, logs, spans
from alamos.retention.decide import live_traces
from alamos.retention.hooks import SpikeSource
from alamos.retention.policy import Policy

__all__ = ["Batch", "delete_batch", "delete_limited"]


@attrs.frozen
class Batch:
    """What one :func:`delete_batch` did: ``done`` traces finished (their
    last row gone) or spared, ``spared`` of them spared, rows deleted."""

    done: int
    spared: int
    spans: int
    logs: int


def delete_batch(
    conn: Connection, policy: Policy, now_ns: int, limit: int, spikes: Sequence[SpikeSource]
) -> Batch | None:
    """In ``conn``'s transaction, delete up to ``limit`` rows of the traces
    pending in ``alamos_gc_pending``: whole traces while they fit, the
    started ones first.  A trace about to lose its first row is checked
    again (:func:`~alamos.retention.decide.live_traces`): held, flagged or
    written to since the decision, it is spared.  ``None`` when nothing is
    pending."""
    p = gc_pending.c
    queue = conn.execute(
        select(p.trace_id, p.n_rows, p.started).order_by(p.started.desc(), p.trace_id).limit(limit)
    ).all()
    if not queue:
        return None
    chosen: list[str] = []
    fresh: list[str] = []
    total = 0
    for trace_id, n_rows, started in queue:
        if chosen and total + n_rows > limit:
            break
        chosen.append(trace_id)
        total += n_rows
        if not started:
            fresh.append(trace_id)
    spared = live_traces(conn, policy, now_ns, fresh, spikes)
    if spared:
        conn.execute(delete(gc_pending).where(p.trace_id.in_(spared)))
        chosen = [t for t in chosen if t not in spared]
    deleted = {"logs": 0, "spans": 0}
    gone: list[str] = []
    if chosen:
        conn.execute(update(gc_pending).where(p.trace_id.in_(chosen)).values(started=1))
        left = limit
        # Logs first, then spans: a trace half-deleted over several
        # batches keeps its structure (and its pending row) to the end.
        for tbl, kind in ((logs, "logs"), (spans, "spans")):
            if left > 0:
                n = delete_limited(conn, tbl, tbl.c.trace_id.in_(chosen), left)
                deleted[kind] = n
                left -= n
        remaining = _with_rows(conn, chosen)
        gone = [t for t in chosen if t not in remaining]
        if gone:
            conn.execute(delete(gc_pending).where(p.trace_id.in_(gone)))
    return Batch(len(gone) + len(spared), len(spared), deleted["spans"], deleted["logs"])


def _with_rows(conn: Connection, trace_ids: Sequence[str]) -> set[str]:
    """Those of ``trace_ids`` that still have a span or a log."""
    q = (
        select(spans.c.trace_id)
        .where(spans.c.trace_id.in_(trace_ids))
        .union(select(logs.c.trace_id).where(logs.c.trace_id.in_(trace_ids)))
    )
    return {row[0] for row in conn.execute(q)}


def delete_limited(conn: Connection, tbl: Table, where: Any, limit: int) -> int:
    """Delete at most ``limit`` rows of ``tbl`` matching ``where``; the count.

    By primary key (``DELETE ... WHERE key IN (SELECT key ... LIMIT n)``:
    neither SQLite, as usually built, nor PostgreSQL has ``DELETE ... LIMIT``),
    or by ``rowid`` / ``ctid`` for a table without one.
    """
    pk: list[Any] = list(tbl.primary_key.columns)
    if not pk:
        pk = [literal_column("ctid" if conn.dialect.name == "postgresql" else "rowid")]
    key: Any = pk[0] if len(pk) == 1 else tuple_(*pk)
    sub = select(*pk).select_from(tbl).where(where).limit(limit)
    return int(conn.execute(delete(tbl).where(key.in_(sub))).rowcount)
