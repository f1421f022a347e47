"""The covered statistics of a long window, read by pieces: the hour tier
where it is complete, the minute rows elsewhere.

The minute rows (``alamos_span_stats``) are the truth for counts and
errors: :func:`pieces` sums them in SQL per *piece*, the rows of one unit
(path, service, node, level) in one hour and, for a chart, one time
bucket.  Only the sketches (p50/p99) are costly: summing a day's 8,289
minute sketches took 0.51 s of the tree page's 0.6 s (cProfile on the
bench, see docs/dashboard.md).  So :func:`sketches` takes a piece's
sketches from ``alamos_span_stats_1h`` when its hour rows stand for exactly
its minute rows:

* the piece is the whole unit-hour (the hour lies inside the covered
  windows, its minute rows all fall in one bucket, and the statistics
  window divides an hour), and
* the hour rows' counts and errors add up to the minute rows' (a process
  killed mid-hour writes no hour row for its part; a restart writes two
  partial ones, which add up).

Otherwise it sums the piece's minute sketches.  Either sum is kept in the
:class:`~alamos.dashboard.sketch_cache.SketchCache`, checked against the
rows the database holds for the piece now, so a repeated page over 24 h
adds about 150 cached hour sums instead of 8,289 minute ones, with or
without hour rows.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

import attrs
from sqlalchemy import Connection, Table, func, select
from sqlalchemy.sql.elements import ColumnElement

from alamos.dashboard.db import Filters
from alamos.dashboard.rollup import Cover, StatsGroup, in_cover
from alamos.dashboard.sketch_cache import SketchCache, Summed
from alamos.report.sql.schema import span_stats, span_stats_1h
from alamos.stats.sketch import BinSum

__all__ = ["HOUR_NS", "Piece", "grouped", "pieces", "sketches", "whole_hours"]

HOUR_NS = 3600 * 10**9
#: The bucket of a piece that is not split by time buckets.
WHOLE = -1

PieceKey = tuple[str, str, str, str, int, int]
"""(path, service, node, level, hour start, bucket or :data:`WHOLE`)."""


@attrs.frozen
class Piece:
    """The covered minute rows of one :data:`PieceKey`: how many, their
    spans and errors, and the first and last window start among them."""

    key: PieceKey
    rows: int
    count: int
    errors: int
    first_ns: int
    last_ns: int

    @property
    def path(self) -> str:
        return self.key[0]

    @property
    def bucket(self) -> int:
        return self.key[5]


def _int(value: Any) -> int:
    return 0 if value is None else int(value)  # PostgreSQL's SUM is a Decimal


def _paths(cov: Cover, path: str | None) -> list[str]:
    return sorted(cov.paths) if path is None else [p for p in (path,) if p in cov.paths]


def pieces(
    conn: Connection, cov: Cover, f: Filters, origin_ns: int, step_ns: int, path: str | None = None
) -> list[Piece]:
    """The covered minute rows (of ``path``, or every covered path) summed
    per piece, the bucket being ``(window start - origin_ns) // step_ns``.

    One aggregate in SQL: 30 ms for the 8,295 rows of a day on the bench,
    where grouping them per minute and unit in Python took 68 ms.
    """
    c = span_stats.c
    hour = (c.window_start_ns // HOUR_NS).label("h")
    bucket = ((c.window_start_ns - origin_ns) // step_ns).label("b")
    cols = [c.path, c.service, c.node, c.level]
    query = (
        select(*cols, hour, bucket, func.count().label("r"), func.sum(c.count).label("n"))
        .add_columns(func.sum(c.errors).label("e"))
        .add_columns(func.min(c.window_start_ns).label("lo"), func.max(c.window_start_ns))
        .where(*in_cover(span_stats, cov.a_ns, cov.b_ns, f, f.span_levels, _paths(cov, path)))
        .group_by(*cols, hour, bucket)
    )
    return [
        Piece(
            (r[0], r[1], r[2], r[3], int(r[4]) * HOUR_NS, int(r[5])),
            int(r[6]),
            _int(r[7]),
            _int(r[8]),
            int(r[9]),
            int(r[10]),
        )
        for r in conn.execute(query)
    ]


def whole_hours(found: Sequence[Piece]) -> list[Piece]:
    """``found`` merged over their buckets: one piece per unit-hour."""
    out: dict[PieceKey, Piece] = {}
    for p in found:
        key = (*p.key[:5], WHOLE)
        held = out.get(key)
        out[key] = (
            attrs.evolve(p, key=key)
            if held is None
            else Piece(
                key,
                held.rows + p.rows,
                held.count + p.count,
                held.errors + p.errors,
                min(held.first_ns, p.first_ns),
                max(held.last_ns, p.last_ns),
            )
        )
    return list(out.values())


def _hour_totals(
    conn: Connection, cov: Cover, f: Filters, path: str | None
) -> dict[PieceKey, tuple[int, int, int]]:
    """The hour rows inside the covered windows: ``(rows, count, errors)`` per unit-hour."""
    a = -(-cov.a_ns // HOUR_NS) * HOUR_NS
    if HOUR_NS % cov.grid or cov.b_ns - a < HOUR_NS:
        return {}
    c = span_stats_1h.c
    cols = [c.path, c.service, c.node, c.level, c.window_start_ns]
    query = (
        select(*cols, func.count().label("r"), func.sum(c.count).label("n"))
        .add_columns(func.sum(c.errors).label("e"))
        .where(*in_cover(span_stats_1h, a, cov.b_ns, f, f.span_levels, _paths(cov, path)))
        .where(c.window_ns == HOUR_NS)
        .group_by(*cols)
    )
    return {
        (r[0], r[1], r[2], r[3], int(r[4]), WHOLE): (int(r[5]), _int(r[6]), _int(r[7]))
        for r in conn.execute(query)
    }


def _spans(found: Sequence[tuple[int, int]], gap_ns: int) -> list[tuple[int, int]]:
    """``[lo, hi]`` ranges covering the given ones, merged where less than
    ``gap_ns`` apart (a few queries rather than one per piece)."""
    out: list[list[int]] = []
    for lo, hi in sorted(found):
        if out and lo - out[-1][1] <= gap_ns:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(lo, hi) for lo, hi in out]


def _read(
    conn: Connection,
    table: Table,
    conds: list[ColumnElement[bool]],
    ranges: list[tuple[int, int]],
    key_of: Callable[[Any], PieceKey],
    wanted: dict[PieceKey, PieceKey],
    into: dict[PieceKey, BinSum],
) -> None:
    """Add the sketches of ``table``'s rows in ``ranges`` (of window start)
    to the piece ``wanted[key_of(row)]``, for the rows whose key is wanted."""
    c = table.c
    cols = [c.path, c.service, c.node, c.level, c.window_start_ns, c.sketch]
    for lo, hi in ranges:
        query = select(*cols).where(*conds, c.window_start_ns >= lo, c.window_start_ns <= hi)
        for r in conn.execute(query):
            key = wanted.get(key_of(r))
            if key is not None:
                bins = into.get(key)
                if bins is None:
                    bins = into[key] = BinSum()
                bins.add_text(r[5])


def sketches(
    conn: Connection,
    cov: Cover,
    f: Filters,
    found: Sequence[Piece],
    cache: SketchCache,
    buckets: tuple[int, int] | None = None,
    path: str | None = None,
) -> dict[PieceKey, BinSum | Summed]:
    """Each piece's summed sketches: its hour rows' where they stand for its
    minute rows (see the module docstring), else its minute rows'; from
    ``cache`` if it holds them for the rows the database has now, else read
    and kept.  ``buckets``: the ``(origin_ns, step_ns)`` that split
    ``found`` (:func:`pieces`), ``None`` for :func:`whole_hours`."""
    hours = _hour_totals(conn, cov, f, path)
    split: dict[tuple[str, str, str, str, int], int] = {}
    for p in found:
        split[p.key[:5]] = split.get(p.key[:5], 0) + 1
    out: dict[PieceKey, BinSum | Summed] = {}
    checks: dict[PieceKey, tuple[tuple[Any, ...], tuple[int, int]]] = {}
    by_hour: dict[PieceKey, PieceKey] = {}
    by_minutes: dict[PieceKey, PieceKey] = {}
    minute_ranges: list[tuple[int, int]] = []
    for p in found:
        unit_hour = p.key[:5]
        total = hours.get((*unit_hour, WHOLE))
        if total is not None and split[unit_hour] == 1 and total[1:] == (p.count, p.errors):
            cache_key: tuple[Any, ...] = ("1h", *unit_hour)
            check = (total[0], total[1])
        else:
            cache_key = ("1m", *p.key[:4], p.first_ns, p.last_ns)
            check = (p.rows, p.count)
        held = cache.get(cache_key, check)
        if held is not None:
            out[p.key] = held
            continue
        checks[p.key] = (cache_key, check)
        if cache_key[0] == "1h":
            by_hour[(*unit_hour, WHOLE)] = p.key
        else:
            by_minutes[p.key] = p.key
            minute_ranges.append((p.first_ns, p.last_ns))
    read: dict[PieceKey, BinSum] = {}
    paths = _paths(cov, path)
    if by_hour:
        starts = sorted({k[4] for k in by_hour})
        hour_conds = in_cover(span_stats_1h, starts[0], cov.b_ns, f, f.span_levels, paths)
        _read(
            conn,
            span_stats_1h,
            [*hour_conds, span_stats_1h.c.window_ns == HOUR_NS],
            _spans([(s, s) for s in starts], 10 * HOUR_NS),
            lambda r: (r[0], r[1], r[2], r[3], int(r[4]), WHOLE),
            by_hour,
            read,
        )
    if by_minutes:
        origin, step = buckets if buckets is not None else (0, 0)

        def minute_key(r: Any) -> PieceKey:
            start = int(r[4])
            b = (start - origin) // step if step else WHOLE
            return (r[0], r[1], r[2], r[3], start // HOUR_NS * HOUR_NS, b)

        _read(
            conn,
            span_stats,
            in_cover(span_stats, cov.a_ns, cov.b_ns, f, f.span_levels, paths),
            _spans(minute_ranges, 10 * cov.grid),
            minute_key,
            by_minutes,
            read,
        )
    for key, bins in read.items():
        out[key] = bins
        compact = bins.compact()
        if compact is not None:
            cache_key, check = checks[key]
            low, counts, zero = compact
            cache.put(cache_key, Summed(check, low, counts, zero))
    return out


K = TypeVar("K", bound=Hashable)


def grouped(
    found: Sequence[Piece], sums: dict[PieceKey, BinSum | Summed], key: Callable[[Piece], K]
) -> dict[K, StatsGroup]:
    """Pieces gathered by ``key(piece)``: counts, errors and (``sums``) bins added."""
    out: dict[K, StatsGroup] = {}
    for p in found:
        k = key(p)
        group = out.get(k)
        if group is None:
            group = out[k] = StatsGroup()
        group.count += p.count
        group.errors += p.errors
        held = sums.get(p.key)
        if isinstance(held, Summed):
            group.bins.add_counts(held.low, held.counts)
            group.bins.zero += held.zero
        elif held is not None:
            group.bins.add_sum(held)
    return out
