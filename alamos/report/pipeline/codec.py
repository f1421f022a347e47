"""A lossless JSON codec for records, used by the on-disk spool.

``encode(record)`` gives a JSON-able dict whose ``"t"`` key names the record
kind, ``decode(d)`` gives the record back, equal to the original:

* a :class:`~alamos.core.level.Level` is stored as its name (``"PROD"``);
* mappings are stored as JSON objects and come back as :class:`dict`;
* attribute values that are tuples (JSON arrays) come back as tuples, nested
  ones too; span events are ``[name, ts_ns, attributes]`` triples;
* ``ReportRecord.report`` (arbitrary data) keeps lists as lists and tuples as
  tuples (a tuple is stored as ``{"__tuple__": [...]}``);
* NaN and infinities are written as ``NaN`` / ``Infinity`` / ``-Infinity``
  (what :mod:`json` does with ``allow_nan=True``) and read back as floats.

Values JSON cannot represent (only possible in ``report``) are stored as their
``str``.  ``dumps_batch`` writes one ASCII JSON array per line, so a line never
contains a raw newline and a torn line can never be mistaken for two.

The encoders are written out per class (no ``attrs.asdict``): this runs on the
collector's worker thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from alamos.core.level import Level
from alamos.core.records import (
    EventRecord,
    ExperimentRecord,
    LogRecord,
    MetricRecord,
    Record,
    ReportRecord,
    SpanRecord,
)

__all__ = ["decode", "dumps_batch", "encode", "loads_batch"]

_LEVELS: Mapping[str, Level] = Level.__members__
_TUPLE = "__tuple__"


def _dict(m: Mapping[str, Any]) -> dict[str, Any]:
    return m if type(m) is dict else dict(m)


def _tuplify(v: list[Any]) -> tuple[Any, ...]:
    return tuple([_tuplify(x) if type(x) is list else x for x in v])


def _dec_attrs(d: dict[str, Any]) -> dict[str, Any]:
    for v in d.values():
        if type(v) is list:
            return {k: _tuplify(x) if type(x) is list else x for k, x in d.items()}
    return d


def _enc_any(v: Any) -> Any:
    """Encode arbitrary data (``report``): tuples are tagged, the rest is walked."""
    t = type(v)
    if t is str or t is int or t is float or t is bool or v is None:
        return v
    if isinstance(v, Mapping):
        return {str(k): _enc_any(x) for k, x in v.items()}
    if isinstance(v, tuple):
        return {_TUPLE: [_enc_any(x) for x in v]}
    if isinstance(v, list):
        return [_enc_any(x) for x in v]
    return v  # left to json (int/float subclasses) or to ``_default`` (-> str)


def _dec_any(v: Any) -> Any:
    t = type(v)
    if t is dict:
        if len(v) == 1 and _TUPLE in v and type(v[_TUPLE]) is list:
            return tuple(_dec_any(x) for x in v[_TUPLE])
        return {k: _dec_any(x) for k, x in v.items()}
    if t is list:
        return [_dec_any(x) for x in v]
    return v


def _enc_span(r: SpanRecord) -> dict[str, Any]:
    return {
        "t": "span",
        "trace_id": r.trace_id,
        "span_id": r.span_id,
        "parent_id": r.parent_id,
        "path": r.path,
        "name": r.name,
        "level": r.level.name,
        "start_ns": r.start_ns,
        "end_ns": r.end_ns,
        "status": r.status,
        "error_text": r.error_text,
        "attributes": _dict(r.attributes),
        "events": [[e.name, e.ts_ns, _dict(e.attributes)] for e in r.events],
        "service": r.service,
        "node": r.node,
        "session_id": r.session_id,
        "location": r.location,
    }


def _dec_span(d: dict[str, Any]) -> SpanRecord:
    return SpanRecord(
        trace_id=d["trace_id"],
        span_id=d["span_id"],
        parent_id=d["parent_id"],
        path=d["path"],
        name=d["name"],
        level=_LEVELS[d["level"]],
        start_ns=d["start_ns"],
        end_ns=d["end_ns"],
        status=d["status"],
        error_text=d["error_text"],
        attributes=_dec_attrs(d["attributes"]),
        events=tuple([EventRecord(e[0], e[1], _dec_attrs(e[2])) for e in d["events"]]),
        service=d["service"],
        node=d["node"],
        session_id=d.get("session_id"),
        location=d.get("location"),
    )


def _enc_log(r: LogRecord) -> dict[str, Any]:
    return {
        "t": "log",
        "id": r.id,
        "ts_ns": r.ts_ns,
        "path": r.path,
        "level": r.level,
        "message": r.message,
        "trace_id": r.trace_id,
        "span_id": r.span_id,
        "attributes": _dict(r.attributes),
        "location": r.location,
        "service": r.service,
        "node": r.node,
        "session_id": r.session_id,
    }


def _dec_log(d: dict[str, Any]) -> LogRecord:
    return LogRecord(
        id=d["id"],
        ts_ns=d["ts_ns"],
        path=d["path"],
        level=d["level"],
        message=d["message"],
        trace_id=d["trace_id"],
        span_id=d["span_id"],
        attributes=_dec_attrs(d["attributes"]),
        location=d["location"],
        service=d["service"],
        node=d["node"],
        session_id=d.get("session_id"),
    )


def _enc_metric(r: MetricRecord) -> dict[str, Any]:
    return {
        "t": "metric",
        "id": r.id,
        "ts_ns": r.ts_ns,
        "path": r.path,
        "name": r.name,
        "kind": r.kind,
        "labels": _dict(r.labels),
        "value": r.value,
        "sum": r.sum,
        "count": r.count,
        "buckets": None if r.buckets is None else _dict(r.buckets),
        "service": r.service,
        "node": r.node,
        "level": r.level.name,
    }


def _dec_metric(d: dict[str, Any]) -> MetricRecord:
    return MetricRecord(
        id=d["id"],
        ts_ns=d["ts_ns"],
        path=d["path"],
        name=d["name"],
        kind=d["kind"],
        labels=d["labels"],
        value=d["value"],
        sum=d["sum"],
        count=d["count"],
        buckets=d["buckets"],
        service=d["service"],
        node=d["node"],
        level=_LEVELS[d.get("level", "PROD")],
    )


def _enc_report(r: ReportRecord) -> dict[str, Any]:
    return {
        "t": "report",
        "id": r.id,
        "ts_ns": r.ts_ns,
        "path": r.path,
        "key": r.key,
        "report": _enc_any(r.report),
        "service": r.service,
        "node": r.node,
        "level": r.level.name,
    }


def _dec_report(d: dict[str, Any]) -> ReportRecord:
    return ReportRecord(
        id=d["id"],
        ts_ns=d["ts_ns"],
        path=d["path"],
        key=d["key"],
        report=_dec_any(d["report"]),
        service=d["service"],
        node=d["node"],
        level=_LEVELS[d.get("level", "PROD")],
    )


def _enc_experiment(r: ExperimentRecord) -> dict[str, Any]:
    return {
        "t": "experiment",
        "path": r.path,
        "parent_path": r.parent_path,
        "key": r.key,
        "service": r.service,
        "node": r.node,
        "created_ns": r.created_ns,
    }


def _dec_experiment(d: dict[str, Any]) -> ExperimentRecord:
    return ExperimentRecord(
        path=d["path"],
        parent_path=d["parent_path"],
        key=d["key"],
        service=d["service"],
        node=d["node"],
        created_ns=d["created_ns"],
    )


_ENCODERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    SpanRecord: _enc_span,
    LogRecord: _enc_log,
    MetricRecord: _enc_metric,
    ReportRecord: _enc_report,
    ExperimentRecord: _enc_experiment,
}
_DECODERS: dict[str, Callable[[dict[str, Any]], Record]] = {
    "span": _dec_span,
    "log": _dec_log,
    "metric": _dec_metric,
    "report": _dec_report,
    "experiment": _dec_experiment,
}


def encode(record: Record) -> dict[str, Any]:
    """A JSON-able dict for ``record``, tagged with its kind under ``"t"``."""
    enc = _ENCODERS.get(type(record))
    if enc is None:
        raise TypeError(f"not an alamos record: {record!r}")
    return enc(record)


def decode(data: Mapping[str, Any]) -> Record:
    """The record ``encode`` was given.  Raises ValueError on malformed input."""
    try:
        return _DECODERS[data["t"]](data if type(data) is dict else dict(data))
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ValueError(f"malformed record: {exc!r}") from exc


def _default(o: object) -> str:
    return str(o)


_dumps = json.JSONEncoder(separators=(",", ":"), default=_default).encode


def dumps_batch(records: Iterable[Record]) -> bytes:
    """One batch as one ASCII JSON line, newline-terminated."""
    return (_dumps([encode(r) for r in records]) + "\n").encode("ascii")


def loads_batch(line: bytes | str) -> list[Record]:
    """The records of one ``dumps_batch`` line.  Raises ValueError if malformed."""
    try:
        data = json.loads(line)
    except (UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"malformed batch: {exc!r}") from exc
    if type(data) is not list:
        raise ValueError("malformed batch: not a JSON array")
    return [decode(d) for d in data]
