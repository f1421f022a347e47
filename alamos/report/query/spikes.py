"""Frames and spikes: every span of a frame's name with its running mean,
the spike flag, and the flags stored for the dashboard and retention.

A frame is a **spike** when the previous :data:`DEFAULT_SPIKE_WINDOW` (32)
frames of the same name (by start time, then trace and span id) are there
and it lasted more than :data:`DEFAULT_SPIKE_FACTOR` (1.3) times their mean.
The running mean is a window function in the database (:func:`frames_cte`).

**Stored flags.**  :func:`store_spikes` (and ``budget_report(...,
store_spikes=True)``, ``alamos budgets --store-spikes``) writes the spikes of
a frame into ``alamos_spikes``: the frame's trace and span id, name, path,
start, duration, the baseline (the running mean it was compared with), the
factor and window.  A spike is keyed by its span: storing it again (another
run, another factor) stores nothing, and the first flag stands.  Storing is
never implicit: a report reads, and only writes when asked.
:func:`spike_traces` gives the trace ids of stored spikes (what retention
keeps), :func:`stored_spikes` the rows.
"""

from __future__ import annotations

import math
import time
from typing import Any

import attrs
from sqlalchemy import (
    CTE,
    Connection,
    Double,
    and_,
    case,
    cast,
    func,
    inspect,
    literal,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from alamos.report.query.budget_rows import FrameRow, check_top
from alamos.report.sql.migrate import ensure_schema
from alamos.report.sql.reading import run_read
from alamos.report.sql.schema import spans as spans_table
from alamos.report.sql.schema import spikes as spikes_table

__all__ = [
    "DEFAULT_SPIKE_FACTOR",
    "DEFAULT_SPIKE_WINDOW",
    "StoredSpike",
    "frames_of",
    "spike_traces",
    "store_spikes",
    "stored_spikes",
]

#: A frame longer than this many times the running mean is a spike.
DEFAULT_SPIKE_FACTOR = 1.3
#: The running mean is over this many previous frames of the same name.
DEFAULT_SPIKE_WINDOW = 32
# Before any start time (a BIGINT's least value).
_MIN_NS = -(2**63)


def check_spike(factor: float, window: int) -> None:
    if not isinstance(factor, int | float) or not math.isfinite(factor) or factor <= 0:
        raise ValueError(f"the spike factor must be a finite number above 0, not {factor!r}")
    if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= 10_000:
        raise ValueError(f"the spike window must be an integer from 1 to 10000, not {window!r}")


def check_frame(frame: str) -> None:
    if not isinstance(frame, str) or not frame:
        raise ValueError(f"the frame is a span name, not {frame!r}")


def as_int(value: Any) -> int:
    # PostgreSQL's SUM of a BIGINT is a NUMERIC: a Decimal here.
    return int(value)


def frames_cte(
    frame: str,
    since_ns: int | None,
    until_ns: int | None,
    factor: float,
    window: int,
) -> CTE:
    """The frames (spans named ``frame`` started in ``[since_ns, until_ns)``)
    with their running mean and spike flag, each numbered (``fno``, unique
    within the query).

    The running mean of a frame is over the ``window`` frames of that name
    before it, so the first frames after ``since_ns`` are compared with the
    ones before it.  Only the frames it needs are read: those of the range,
    and before ``since_ns`` from the ``window``-th one before it on (an
    index seek on ``(name, start_ns)``); not every frame of that name in
    the database, which made the dashboard's analysis page read all 200,000
    frames of scripts/dashboard_bench.py for a 1 h window.
    """
    s = spans_table.c
    order = (s.start_ns, s.trace_id, s.span_id)
    prev = (-window, -1)
    bounds = [s.name == frame]
    if until_ns is not None:
        bounds.append(s.start_ns < int(until_ns))
    if since_ns is not None:
        earlier = spans_table.alias("earlier")
        # The start of the window-th frame before since_ns: every frame at or
        # after it is read (ties at it included), so each frame of the range
        # has its window previous frames.  None (fewer frames before): all.
        first_needed = (
            select(earlier.c.start_ns)
            .where(earlier.c.name == frame, earlier.c.start_ns < int(since_ns))
            .order_by(earlier.c.start_ns.desc())
            .offset(window - 1)
            .limit(1)
            .scalar_subquery()
        )
        # A bound the index range can use (coalesce, not "IS NULL OR ..."):
        # SQLite made the OR a filter on every frame of that name before
        # until_ns (200,000 index entries for a 1 h window on
        # scripts/dashboard_bench.py) instead of a range start; this is
        # 88 -> 43 ms for the frames of that 1 h window there.
        bounds.append(s.start_ns >= func.coalesce(first_needed, literal(_MIN_NS)))
    every = (
        select(
            s.trace_id,
            s.span_id,
            s.path,
            s.start_ns,
            s.duration_ns,
            cast(func.avg(s.duration_ns).over(order_by=order, rows=prev), Double).label(
                "prev_mean"
            ),
            func.count().over(order_by=order, rows=prev).label("prev_n"),
            # A number per frame (same ordering: no sort of its own) that the
            # budget report groups and joins on, instead of the two text ids.
            func.row_number().over(order_by=order).label("fno"),
        )
        .where(*bounds)
        .cte("every_frame")
    )
    e = every.c
    spike = case(
        (and_(e.prev_n >= window, e.duration_ns > e.prev_mean * literal(float(factor))), 1),
        else_=0,
    )
    conds = []
    if since_ns is not None:
        conds.append(e.start_ns >= int(since_ns))
    if until_ns is not None:
        conds.append(e.start_ns < int(until_ns))
    query = select(
        e.fno,
        e.trace_id,
        e.span_id,
        e.path,
        e.start_ns,
        e.duration_ns,
        e.prev_mean,
        spike.label("spike"),
    )
    if conds:
        query = query.where(and_(*conds))
    return query.cte("frames")


def frames_of(
    url: str,
    frame: str,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    spike_factor: float = DEFAULT_SPIKE_FACTOR,
    spike_window: int = DEFAULT_SPIKE_WINDOW,
    spikes_only: bool = False,
    limit: int | None = None,
) -> list[FrameRow]:
    """The frames named ``frame``, in start order, each with its running
    mean and spike flag; ``spikes_only`` keeps the spikes, ``limit`` the
    *last* ``limit`` of them (still in start order)."""
    check_frame(frame)
    check_spike(spike_factor, spike_window)
    if limit is not None:
        check_top(limit)

    def work(conn: Connection) -> list[FrameRow]:
        frames = frames_cte(frame, since_ns, until_ns, spike_factor, spike_window)
        f = frames.c
        query = select(f.trace_id, f.span_id, f.start_ns, f.duration_ns, f.prev_mean, f.spike)
        if spikes_only:
            query = query.where(f.spike == 1)
        query = query.order_by(f.start_ns.desc(), f.trace_id.desc(), f.span_id.desc())
        if limit is not None:
            query = query.limit(limit)
        rows = [
            FrameRow(
                trace_id=r.trace_id,
                span_id=r.span_id,
                start_ns=as_int(r.start_ns),
                duration_ns=as_int(r.duration_ns),
                previous_mean_ns=None if r.prev_mean is None else float(r.prev_mean),
                spike=bool(r.spike),
            )
            for r in conn.execute(query)
        ]
        rows.reverse()
        return rows

    return run_read(url, work)


# ---------------------------------------------------------------------------
# Stored flags
# ---------------------------------------------------------------------------


@attrs.frozen
class StoredSpike:
    """One row of ``alamos_spikes``."""

    trace_id: str
    span_id: str
    name: str
    path: str
    start_ns: int
    duration_ns: int
    baseline_ns: float
    """The running mean the frame was compared with."""
    factor: float
    window: int
    flagged_ns: int
    """When the flag was stored."""

    @classmethod
    def from_row(cls, r: Any) -> StoredSpike:
        """The spike a row of ``alamos_spikes`` holds (every column selected)."""
        return cls(
            trace_id=r.trace_id,
            span_id=r.span_id,
            name=r.name,
            path=r.path,
            start_ns=as_int(r.start_ns),
            duration_ns=as_int(r.duration_ns),
            baseline_ns=float(r.baseline_ns),
            factor=float(r.factor),
            window=as_int(r.window),
            flagged_ns=as_int(r.flagged_ns),
        )


def store_frames_spikes(
    conn: Connection,
    frame: str,
    since_ns: int | None,
    until_ns: int | None,
    factor: float,
    window: int,
) -> int:
    """Store the spikes among the frames named ``frame`` started in
    ``[since_ns, until_ns)`` (one ``INSERT ... SELECT``, in the database),
    and commit; the number of new rows.  The schema is brought up to date
    first (a database written by an alamos before ``alamos_spikes``)."""
    ensure_schema(conn)
    f = frames_cte(frame, since_ns, until_ns, factor, window).c
    source = select(
        f.span_id,
        f.trace_id,
        literal(frame).label("name"),
        f.path,
        f.start_ns,
        f.duration_ns,
        f.prev_mean,
        literal(float(factor), Double).label("factor"),
        literal(int(window)).label("window"),
        literal(time.time_ns()).label("flagged_ns"),
    ).where(f.spike == 1)
    columns = [
        "span_id",
        "trace_id",
        "name",
        "path",
        "start_ns",
        "duration_ns",
        "baseline_ns",
        "factor",
        "window",
        "flagged_ns",
    ]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(spikes_table)
        .from_select(columns, source)
        .on_conflict_do_nothing(index_elements=["span_id", "trace_id"])
    )
    # Counted, not the statement's rowcount: Python's sqlite3 reports -1 for
    # an INSERT that starts with WITH.
    count = select(func.count()).select_from(spikes_table)
    before = conn.execute(count).scalar_one()
    conn.execute(statement)
    stored = conn.execute(count).scalar_one() - before
    conn.commit()
    return int(stored)


def store_spikes(
    url: str,
    frame: str,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    spike_factor: float = DEFAULT_SPIKE_FACTOR,
    spike_window: int = DEFAULT_SPIKE_WINDOW,
) -> int:
    """Flag the spikes among the frames named ``frame`` (started in
    ``[since_ns, until_ns)``) in ``alamos_spikes``; the number newly stored
    (a spike stored before is kept as it was)."""
    check_frame(frame)
    check_spike(spike_factor, spike_window)

    def work(conn: Connection) -> int:
        return store_frames_spikes(conn, frame, since_ns, until_ns, spike_factor, spike_window)

    return run_read(url, work)


def _window(conds: list[Any], since_ns: int | None, until_ns: int | None) -> None:
    c = spikes_table.c
    if since_ns is not None:
        conds.append(c.start_ns >= int(since_ns))
    if until_ns is not None:
        conds.append(c.start_ns < int(until_ns))


def spike_traces(
    url: str, *, since_ns: int | None = None, until_ns: int | None = None
) -> list[str]:
    """The trace ids (sorted, each once) of the stored spikes whose frame
    started in ``[since_ns, until_ns)``: the traces retention keeps.  A
    database without ``alamos_spikes`` has none."""
    c = spikes_table.c
    conds: list[Any] = []
    _window(conds, since_ns, until_ns)
    query = select(c.trace_id).distinct().order_by(c.trace_id)
    if conds:
        query = query.where(and_(*conds))

    def work(conn: Connection) -> list[str]:
        if not inspect(conn).has_table(spikes_table.name):
            return []
        return [str(r.trace_id) for r in conn.execute(query)]

    return run_read(url, work)


def stored_spikes(
    url: str,
    *,
    name: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> list[StoredSpike]:
    """The stored spikes (of the frame ``name``), in start order."""
    c = spikes_table.c
    conds: list[Any] = []
    if name is not None:
        conds.append(c.name == name)
    _window(conds, since_ns, until_ns)
    query = select(spikes_table).order_by(c.start_ns, c.trace_id, c.span_id)
    if conds:
        query = query.where(and_(*conds))

    def work(conn: Connection) -> list[StoredSpike]:
        if not inspect(conn).has_table(spikes_table.name):
            return []
        return [StoredSpike.from_row(r) for r in conn.execute(query)]

    return run_read(url, work)
