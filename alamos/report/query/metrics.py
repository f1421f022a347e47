"""The latest sample of every metric series in the database: ``alamos metrics``.

A series is one metric (``path``, ``name``) with one label set, as exported
by one process (``service``, ``node``): each process reports its own
counters.  Snapshots export every series at a flush and only the changed
ones periodically, so each series' latest row is found on its own, with a
window function (``row_number() OVER (PARTITION BY the series ORDER BY
ts_ns DESC)``, SQLite 3.25+ and PostgreSQL), in the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, Text, and_, cast, func, select

from alamos.core.records import MetricRecord
from alamos.report.query.decode import decode_json, decode_level, text_columns
from alamos.report.sql.reading import in_subtree
from alamos.report.sql.reading import run_read as _run
from alamos.report.sql.schema import metrics as metrics_table

__all__ = ["latest_metrics"]


def _labels(value: object) -> Mapping[str, str]:
    value = decode_json(value)
    if not isinstance(value, dict):
        return MappingProxyType({})
    return MappingProxyType({str(k): str(v) for k, v in value.items()})


def _buckets(value: object) -> Mapping[str, float] | None:
    value = decode_json(value)
    if not isinstance(value, dict):
        return None
    return MappingProxyType(
        {str(k): float(v) for k, v in value.items() if isinstance(v, int | float)}
    )


def _record(row: Any) -> MetricRecord:
    m = row._mapping
    return MetricRecord(
        m["id"],
        m["ts_ns"],
        m["path"],
        m["name"],
        m["kind"],
        _labels(m["labels"]),
        m["value"],
        m["sum"],
        m["count"],
        _buckets(m["buckets"]),
        m["service"],
        m["node"],
        decode_level(m["level"]),
    )


def latest_metrics(
    url: str, *, path: str | None = None, name: str | None = None
) -> list[MetricRecord]:
    """The latest sample of every series, by path, name, labels, service and
    node.  ``path`` keeps that experiment and its subtree, ``name`` one metric
    name.  Raises :class:`~alamos.core.errors.TraceQueryError` if the database
    cannot be read."""
    c = metrics_table.c
    conds: list[Any] = []
    if path is not None:
        conds.append(in_subtree(c.path, path))
    if name is not None:
        conds.append(c.name == name)
    labels_text = cast(c.labels, Text)
    rank = (
        func.row_number()
        .over(
            partition_by=[c.path, c.name, labels_text, c.service, c.node],
            order_by=[c.ts_ns.desc(), c.id.desc()],
        )
        .label("rank")
    )
    ranked = select(*text_columns(metrics_table), labels_text.label("labels_text"), rank)
    if conds:
        ranked = ranked.where(and_(*conds))
    sub = ranked.subquery()
    stmt = (
        select(sub)
        .where(sub.c.rank == 1)
        .order_by(sub.c.path, sub.c.name, sub.c.labels_text, sub.c.service, sub.c.node)
    )

    def work(conn: Connection) -> list[MetricRecord]:
        return [_record(r) for r in conn.execute(stmt)]

    return _run(url, work)
