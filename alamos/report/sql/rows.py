"""Records to database rows: the conversion :class:`~alamos.report.sql.SQLExporter`
does for every batch, on its delivery thread.

A record's row is a tuple in the column order of its table (:data:`COLUMNS`),
with every value made storable by :mod:`alamos.report.sql.coerce` (the rules
are in :func:`rows_for`).  Each column is converted by the rule for its SQL
type (:data:`_RULES`), from the record field it stores
(:func:`~alamos.report.sql.schema.field_of`); a field typed
:class:`~alamos.core.level.Level` is a level name, span events are a list of
``{"name", "ts_ns", "attributes"}`` objects, and ``duration_ns`` is
``end_ns - start_ns``.

Every record takes a fast path first: one C-speed check that all its text
is clean ASCII (joined into one string: a ``TypeError`` there means a value
is not text), a range check of the times, and the JSON columns written
straight by the reused C encoder (``"{}"`` and ``"[]"`` for the empty ones,
the common case).  Anything that fails a check, or raises, goes through the
column-by-column converters, which handle any value; the two paths give the
same row for the same record.

This runs for every span and log exported, so both converters of each table
are generated from its columns (:func:`alamos.core.codegen.compile_function`):
the code that runs is what one would write by hand for each table, without a
loop over the columns or a call per clean value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from types import MappingProxyType
from typing import Any, get_args

import attrs
from sqlalchemy import JSON, BigInteger, Column, Double, Table, Text

from alamos.core.codegen import compile_function
from alamos.core.records import EventRecord, Record
from alamos.report.sql.coerce import (
    I64_MAX,
    LEVEL_NAMES,
    json_col,
    json_data,
    level_name,
    opt_text,
    req_text,
    to_int,
    to_num,
)
from alamos.report.sql.schema import TABLES, field_of

__all__ = ["COLUMNS", "Row", "convert", "rows_for"]

Row = tuple[Any, ...]
_JsonFn = Callable[[object], Any]
_Plain = Callable[[Any, _JsonFn], Row]
_Fast = Callable[[Any], Row]

#: Column names of each table, in the order of the converters' tuples.
COLUMNS: dict[str, tuple[str, ...]] = {
    name: tuple(c.name for c in t.columns) for name, t in TABLES.items()
}


def _events(events: Sequence[EventRecord]) -> list[dict[str, Any]]:
    if not events:
        return []
    return [
        {"name": req_text(e.name), "ts_ns": to_int(e.ts_ns), "attributes": e.attributes}
        for e in events
    ]


def _json(value: Any) -> str | None:
    """A JSON column: the empty dict (or read-only view of one) is ``"{}"``."""
    if not value and (type(value) is MappingProxyType or type(value) is dict):
        return "{}"
    return json_col(value)


# ---------------------------------------------------------------------------
# The rules, by column (see the module docstring)
# ---------------------------------------------------------------------------


@attrs.frozen
class _Rule:
    """How one column is converted; ``{x}`` stands for the field's value
    (``r.field`` in the plain converter, a local in the fast one)."""

    plain: str
    """The plain converter's expression: any value."""
    fast: str = "{x}"
    """The fast path's expression, once its checks passed."""
    probe: str | None = None
    """Text joined into the probe, which must be clean ASCII."""
    check: str | None = None
    """A condition under which the fast path gives up."""
    before: str | None = None
    """A statement the fast path runs before its checks."""


_RULES: dict[str, _Rule] = {
    "text": _Rule("req_text({x})", probe="{x}"),
    "text | None": _Rule("opt_text({x})", probe='"" if {x} is None else {x}'),
    "level": _Rule(
        "level_name({x})",
        fast="{x}_name",
        before="{x}_name = LEVEL_NAMES.get({x})",
        check="{x}_name is None",
    ),
    "int": _Rule("to_int({x})", check="type({x}) is not int or not 0 <= {x} <= I64_MAX"),
    "float": _Rule("to_num({x})", fast="to_num({x})"),
    "json": _Rule("j({x})", fast="_json({x})"),
    "events": _Rule("j(_events({x}))", fast='"[]" if not {x} else json_col(_events({x}))'),
}
#: ``duration_ns``, the one derived column (no field: see ``schema.field_of``).
_DURATION = _Rule("to_int(to_int(r.end_ns) - to_int(r.start_ns))", fast="v_end_ns - v_start_ns")

_NAMESPACE: dict[str, Any] = {
    "I64_MAX": I64_MAX,
    "LEVEL_NAMES": LEVEL_NAMES,
    "_events": _events,
    "_json": _json,
    "json_col": json_col,
    "level_name": level_name,
    "opt_text": opt_text,
    "req_text": req_text,
    "to_int": to_int,
    "to_num": to_num,
}


def _rule(table: Table, column: Column[Any], field_type: object) -> _Rule:
    """The rule for ``column``: by the type of the field it stores, for a
    level or events, else by its SQL type."""
    if field_type == "Level":
        return _RULES["level"]
    if field_type == "tuple[EventRecord, ...]":
        return _RULES["events"]
    sql_type = column.type
    if isinstance(sql_type, Text):
        return _RULES["text | None" if column.nullable else "text"]
    if isinstance(sql_type, BigInteger):
        return _RULES["int"]
    if isinstance(sql_type, Double):
        return _RULES["float"]
    if isinstance(sql_type, JSON):
        return _RULES["json"]
    raise TypeError(f"rows: no rule for {table.name}.{column.name} ({sql_type})")


_PLAIN_SOURCE = """\
def {name}(r, j):
    return (
{plain}    )
"""

_FAST_SOURCE = """\
def {name}_fast(r):
{loads}    try:
{before}        probe = "".join((
{probe}        ))
        if (
            {checks}
        ):
            return {name}(r, json_col)
        return (
{fast}        )
    except Exception:
        return {name}(r, json_col)
"""


def _lines(items: Iterable[str], indent: int, end: str = ",") -> str:
    return "".join(f"{' ' * indent}{item}{end}\n" for item in items)


def _converters(cls: type) -> tuple[_Plain, _Fast]:
    """The plain and fast converters of the record class ``cls``, generated
    from the columns of its table (see the module docstring)."""
    table = TABLES[cls.table]  # type: ignore[attr-defined]
    types = {f.name: f.type for f in attrs.fields(cls)}
    fields: list[str] = []
    plain: list[str] = []
    fast: list[str] = []
    probe: list[str] = []
    before: list[str] = []
    checks = ["not probe.isascii()", '"\\x00" in probe']
    for column in table.columns:
        field = field_of(column)
        if field is None:
            rule = _DURATION
        else:
            rule = _rule(table, column, types[field])
            fields.append(field)
        x = f"v_{field}"
        plain.append(rule.plain.format(x=f"r.{field}"))
        fast.append(rule.fast.format(x=x))
        for out, template in ((probe, rule.probe), (checks, rule.check), (before, rule.before)):
            if template is not None:
                out.append(template.format(x=x))
    name = f"{table.name}_row"
    plain_source = _PLAIN_SOURCE.format(name=name, plain=_lines(plain, 8))
    fast_source = _FAST_SOURCE.format(
        name=name,
        loads=_lines((f"v_{f} = r.{f}" for f in fields), 4, end=""),
        before=_lines(before, 8, end=""),
        probe=_lines(probe, 12),
        checks="\n            or ".join(checks),
        fast=_lines(fast, 12),
    )
    namespace = dict(_NAMESPACE)
    return (
        compile_function(name, plain_source, namespace, owner=__name__),
        compile_function(f"{name}_fast", fast_source, namespace, owner=__name__),
    )


_CLASSES: tuple[type, ...] = get_args(Record)
_GENERATED = {cls: _converters(cls) for cls in _CLASSES}
#: For each record class: its table and its plain converter ``(record, json) -> row``.
_CONVERTERS: dict[type[Any], tuple[str, _Plain]] = {
    cls: (cls.table, plain)  # type: ignore[attr-defined]
    for cls, (plain, _) in _GENERATED.items()
}
_FAST: dict[type[Any], tuple[str, _Fast]] = {
    cls: (cls.table, fast)  # type: ignore[attr-defined]
    for cls, (_, fast) in _GENERATED.items()
}


def _unknown(r: object) -> TypeError:
    return TypeError(f"SQLExporter cannot store a {type(r).__name__}: {r!r:.200}")


def convert(records: Iterable[Record]) -> dict[str, list[Row]]:
    """The rows to store for ``records`` by table name, JSON columns as text
    (what :class:`~alamos.report.sql.SQLExporter` writes).  Raises TypeError
    for an object that is not a record."""
    out: dict[str, list[Row]] = {}
    fast: _Fast | None = None
    last: type | None = None
    add: Callable[[Row], None] | None = None
    for r in records:
        t = type(r)
        if t is not last:
            try:
                table, fast = _FAST[t]
            except KeyError:
                raise _unknown(r) from None
            add = out.setdefault(table, []).append
            last = t
        add(fast(r))  # type: ignore[misc]
    return out


def rows_for(records: Iterable[Record]) -> dict[str, list[dict[str, Any]]]:
    """The rows to insert for ``records``, by table name (only non-empty tables).

    Each row is a dict of column name to value for the tables of
    :mod:`alamos.report.sql.schema`.  Values are made safe to store:

    * text: NUL characters and lone surrogates become U+FFFD
      (:func:`~alamos.core.json.clean_text`); everything else, SQL-looking
      text and huge strings included, is kept verbatim (SQL is always
      parameterised).  ``None`` in a NOT NULL column becomes ``""``; a value of
      another type its ``str()``.
    * JSON columns (``attributes``, ``events``, ``labels``, ``buckets``,
      ``report``) hold plain JSON data (:data:`~alamos.core.json.STORED_JSON`):
      non-finite floats become the strings ``"NaN"``, ``"Infinity"``,
      ``"-Infinity"``.
    * the numeric metric columns ``value``, ``sum`` and ``count`` keep NaN and
      ±inf as floats: PostgreSQL (double precision) stores all three, SQLite
      stores ±inf but stores NaN as NULL (SQLite has no NaN).
    * integer columns are clamped to 64 bits.
    * levels are the strings ``"bench"``, ``"debug"``, ``"prod"``.

    The exporter itself uses the same conversion (:func:`convert`), with JSON
    columns serialised by :func:`~alamos.report.sql.coerce.dumps_json`.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        try:
            table, row = _CONVERTERS[type(r)]
        except KeyError:
            raise _unknown(r) from None
        out.setdefault(table, []).append(dict(zip(COLUMNS[table], row(r, json_data), strict=True)))
    return out
