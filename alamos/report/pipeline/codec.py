"""A lossless JSON codec for records, used by the on-disk spool.

``encode(record)`` gives a JSON-able dict whose ``"t"`` key names the record
kind (``"span"`` for a :class:`~alamos.core.records.SpanRecord`...),
``decode(d)`` gives the record back, equal to the original.  Each field of a
record is stored under its name, by the rule for its type (:data:`_RULES`):

* a :class:`~alamos.core.level.Level` is stored as its name (``"PROD"``);
* mappings are stored as JSON objects and come back as :class:`dict`;
* attribute values that are tuples (JSON arrays) come back as tuples, nested
  ones too; span events are ``[name, ts_ns, attributes]`` triples;
* ``ReportRecord.report`` (arbitrary data) keeps lists as lists and tuples as
  tuples (a tuple is stored as ``{"__tuple__": [...]}``);
* text, numbers and ``None`` are stored as they are.

A field with a default may be missing from what is decoded (a line written
before the field existed) and gets its default.

This is not JSON for others to read but an internal format that must give
back what it was given, so it is exempt from the NaN rule of
:mod:`alamos.core.json`: NaN and infinities are written as ``NaN`` /
``Infinity`` / ``-Infinity`` (what :mod:`json` does with ``allow_nan=True``)
and read back as floats.  Values JSON cannot represent (only possible in
``report``) are stored as their ``str``.  ``dumps_batch`` writes one ASCII
JSON array per line, so a line never contains a raw newline and a torn line
can never be mistaken for two.

This runs on a delivery thread, for every batch spooled or replayed, so the
encoder and decoder of each kind are generated from the table of its fields
(:func:`alamos.core.codegen.compile_function`): the code that runs is what
one would write by hand for each class, without ``attrs.asdict``, a loop
over the fields or a call per field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, get_args

import attrs

from alamos.core.codegen import compile_function
from alamos.core.level import Level
from alamos.core.records import EventRecord, Record

__all__ = [
    "DeadLetter",
    "decode",
    "dumps_batch",
    "dumps_dead_letter",
    "encode",
    "loads_batch",
    "loads_dead_letter",
]

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


def _enc_events(events: tuple[EventRecord, ...]) -> list[list[Any]]:
    return [[e.name, e.ts_ns, _dict(e.attributes)] for e in events]


def _dec_events(events: list[list[Any]]) -> tuple[EventRecord, ...]:
    return tuple([EventRecord(e[0], e[1], _dec_attrs(e[2])) for e in events])


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


#: How a field is encoded and decoded, by its type (as the record class
#: annotates it): an expression for each, ``{}`` standing for the value.
_RULES: dict[str, tuple[str, str]] = {
    "str": ("{}", "{}"),
    "str | None": ("{}", "{}"),
    "int": ("{}", "{}"),
    "float": ("{}", "{}"),
    "float | None": ("{}", "{}"),
    "Level": ("{}.name", "_LEVELS[{}]"),
    "Mapping[str, str]": ("_dict({})", "{}"),
    "Mapping[str, float] | None": ("(None if {0} is None else _dict({0}))", "{}"),
    "Mapping[str, AttrValue]": ("_dict({})", "_dec_attrs({})"),
    "Mapping[str, Any]": ("_enc_any({})", "_dec_any({})"),
    "tuple[EventRecord, ...]": ("_enc_events({})", "_dec_events({})"),
}

_NAMESPACE: dict[str, Any] = {
    "_LEVELS": _LEVELS,
    "_dict": _dict,
    "_dec_attrs": _dec_attrs,
    "_enc_any": _enc_any,
    "_dec_any": _dec_any,
    "_enc_events": _enc_events,
    "_dec_events": _dec_events,
}


def _kind(cls: type) -> str:
    """``"span"`` for ``SpanRecord``: the ``"t"`` of its encoded dicts."""
    kind: str = getattr(cls, "record_kind")  # noqa: B009  (a ClassVar of each record)
    return kind


def _rule(cls: type, field: attrs.Attribute[Any]) -> tuple[str, str]:
    rule = _RULES.get(field.type) if isinstance(field.type, str) else None
    if rule is None:
        raise TypeError(
            f"the spool codec has no rule for {cls.__name__}.{field.name}: {field.type}"
        )
    return rule


def _lines(items: list[str]) -> str:
    return "".join(f"        {item},\n" for item in items)


def _codec(cls: type) -> tuple[Callable[[Any], dict[str, Any]], Callable[[dict[str, Any]], Any]]:
    """The encoder and decoder of the record class ``cls``, generated from
    its fields (see the module doc)."""
    kind = _kind(cls)
    namespace = {**_NAMESPACE, "_cls": cls}
    items, args = [f'"t": "{kind}"'], []
    for field in attrs.fields(cls):
        enc, dec = _rule(cls, field)
        name = field.name
        items.append(f'"{name}": ' + enc.format(f"r.{name}"))
        value = dec.format(f'd["{name}"]')
        if field.default is not attrs.NOTHING:
            namespace[f"_default_{name}"] = field.default
            value = f'({value} if "{name}" in d else _default_{name})'
        args.append(value)
    encode_source = f"def encode_{kind}(r):\n    return {{\n{_lines(items)}    }}\n"
    decode_source = f"def decode_{kind}(d):\n    return _cls(\n{_lines(args)}    )\n"
    return (
        compile_function(f"encode_{kind}", encode_source, namespace, owner=__name__),
        compile_function(f"decode_{kind}", decode_source, namespace, owner=__name__),
    )


_CODECS = {cls: _codec(cls) for cls in get_args(Record)}
_ENCODERS: dict[type, Callable[[Any], dict[str, Any]]] = {c: e for c, (e, _) in _CODECS.items()}
_DECODERS: dict[str, Callable[[dict[str, Any]], Record]] = {
    _kind(c): d for c, (_, d) in _CODECS.items()
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


class DeadLetter(NamedTuple):
    """One line of a dead-letter file: a record the database refused for good."""

    record: Record
    reason: str
    """The database's message (what :class:`alamos.RecordsRejected` said)."""
    exporter: str
    ts_ns: int
    """When it was refused (nanoseconds since the epoch)."""


def dumps_dead_letter(record: Record, reason: str, exporter: str, ts_ns: int) -> bytes:
    """One dead-letter line: ``{"ts_ns", "exporter", "reason", "record"}``, the
    record encoded as in the spool (so a tool, or a later alamos, can decode
    it and store it once the cause is fixed)."""
    line = {"ts_ns": ts_ns, "exporter": exporter, "reason": reason, "record": encode(record)}
    return (_dumps(line) + "\n").encode("ascii")


def loads_dead_letter(line: bytes | str) -> DeadLetter:
    """What ``dumps_dead_letter`` wrote.  Raises ValueError if malformed."""
    try:
        data = json.loads(line)
        return DeadLetter(
            decode(data["record"]), str(data["reason"]), str(data["exporter"]), int(data["ts_ns"])
        )
    except (UnicodeDecodeError, RecursionError, KeyError, TypeError) as exc:
        raise ValueError(f"malformed dead letter: {exc!r}") from exc
