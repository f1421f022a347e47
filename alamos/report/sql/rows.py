"""Records to database rows: the conversion :class:`~alamos.report.sql.SQLExporter`
does for every batch, on its delivery thread.

Each converter gives a record's row as a tuple in the column order of its
table (:data:`COLUMNS`), with every value made storable by
:mod:`alamos.report.sql.coerce` (the rules are in :func:`rows_for`).

Spans and logs, nearly every row, take a fast path first: one C-speed check
that all their text is clean ASCII (joined into one string: a ``TypeError``
there means a value is not text), a range check of the times, and the JSON
columns written straight by the reused C encoder (``"{}"`` and ``"[]"`` for
the empty ones, the common case).  Anything that fails a check, or raises,
goes through the field-by-field converters, which handle any value; the two
paths give the same row for the same record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from types import MappingProxyType
from typing import Any

from alamos.core.records import (
    EventRecord,
    ExperimentRecord,
    LogRecord,
    MetricRecord,
    Record,
    ReportRecord,
    SpanRecord,
)
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
from alamos.report.sql.schema import TABLES, experiments, logs, metrics, reports, spans

__all__ = ["COLUMNS", "Row", "convert", "rows_for"]

Row = tuple[Any, ...]
_JsonFn = Callable[[object], Any]
_MAPPINGPROXY = MappingProxyType

#: Column names of each table, in the order of the converters' tuples.
COLUMNS: dict[str, tuple[str, ...]] = {
    name: tuple(c.name for c in t.columns) for name, t in TABLES.items()
}

# ---------------------------------------------------------------------------
# Field by field: any value
# ---------------------------------------------------------------------------


def _events(events: Sequence[EventRecord]) -> list[dict[str, Any]]:
    if not events:
        return []
    return [
        {"name": req_text(e.name), "ts_ns": to_int(e.ts_ns), "attributes": e.attributes}
        for e in events
    ]


def _span_row(r: SpanRecord, j: _JsonFn) -> Row:
    start, end = to_int(r.start_ns), to_int(r.end_ns)
    return (
        req_text(r.span_id),
        req_text(r.trace_id),
        opt_text(r.parent_id),
        req_text(r.path),
        req_text(r.name),
        level_name(r.level),
        start,
        end,
        to_int(end - start),
        req_text(r.status),
        opt_text(r.error_text),
        j(r.attributes),
        j(_events(r.events)),
        req_text(r.service),
        req_text(r.node),
        opt_text(r.session_id),
        opt_text(r.location),
    )


def _log_row(r: LogRecord, j: _JsonFn) -> Row:
    return (
        req_text(r.id),
        to_int(r.ts_ns),
        req_text(r.path),
        req_text(r.level),
        req_text(r.message),
        opt_text(r.trace_id),
        opt_text(r.span_id),
        j(r.attributes),
        opt_text(r.location),
        req_text(r.service),
        req_text(r.node),
        opt_text(r.session_id),
    )


def _metric_row(r: MetricRecord, j: _JsonFn) -> Row:
    return (
        req_text(r.id),
        to_int(r.ts_ns),
        req_text(r.path),
        req_text(r.name),
        req_text(r.kind),
        j(r.labels),
        to_num(r.value),
        to_num(r.sum),
        to_num(r.count),
        j(r.buckets),
        req_text(r.service),
        req_text(r.node),
        level_name(r.level),
    )


def _report_row(r: ReportRecord, j: _JsonFn) -> Row:
    return (
        req_text(r.id),
        to_int(r.ts_ns),
        req_text(r.path),
        req_text(r.key),
        j(r.report),
        req_text(r.service),
        req_text(r.node),
        level_name(r.level),
    )


def _experiment_row(r: ExperimentRecord, j: _JsonFn) -> Row:
    return (
        req_text(r.path),
        opt_text(r.parent_path),
        req_text(r.key),
        req_text(r.service),
        req_text(r.node),
        to_int(r.created_ns),
    )


_CONVERTERS: dict[type[Any], tuple[str, Callable[[Any, _JsonFn], Row]]] = {
    SpanRecord: (spans.name, _span_row),
    LogRecord: (logs.name, _log_row),
    MetricRecord: (metrics.name, _metric_row),
    ReportRecord: (reports.name, _report_row),
    ExperimentRecord: (experiments.name, _experiment_row),
}

# ---------------------------------------------------------------------------
# The fast paths (see the module docstring)
# ---------------------------------------------------------------------------


def _json(value: Any) -> str | None:
    """A JSON column: the empty dict (or read-only view of one) is ``"{}"``."""
    if not value and (type(value) is _MAPPINGPROXY or type(value) is dict):
        return "{}"
    return json_col(value)


def _span_fast(r: SpanRecord) -> Row:
    pid, err, session, location = r.parent_id, r.error_text, r.session_id, r.location
    sid, tid, path, name, status = r.span_id, r.trace_id, r.path, r.name, r.status
    service, node, start, end = r.service, r.node, r.start_ns, r.end_ns
    try:
        level = LEVEL_NAMES.get(r.level)
        probe = "".join(
            (
                sid,
                tid,
                path,
                name,
                status,
                service,
                node,
                "" if pid is None else pid,
                "" if err is None else err,
                "" if session is None else session,
                "" if location is None else location,
            )
        )
        if (
            level is None
            or not probe.isascii()
            or "\x00" in probe
            or type(start) is not int
            or type(end) is not int
            or not 0 <= start <= I64_MAX
            or not 0 <= end <= I64_MAX
        ):
            return _span_row(r, json_col)
        events = r.events
        return (
            sid,
            tid,
            pid,
            path,
            name,
            level,
            start,
            end,
            end - start,
            status,
            err,
            _json(r.attributes),
            "[]" if not events else json_col(_events(events)),
            service,
            node,
            session,
            location,
        )
    except Exception:
        return _span_row(r, json_col)


def _log_fast(r: LogRecord) -> Row:
    tid, sid, location, session = r.trace_id, r.span_id, r.location, r.session_id
    rid, ts, path, level, message = r.id, r.ts_ns, r.path, r.level, r.message
    service, node = r.service, r.node
    try:
        probe = "".join(
            (
                rid,
                path,
                level,
                message,
                service,
                node,
                "" if tid is None else tid,
                "" if sid is None else sid,
                "" if location is None else location,
                "" if session is None else session,
            )
        )
        if not probe.isascii() or "\x00" in probe or type(ts) is not int or not 0 <= ts <= I64_MAX:
            return _log_row(r, json_col)
        return (
            rid,
            ts,
            path,
            level,
            message,
            tid,
            sid,
            _json(r.attributes),
            location,
            service,
            node,
            session,
        )
    except Exception:
        return _log_row(r, json_col)


def _unknown(r: object) -> TypeError:
    return TypeError(f"SQLExporter cannot store a {type(r).__name__}: {r!r:.200}")


def convert(records: Iterable[Record]) -> dict[str, list[Row]]:
    """The rows to store for ``records`` by table name, JSON columns as text
    (what :class:`~alamos.report.sql.SQLExporter` writes).  Raises TypeError
    for an object that is not a record."""
    span_rows: list[Row] = []
    log_rows: list[Row] = []
    out: dict[str, list[Row]] = {}
    add_span, add_log = span_rows.append, log_rows.append
    for r in records:
        t = type(r)
        if t is SpanRecord:
            add_span(_span_fast(r))  # type: ignore[arg-type]
        elif t is LogRecord:
            add_log(_log_fast(r))  # type: ignore[arg-type]
        else:
            try:
                table, row = _CONVERTERS[t]
            except KeyError:
                raise _unknown(r) from None
            out.setdefault(table, []).append(row(r, json_col))
    if span_rows:
        out[spans.name] = span_rows
    if log_rows:
        out[logs.name] = log_rows
    return out


def rows_for(records: Iterable[Record]) -> dict[str, list[dict[str, Any]]]:
    """The rows to insert for ``records``, by table name (only non-empty tables).

    Each row is a dict of column name to value for the tables of
    :mod:`alamos.report.sql.schema`.  Values are made safe to store:

    * text: NUL characters and lone surrogates become U+FFFD
      (:func:`~alamos.report.sql.coerce.clean_text`); everything else, SQL-looking
      text and huge strings included, is kept verbatim (SQL is always
      parameterised).  ``None`` in a NOT NULL column becomes ``""``; a value of
      another type its ``str()``.
    * JSON columns (``attributes``, ``events``, ``labels``, ``buckets``,
      ``report``) hold plain JSON data (:func:`~alamos.report.sql.coerce.json_safe`):
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
