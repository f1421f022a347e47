"""The tree page's logs by level: counted, or summed from ``alamos_log_stats``.

Counting every log of a day by path and level was 110 ms of the tree page
over 24 h on the bench (1,000,000 logs; the ``(path, level, ts_ns)`` index
is read whole).  Trees with statistics also write the logs they saw counted
per statistics window (``alamos_log_stats``), so over a long window
(:func:`~alamos.dashboard.rollup.cover` on that table) the counts of the
whole windows are summed in SQL (40 ms for the 68,964 rows of a day), and
only these are counted from ``alamos_logs``, exact (the parts
:meth:`~alamos.dashboard.rollup.Cover.reads` gives, as for the tree page's spans):

* the edges (:meth:`~alamos.dashboard.rollup.Cover.edges`: before the first
  whole window or a path's first row, and the last minutes, whose rows may
  not be written yet);
* the paths with no log statistics in the window (a tree without
  statistics, logs written another way), over the whole window.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, func, select
from sqlalchemy.sql.elements import ColumnElement

from alamos.dashboard import rollup
from alamos.dashboard.db import Filters, Window
from alamos.report.sql.schema import log_stats, logs

__all__ = ["logs_by_level"]


def _count(
    conn: Connection,
    window: Window,
    f: Filters,
    where: Sequence[ColumnElement[bool]],
    into: dict[str, dict[str, int]],
) -> None:
    lg = logs.c
    query = (
        select(lg.path, lg.level, func.count().label("n"))
        .where(*f.logs_in(window), *where)
        .group_by(lg.path, lg.level)
    )
    for r in conn.execute(query):
        levels = into.setdefault(r.path, {})
        levels[r.level] = levels.get(r.level, 0) + int(r.n)


def logs_by_level(
    conn: Connection, window: Window, f: Filters, now_ns: int
) -> dict[str, dict[str, int]]:
    """``{path: {level: count}}`` of the logs in ``window`` (with ``f``), exact."""
    out: dict[str, dict[str, int]] = {}
    present = rollup.paths_in(conn, logs)
    cov = rollup.cover(conn, window, now_ns, table=log_stats, candidates=present)
    parts = [([], window)] if cov is None else cov.reads(window, logs.c.path, present)
    for where, part in parts:
        _count(conn, part, f, where, out)
    if cov is None:
        return out
    covered = sorted(cov.paths)
    c = log_stats.c
    summed = (
        select(c.path, c.level, func.sum(c.count).label("n"))
        .where(*rollup.in_cover(log_stats, cov.a_ns, cov.b_ns, f, f.log_levels, covered))
        .group_by(c.path, c.level)
    )
    for r in conn.execute(summed):
        if r.n:  # as counting gives no zero
            levels = out.setdefault(r.path, {})
            levels[r.level] = levels.get(r.level, 0) + int(r.n)
    return out
