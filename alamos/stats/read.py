"""Reading statistics rows back from ``alamos_span_stats``, and summarising them.

:func:`read_stats` returns the stored rows (as
:class:`~alamos.core.records.SpanStatsRecord`) selected in the database;
:func:`summarize` merges them per span name or per path (what
``alamos stats`` prints).  Only the selected rows come back, never spans.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import attrs
from sqlalchemy import Connection, Text, and_, cast, select

from alamos.core.records import SpanStatsRecord
from alamos.report.sql.reading import decode_level, decode_mapping, in_subtree, run_read
from alamos.report.sql.schema import span_stats
from alamos.stats.merging import SpanStats, group_by

__all__ = ["BY", "Summary", "read_stats", "summarize"]

By = Literal["name", "path"]
#: What ``summarize`` groups by: ``name`` is (path, span name), ``path`` the path.
BY: tuple[By, ...] = ("name", "path")


def read_stats(
    url: str,
    *,
    path: str | None = None,
    name: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> list[SpanStatsRecord]:
    """The statistics rows in the database at ``url``: of the experiment
    ``path`` and the ones below it, of the span ``name``, of the windows
    that overlap ``[since_ns, until_ns)``; in window, path, name order.

    Raises :class:`~alamos.core.errors.TraceQueryError` if the database
    cannot be read or holds no statistics table.
    """
    c = span_stats.c
    conds = []
    if path is not None:
        conds.append(in_subtree(span_stats.c.path, path))
    if name is not None:
        conds.append(c.name == name)
    if since_ns is not None:
        conds.append(c.window_start_ns + c.window_ns > int(since_ns))
    if until_ns is not None:
        conds.append(c.window_start_ns < int(until_ns))
    columns = [cast(c.attributes, Text).label("attributes") if x is c.attributes else x for x in c]
    query = select(*columns).order_by(c.window_start_ns, c.path, c.name, c.status, c.id)
    if conds:
        query = query.where(and_(*conds))

    def work(conn: Connection) -> list[SpanStatsRecord]:
        return [_record(row._mapping) for row in conn.execute(query)]

    return run_read(url, work, table=span_stats.name)


def _record(m: Any) -> SpanStatsRecord:
    return SpanStatsRecord(
        id=m["id"],
        window_start_ns=int(m["window_start_ns"]),
        window_ns=int(m["window_ns"]),
        path=m["path"],
        name=m["name"],
        status=m["status"],
        level=decode_level(m["level"]),
        count=int(m["count"]),
        errors=int(m["errors"]),
        sum_ns=int(m["sum_ns"]),
        mean_ns=float(m["mean_ns"]),
        m2=float(m["m2"]),
        min_ns=int(m["min_ns"]),
        max_ns=int(m["max_ns"]),
        sketch=m["sketch"],
        attributes=decode_mapping(m["attributes"]),
        service=m["service"],
        node=m["node"],
    )


@attrs.frozen
class Summary:
    """One line of ``alamos stats``: a group and its merged statistics."""

    path: str
    name: str | None
    """``None`` when grouped by path."""
    stats: SpanStats

    def as_dict(self) -> dict[str, Any]:
        s = self.stats
        return {
            "path": self.path,
            "name": self.name,
            "count": s.count,
            "errors": s.errors,
            "error_rate": s.error_rate,
            "mean_ns": s.mean_ns,
            "stddev_ns": s.stddev_ns,
            "min_ns": s.min_ns,
            "p50_ns": s.quantile(0.5),
            "p90_ns": s.quantile(0.9),
            "p99_ns": s.quantile(0.99),
            "max_ns": s.max_ns,
            "attributes": {k: attrs.asdict(v) for k, v in s.attributes.items()},
            "rows": s.rows,
        }


def summarize(rows: Iterable[SpanStatsRecord], by: By = "name") -> list[Summary]:
    """``rows`` merged per (path, span name), or per path with ``by="path"``;
    busiest first (then by path and name)."""
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}, not {by!r}")
    out: Sequence[Summary]
    if by == "name":
        merged = group_by(rows, lambda r: (_path(r), _name(r)))
        out = [Summary(p, n, s) for (p, n), s in merged.items()]
    else:
        by_path = group_by(rows, _path)
        out = [Summary(p, None, s) for p, s in by_path.items()]
    return sorted(out, key=lambda x: (-x.stats.count, x.path, x.name or ""))


def _path(row: Any) -> str:
    return str(row.path)


def _name(row: Any) -> str:
    return str(row.name)
