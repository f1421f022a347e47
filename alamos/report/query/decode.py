"""Rows of the alamos tables back into the record classes.

Shared by every reader of :mod:`alamos.report.query` (traces, logs,
metrics); the value decoders live in :mod:`alamos.report.sql.reading`
(the statistics read them too).  Decoding is lenient on purpose: the tables are shared and
public, so one corrupt JSON value or unknown level text shows as empty or
``prod`` rather than making a whole trace or listing unreadable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
from sqlalchemy import Table, Text, cast

from alamos.core.records import EventRecord, LogRecord, SpanRecord
from alamos.report.sql.reading import decode_json, decode_level
from alamos.report.sql.reading import decode_mapping as _mapping
from alamos.report.sql.schema import JSONType, field_of
from alamos.report.sql.schema import logs as logs_table
from alamos.report.sql.schema import spans as spans_table

__all__ = ["decode_json", "decode_level", "read_log", "read_span", "text_columns"]

R = TypeVar("R")


def text_columns(table: Table) -> list[Any]:
    """The columns of ``table``, JSON ones read as text.

    Decoding is then ours (:func:`decode_json`) and lenient: one corrupt JSON value
    in a shared table must not make a whole trace unreadable.
    """
    return [cast(c, Text).label(c.name) if c.type is JSONType else c for c in table.columns]


def _events(value: object) -> tuple[EventRecord, ...]:
    value = decode_json(value)
    if not isinstance(value, list):
        return ()
    out = []
    for e in value:
        if isinstance(e, dict):
            ts = e.get("ts_ns")
            out.append(
                EventRecord(
                    str(e.get("name", "")),
                    ts if isinstance(ts, int) else 0,
                    _mapping(e.get("attributes")),
                )
            )
    return tuple(out)


#: How a column's value becomes the field it stores, by the field's type.
_READERS: dict[str, Callable[[object], Any]] = {
    "Level": decode_level,
    "Mapping[str, AttrValue]": _mapping,
    "tuple[EventRecord, ...]": _events,
}


def _reader(cls: type[R], table: Table) -> Callable[[Any], R]:
    """``row -> record`` for the rows of ``table``: each field of ``cls`` from
    the column that stores it (:func:`~alamos.report.sql.schema.field_of`)."""
    column = {field_of(c): c.name for c in table.columns}
    fields: tuple[attrs.Attribute[Any], ...] = attrs.fields(cls)  # type: ignore[arg-type]
    plan = [(column[f.name], _READERS.get(str(f.type))) for f in fields]

    def read(row: Any) -> R:
        values = row._mapping
        return cls(*[values[c] if conv is None else conv(values[c]) for c, conv in plan])

    return read


read_span = _reader(SpanRecord, spans_table)
read_log = _reader(LogRecord, logs_table)
