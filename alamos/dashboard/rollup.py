"""The tree and layer pages over long windows, from the span statistics.

Every tree with a database stores per-minute statistics of its spans in
``alamos_span_stats`` (:mod:`alamos.stats`): per (path, name, status,
level), window and process, the count, the errors, the extremes and a
DDSketch of the durations.  Over a window longer than
:data:`STATS_FROM_S` the pages read those rows instead of every span:

* the whole statistics windows inside the page's window, up to
  :data:`LAG_NS` before now (the rows of the last minutes may not be
  written yet), come from the rows: counts and errors summed in SQL per
  path (and per time bucket), the sketches summed in Python
  (:class:`~alamos.stats.sketch.BinSum`), from the hour tier
  ``alamos_span_stats_1h`` where it is complete (:mod:`~alamos.dashboard.tiers`);
* the edges (the part of the first statistics window before the page's
  start, and the last minutes) come from the spans, exact, and are added in.

So counts and errors are exact, and p50/p99 are within the sketch's 1%
relative error (the page says "≈").  A path counts as covered from its
first statistics row on (its spans before it are read); a path without
any (a tree with ``stats_interval=None``, or spans written another way)
is read from its spans, as on short windows.  The tree page's logs by level are counted
the same way from ``alamos_log_stats`` (:mod:`~alamos.dashboard.logcounts`).

Measured with scripts/dashboard_bench.py (1,000,000 spans over 24 h, 8,289
statistics rows): see docs/dashboard.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
from sqlalchemy import Connection, Table, func, select
from sqlalchemy.sql.elements import ColumnElement

from alamos.dashboard.db import Filters, Window
from alamos.report.sql.schema import span_stats, spans
from alamos.stats.sketch import BinSum

__all__ = [
    "LAG_NS",
    "STATS_FROM_S",
    "Cover",
    "StatsGroup",
    "cover",
    "in_cover",
    "paths_in",
    "slowest_windows",
]

#: Windows of this many seconds or more read the statistics rows; shorter
#: ones (the default 1 h) read every span (exact percentiles, 70 ms for
#: the tree page at 1 h on the bench).
STATS_FROM_S = 2 * 3600.0
#: The last minutes are read from the spans: a statistics row is written
#: when its window has ended (checked every 5 s) and delivered with the
#: next batch.
LAG_NS = 120 * 10**9
#: Rows of windows longer than this are not used (a window must fit the
#: page's time buckets).
MAX_STATS_WINDOW_NS = 3600 * 10**9


@attrs.frozen
class Cover:
    """The statistics windows ``[a_ns, b_ns)`` inside the page's window, and
    the paths whose statistics cover them: ``starts`` holds each such path
    and where its rows start to stand in for its records (``a_ns``, or its
    first row if later); ``grid``: every window's length divides it."""

    a_ns: int
    b_ns: int
    starts: tuple[tuple[str, int], ...]
    grid: int

    @property
    def paths(self) -> frozenset[str]:
        return frozenset(p for p, _ in self.starts)

    def edges(self, window: Window) -> list[tuple[list[str], int, int]]:
        """The parts of ``window`` read from the records, ``(paths, lo, hi)``:
        before each path's start, and from ``b_ns`` on."""
        by_start: dict[int, list[str]] = {}
        for p, start in self.starts:
            by_start.setdefault(start, []).append(p)
        parts = [(sorted(ps), window.start_ns, start) for start, ps in sorted(by_start.items())]
        parts.append((sorted(self.paths), self.b_ns, window.end_ns))
        return [(ps, lo, hi) for ps, lo, hi in parts if hi > lo]

    def spans(self, window: Window) -> list[tuple[int, int]]:
        """:meth:`edges` as time ranges only (a cover of one path)."""
        return [(lo, hi) for _, lo, hi in self.edges(window)]

    def reads(
        self, window: Window, path: ColumnElement[Any], present: Sequence[str]
    ) -> list[tuple[list[ColumnElement[bool]], Window]]:
        """What the records (``path``: their path column) are read for,
        ``(where, part)``: the ``present`` paths these statistics do not
        cover, over the whole ``window``, and the covered ones at the
        :meth:`edges` (the spans of the tree page, the logs by level)."""
        covered = self.paths
        uncovered = [p for p in present if p not in covered]
        out: list[tuple[list[ColumnElement[bool]], Window]] = []
        if uncovered:
            out.append(([path.in_(uncovered)], window))
        out += [([path.in_(ps)], Window("edge", lo, hi)) for ps, lo, hi in self.edges(window)]
        return out


def _lcm(values: Sequence[int]) -> int:
    out = 1
    for v in values:
        out = out * v // math.gcd(out, v)
    return out


def cover(
    conn: Connection,
    window: Window,
    now_ns: int,
    path: str | None = None,
    table: Table = span_stats,
    candidates: Sequence[str] | None = None,
) -> Cover | None:
    """Where the statistics rows of ``table`` (``alamos_span_stats``, or
    ``alamos_log_stats`` for the logs) can stand in for the records, or
    ``None`` (a short window, or no rows).  ``path``: only that path;
    ``candidates``: only these paths, each looked up alone."""
    if window.seconds < STATS_FROM_S:
        return None
    c = table.c
    in_window = [c.window_start_ns >= window.start_ns, c.window_start_ns < window.end_ns]
    if path is not None:
        in_window.append(c.path == path)
    lengths = [
        int(v) for v in conn.execute(select(c.window_ns).where(*in_window).distinct()).scalars()
    ]
    if not lengths:
        return None
    grid = _lcm(lengths)  # every row's window starts on a multiple of its length
    if grid > MAX_STATS_WINDOW_NS:
        return None
    a = -(-window.start_ns // grid) * grid
    b = (min(window.end_ns, now_ns - LAG_NS) // grid) * grid
    if b - a < grid:
        return None
    # Each path from its first row on (spans before it are read): a
    # week's window over a day of rows reads the rows, not every span.
    if candidates is None:
        first = (
            select(c.path, func.min(c.window_start_ns).label("first"))
            .where(c.window_start_ns < b)
            .group_by(c.path)
        )
        if path is not None:
            first = first.where(c.path == path)
        firsts = [(r.path, int(r.first)) for r in conn.execute(first)]
    else:
        # One ordered seek a path: alamos_log_stats has no index starting
        # with the path, and its GROUP BY path took 22 ms on the bench's
        # day (68,964 rows), these 13 seeks under 1 ms.
        firsts = []
        for p in candidates:
            one = (
                select(c.window_start_ns)
                .where(c.path == p, c.window_start_ns < b)
                .order_by(c.window_start_ns)
                .limit(1)
            )
            found = conn.execute(one).scalar()
            if found is not None:
                firsts.append((p, int(found)))
    starts = tuple(sorted((p, max(a, start)) for p, start in firsts if start < b))
    return Cover(a, b, starts, grid) if starts else None


def in_cover(
    table: Table,
    a_ns: int,
    b_ns: int,
    f: Filters,
    levels: tuple[str, ...] | None,
    paths: Sequence[str] | None = None,
) -> list[ColumnElement[bool]]:
    """The rows of the statistics ``table`` whose whole window lies in
    ``[a_ns, b_ns)`` (a :class:`Cover`'s, or its whole hours), of ``paths``
    (every path if ``None``), kept by ``f`` and ``levels`` (its
    :attr:`~alamos.dashboard.db.Filters.span_levels` or ``log_levels``)."""
    c = table.c
    return [
        *([] if paths is None else [c.path.in_(paths)]),
        c.window_start_ns >= a_ns,
        c.window_start_ns + c.window_ns <= b_ns,
        *f.conditions(table, levels),
    ]


@attrs.define
class StatsGroup:
    """What the rows of one group (a path, or a time bucket) hold."""

    count: int = 0
    errors: int = 0
    bins: BinSum = attrs.field(factory=BinSum)


def paths_in(conn: Connection, table: Table = spans) -> list[str]:
    """Every distinct path in ``table`` (``alamos_spans`` or ``alamos_logs``,
    whose indexes start with the path), by a loose index scan (one index
    seek per path, a recursive query both databases run), not a scan of
    every row."""
    s = table.c
    anchor = select(func.min(s.path).label("path"))
    walk = anchor.cte("paths", recursive=True)
    inner = table.alias("later")
    following = select(func.min(inner.c.path)).where(inner.c.path > walk.c.path).scalar_subquery()
    walk = walk.union_all(select(following).where(walk.c.path.is_not(None)))
    return [r.path for r in conn.execute(select(walk.c.path).where(walk.c.path.is_not(None)))]


def slowest_windows(
    conn: Connection, cov: Cover, f: Filters, path: str, limit: int
) -> tuple[list[tuple[int, int]], int] | None:
    """The statistics windows that hold the ``limit`` slowest spans of
    ``path`` in the covered part, and the least duration to look for.

    The rows with the ``limit`` greatest maxima each hold a span that long,
    so the ``limit`` slowest spans last at least the least of those maxima,
    ``floor``; a span of any other row lasts at most its row's maximum, at
    most ``floor``.  So the slowest spans are found among the spans of
    those rows' windows lasting ``floor`` or more: exact, without reading
    the other windows.  ``None`` if no row is covered.
    """
    c = span_stats.c
    top = conn.execute(
        select(c.window_start_ns, c.window_ns, c.max_ns)
        .where(c.path == path, *in_cover(span_stats, cov.a_ns, cov.b_ns, f, f.span_levels))
        .order_by(c.max_ns.desc())
        .limit(limit)
    ).all()
    if not top:
        return None
    floor = min(int(r.max_ns) for r in top)
    # Every row reaching the floor, so that a tie at it is broken as the
    # spans' query breaks it (by trace and span id).
    tied = select(c.window_start_ns, c.window_ns).where(
        c.path == path,
        c.max_ns >= floor,
        *in_cover(span_stats, cov.a_ns, cov.b_ns, f, f.span_levels),
    )
    ranges = {
        (int(r.window_start_ns), int(r.window_start_ns + r.window_ns)) for r in conn.execute(tied)
    }
    return sorted(ranges), floor
