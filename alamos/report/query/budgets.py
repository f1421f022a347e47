"""Frame budgets, top offenders and spikes (after micromegas), as SQL on the database.

A **frame** is every span with a given name: a request handler
(``GET /items/{id}``) or a game loop's ``tick``.  A **budget map** puts span
names, exact or fnmatch globs, into budget categories (``db``, ``cache``...);
without a map, each span name is its own category.  For each frame, the
spans below it (found by parent links within the frame's trace, so a frame
served by several processes is whole) are charged to their budgets, and the
frames are then summarised per budget, with the frames that spent the most
in each (the **top offenders**) and the frames much slower than the ones
before them (the **spikes**).

What is counted, exactly:

* The frame's own span is the frame: its duration is the frame's time, the
  denominator of every share.  It is charged to no budget.
* Every descendant of the frame, at any depth, is charged to the budget its
  name maps to (unmapped names to none, unless the map names an
  ``unmatched`` budget).  Its duration is inclusive (its own children's time
  is in it).
* **Outermost only, per budget.**  A descendant is not counted when a span
  of the *same* budget is between it and the frame: ``sql.fetch`` inside
  ``sql.query``, both ``db``, charges ``db`` once, with ``sql.query``'s
  duration and a count of 1, so no time is counted twice in one budget.
  Spans of *different* budgets nest freely (``render`` inside ``db`` is
  charged to both), so the shares of several budgets can add up to more than
  the frame.
* A frame nested in another frame of the same name is a frame of its own and
  also a descendant of the outer one.
* A span is one row per ``(trace_id, span_id)``, so the only cycle a walk
  from a frame can meet goes back through the frame itself (corrupt rows:
  the frame's parent is its own descendant); the walk never re-enters its
  frame.  Descendants deeper than :data:`MAX_DEPTH` are not visited.

Everything runs in the database, in one statement (a recursive CTE on
``(trace_id, parent_span_id) -> (trace_id, span_id)``, then a GROUP BY per
budget and a window function for the top offenders); only the summary rows
come back.

The parts: :mod:`~alamos.report.query.budget_map` (the map),
:mod:`~alamos.report.query.budget_sql` (globs and budgets as SQL),
:mod:`~alamos.report.query.budget_rows` (what comes back, and merging top
offenders), this module (the queries) and
:mod:`~alamos.report.query.spikes` (storing the spike flags).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Connection,
    Integer,
    Select,
    Text,
    and_,
    case,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
)

from alamos.report.query.budget_map import BudgetMap
from alamos.report.query.budget_rows import (
    DEFAULT_TOP,
    BudgetReport,
    BudgetStats,
    FrameBudget,
    FrameStats,
    Offender,
    check_top,
    offender_key,
)
from alamos.report.query.budget_sql import BAR, budget_of_token, token_expr
from alamos.report.query.spikes import (
    DEFAULT_SPIKE_FACTOR,
    DEFAULT_SPIKE_WINDOW,
    as_int,
    check_frame,
    check_spike,
    frames_cte,
    store_frames_spikes,
)
from alamos.report.sql.reading import run_read as _run
from alamos.report.sql.schema import spans as spans_table

__all__ = ["MAX_DEPTH", "budget_report", "frame_budgets"]

#: Deepest descendant visited below a frame (depth 1 is a child): a bound on
#: the walk, deeper than any real call stack.
MAX_DEPTH = 10_000
#: PostgreSQL's ``work_mem`` for the walk (raised to it for the transaction,
#: never lowered): without an index on ``(trace_id, parent_span_id)`` the
#: walk hashed the spans table at each level, and at the default 4 MB a
#: million spans spilled to disk (1,000,000 spans: 7.7 s at 4 MB, 4.7 s at
#: 64 MB; scripts/budgets_bench.py).  Schema version 4 has that index; the
#: setting stays for the grouping of many (frame, budget) rows.
PG_WORK_MEM = "64MB"


def _holds(haystack: ColumnElement[str], needle: ColumnElement[str], dialect: str) -> Any:
    find = func.strpos if dialect == "postgresql" else func.instr
    return find(haystack, needle) > 0


def _per_frame_cte(frames: CTE, bmap: BudgetMap | None, dialect: str) -> CTE:
    """``(fno, token, n, d)``: what each frame (by its number in ``frames``)
    spent in each budget (by its token), outermost spans only (see the
    module docstring).

    Children are read from the table through ``ix_alamos_spans_trace_parent``
    (``(trace_id, parent_span_id)``, schema version 4), on both databases.
    It replaced, on SQLite, a ``MATERIALIZED`` copy of every span of the
    frames' traces that SQLite indexed by itself (on PostgreSQL, lookups
    through the ``trace_id`` index filtered on the parent): 8,334 frames of
    1 h on scripts/dashboard_bench.py, 41,670 spans below them, 321 -> 293 ms
    of CPU for the statement on SQLite (median of 7, run alternately).  Each
    visited span carries ``above``: the tokens of the budgets between it and
    the frame.
    """
    f = frames.c

    def step(prev: Any) -> Select[Any]:
        """The walk's recursive step: the children of the spans of ``prev``."""
        below = spans_table.alias("below")
        b = below.c
        above = case(
            (
                or_(prev.c.token.is_(None), _holds(prev.c.above, prev.c.token, dialect)),
                prev.c.above,
            ),
            else_=prev.c.above
            + func.substr(prev.c.token, literal_column("2", Integer), type_=Text),
        )
        return (
            select(
                prev.c.fno,
                prev.c.frame_trace,
                prev.c.frame_span,
                b.span_id,
                token_expr(b.name, bmap, dialect).label("token"),
                cast(above, Text).label("above"),
                (prev.c.depth + literal_column("1", Integer)).label("depth"),
                b.duration_ns,
            )
            .join_from(
                prev,
                below,
                and_(b.trace_id == prev.c.frame_trace, b.parent_span_id == prev.c.span_id),
            )
            # Never back into the frame (a corrupt cycle), but from the frame
            # itself to its children, itself among them if it is its own parent.
            .where(
                prev.c.depth < MAX_DEPTH,
                or_(prev.c.depth == 0, b.span_id != prev.c.frame_span),
            )
        )

    # The walk starts at the frames themselves (depth 0, no budget), so that
    # every lookup of children is the recursive step's.
    anchor = select(
        f.fno.label("fno"),
        f.trace_id.label("frame_trace"),
        f.span_id.label("frame_span"),
        f.span_id.label("span_id"),
        cast(null(), Text).label("token"),
        BAR.label("above"),
        literal_column("0", Integer).label("depth"),
        f.duration_ns.label("duration_ns"),
    )
    walk = anchor.cte("walk", recursive=True)
    visited = walk.union_all(step(walk.alias("w")))
    v = visited.c
    # Grouped by the frame's number, not its two text ids: with the ranking
    # in budget_report, 431-444 -> 331-349 ms of CPU for the 8,334 frames of
    # 1 h on scripts/dashboard_bench.py.
    return (
        select(
            v.fno,
            v.token,
            func.count().label("n"),
            func.sum(v.duration_ns).label("d"),
        )
        .where(v.token.is_not(None), ~_holds(v.above, v.token, dialect))
        .group_by(v.fno, v.token)
        .cte("per_frame")
    )


def _tune(conn: Connection) -> None:
    """On PostgreSQL, for this transaction only: ``work_mem`` raised to
    :data:`PG_WORK_MEM` and JIT off.  The planner's estimates of a recursive
    walk are far off (millions of rows for thousands), which made it JIT
    compile the query for 1.3 s of a 12 s run."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(
        text(
            "SELECT set_config('work_mem', :wm, true) "
            "WHERE pg_size_bytes(current_setting('work_mem')) < pg_size_bytes(:wm)"
        ),
        {"wm": PG_WORK_MEM},
    )
    conn.execute(text("SELECT set_config('jit', 'off', true)"))


def _budget_map(budgets: BudgetMap | Mapping[str, str | Sequence[str]] | None) -> BudgetMap | None:
    if budgets is None or isinstance(budgets, BudgetMap):
        return budgets
    return BudgetMap.from_mapping(budgets)


def budget_report(
    url: str,
    frame: str,
    budgets: BudgetMap | Mapping[str, str | Sequence[str]] | None = None,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    top: int = DEFAULT_TOP,
    spike_factor: float = DEFAULT_SPIKE_FACTOR,
    spike_window: int = DEFAULT_SPIKE_WINDOW,
    store_spikes: bool = False,
) -> BudgetReport:
    """The frames named ``frame`` in the database at ``url``, per budget.

    ``budgets`` is a :class:`BudgetMap`, a mapping for
    :meth:`BudgetMap.from_mapping`, or ``None`` (each span name its own
    budget).  Frames are those started in ``[since_ns, until_ns)``.  One
    statement: the summary of each budget and its ``top`` offenders come back,
    never the spans.  Raises :class:`ValueError` for a bad argument and
    :class:`~alamos.core.errors.TraceQueryError` if the database cannot be
    read.  With ``store_spikes``, the spikes among those frames are also
    flagged in ``alamos_spikes`` first (see :mod:`~alamos.report.query.spikes`;
    ``BudgetReport.stored_spikes`` says how many were new).
    """
    check_frame(frame)
    bmap = _budget_map(budgets)
    check_top(top)
    check_spike(spike_factor, spike_window)

    def work(conn: Connection) -> BudgetReport:
        stored = None
        if store_spikes:
            stored = store_frames_spikes(
                conn, frame, since_ns, until_ns, spike_factor, spike_window
            )
        _tune(conn)
        dialect = conn.dialect.name
        frames = frames_cte(frame, since_ns, until_ns, spike_factor, spike_window)
        per_frame = _per_frame_cte(frames, bmap, dialect)
        f, p = frames.c, per_frame.c
        # Each budget's figures by GROUP BY, and only the row number in a
        # window: six window functions over every (frame, budget) row were a
        # quarter of the statement's time (see _per_frame_cte).  Ties are
        # broken by the frame's number, which frames_cte gives in the order
        # (start_ns, trace_id, span_id): the same order as ranking by those,
        # without joining every (frame, budget) row to its frame and sorting
        # on two text ids first; only the top rows are joined (8,334 frames
        # of 1 h on scripts/dashboard_bench.py: about 65 -> 45 ms of CPU for
        # the ranking on SQLite, medians of 5 to 7 on a shared machine).
        ranked = (
            select(
                p.fno,
                p.token,
                p.n,
                p.d,
                func.row_number()
                .over(partition_by=p.token, order_by=(p.d.desc(), p.fno))
                .label("rn"),
            )
        ).cte("ranked")
        per_budget = (
            select(
                p.token,
                func.count().label("b_frames"),
                func.sum(p.n).label("b_count"),
                func.sum(p.d).label("b_total"),
                func.min(p.d).label("b_min"),
                func.max(p.d).label("b_max"),
            )
            .group_by(p.token)
            .cte("per_budget")
        )
        r, b = ranked.c, per_budget.c
        fo = frames.alias("offender")
        top_rows = (
            select(
                r.token,
                fo.c.trace_id.label("frame_trace"),
                fo.c.span_id.label("frame_span"),
                r.n,
                r.d,
                fo.c.start_ns,
                fo.c.duration_ns.label("frame_ns"),
                fo.c.spike,
                b.b_frames,
                b.b_count,
                b.b_total,
                b.b_min,
                b.b_max,
            )
            .join_from(ranked, per_budget, b.token == r.token)
            .join(fo, fo.c.fno == r.fno)
            .where(r.rn <= top)
            .subquery("top_rows")
        )
        totals = select(
            func.count().label("t_frames"),
            func.coalesce(func.sum(f.duration_ns), 0).label("t_total"),
            func.min(f.duration_ns).label("t_min"),
            func.max(f.duration_ns).label("t_max"),
            func.coalesce(func.sum(f.spike), 0).label("t_spikes"),
        ).subquery("totals")
        query: Select[Any] = select(totals, top_rows).select_from(
            totals.outerjoin(top_rows, true())
        )
        rows = conn.execute(query).all()
        t = rows[0]
        stats = FrameStats(
            name=frame,
            frames=as_int(t.t_frames),
            total_ns=as_int(t.t_total),
            min_ns=None if t.t_min is None else as_int(t.t_min),
            max_ns=None if t.t_max is None else as_int(t.t_max),
            spikes=as_int(t.t_spikes),
        )
        budgets_seen: dict[str, BudgetStats] = {}
        offenders: list[Offender] = []
        for row in rows:
            if row.token is None:
                continue  # no frame has a budget: the one row of the totals
            budget = budget_of_token(row.token)
            if budget not in budgets_seen:
                total = as_int(row.b_total)
                budgets_seen[budget] = BudgetStats(
                    budget=budget,
                    frames=as_int(row.b_frames),
                    count=as_int(row.b_count),
                    total_ns=total,
                    min_ns=as_int(row.b_min),
                    max_ns=as_int(row.b_max),
                    share=total / stats.total_ns if stats.total_ns > 0 else None,
                )
            offenders.append(
                FrameBudget(
                    trace_id=row.frame_trace,
                    span_id=row.frame_span,
                    start_ns=as_int(row.start_ns),
                    frame_ns=as_int(row.frame_ns),
                    budget=budget,
                    count=as_int(row.n),
                    duration_ns=as_int(row.d),
                    spike=bool(row.spike),
                )
            )
        # Budgets are ordered here, not by the database's collation, so both
        # databases give the same order.
        ordered = sorted(budgets_seen.values(), key=lambda b: (-b.total_ns, b.budget))
        offenders.sort(key=lambda o: (o.budget, *offender_key(o)))
        return BudgetReport(stats, tuple(ordered), tuple(offenders), top, stored)

    return _run(url, work)


def frame_budgets(
    url: str,
    frame: str,
    budgets: BudgetMap | Mapping[str, str | Sequence[str]] | None = None,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    spike_factor: float = DEFAULT_SPIKE_FACTOR,
    spike_window: int = DEFAULT_SPIKE_WINDOW,
) -> list[FrameBudget]:
    """Every frame's line in every budget it spent time in, in frame order
    (start time, trace id, span id) then by budget.

    One row per frame and budget: meant for a chosen time range, or for
    exporting elsewhere; :func:`budget_report` summarises in the database.
    """
    check_frame(frame)
    bmap = _budget_map(budgets)
    check_spike(spike_factor, spike_window)

    def work(conn: Connection) -> list[FrameBudget]:
        _tune(conn)
        frames = frames_cte(frame, since_ns, until_ns, spike_factor, spike_window)
        per_frame = _per_frame_cte(frames, bmap, conn.dialect.name)
        f, p = frames.c, per_frame.c
        query = select(
            f.trace_id, f.span_id, p.token, p.n, p.d, f.start_ns, f.duration_ns, f.spike
        ).join_from(per_frame, frames, f.fno == p.fno)
        rows = [
            FrameBudget(
                trace_id=r.trace_id,
                span_id=r.span_id,
                start_ns=as_int(r.start_ns),
                frame_ns=as_int(r.duration_ns),
                budget=budget_of_token(r.token),
                count=as_int(r.n),
                duration_ns=as_int(r.d),
                spike=bool(r.spike),
            )
            for r in conn.execute(query)
        ]
        # Ordered here, not by the database's collation (budget names).
        rows.sort(key=lambda r: (r.start_ns, r.trace_id, r.span_id, r.budget))
        return rows

    return _run(url, work)
