"""Records as plain dicts, optionally normalised for snapshot tests.

A snapshot of what code emitted is only useful if running the same code
twice gives the same snapshot.  Raw records do not: ids are random, times
are wall-clock, span locations hold absolute file paths, and the node is
``host:pid``.  :func:`as_dicts` with ``normalize=True`` replaces each of those
by something that depends only on what the code did:

* **ids** become ``trace-1``, ``span-1``, ``log-1``, ``metric-1``,
  ``report-1``, ``session-1``... numbered in order of first appearance
  (record by record, field by field), so a ``parent_id`` or a log's
  ``span_id`` still names the same span as that span's ``span_id``;
* **times** (``start_ns``, ``end_ns``, ``ts_ns``, ``created_ns``, event
  times) become their rank among all distinct times of the records, from 0
  (``times="order"``, the default): the order of what happened survives, the
  clock does not.  ``times="offset"`` gives nanoseconds since the earliest
  time instead, for reading rather than comparing.  Ranks are deterministic
  for sequential code; records made by concurrent threads are ordered by the
  scheduler, so no normalisation makes them repeatable;
* **locations** keep the file name and line (``test_x.py:12``) and lose the
  directories, and so do the ``File "..."`` lines of stack traces;
* ``0x7f...`` addresses in ``repr`` strings become ``0x?``;
* **service** and **node** become ``service-1`` and ``node-1``
  (numbered per distinct value): the node holds the host name and pid.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

import attrs

from alamos.core.level import Level
from alamos.core.records import EventRecord, Record

__all__ = ["KINDS", "as_dicts"]

Times = Literal["order", "offset"]

#: The ``"record"`` entry each record class gets in its dict: ``"span"`` for
#: a :class:`~alamos.core.records.SpanRecord`... (not ``"kind"``: that is a
#: field of :class:`~alamos.core.records.MetricRecord`).
KINDS: dict[type[Any], str] = {cls: cls.record_kind for cls in get_args(Record)}

_TIME_FIELDS = frozenset({"start_ns", "end_ns", "ts_ns", "created_ns"})
_FILE_LINE = re.compile(r'File "(?:[^"]*[/\\])?([^"/\\]*)"')
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")


def _plain(value: Any) -> Any:
    if isinstance(value, Level):
        return str(value)
    if isinstance(value, EventRecord):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(EventRecord)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _to_dict(record: Record) -> dict[str, Any]:
    """One record as a plain dict: ``{"record": "span", <every field>}``."""
    cls = type(record)
    out: dict[str, Any] = {"record": KINDS.get(cls, cls.__name__)}
    for f in attrs.fields(cls):
        out[f.name] = _plain(getattr(record, f.name))
    return out


class _Normalizer:
    def __init__(self, times: Times) -> None:
        self.times = times
        self.ids: dict[str, dict[Any, str]] = {}
        self.clock: dict[int, int] = {}

    def label(self, kind: str, value: Any) -> Any:
        if value is None:
            return None
        seen = self.ids.setdefault(kind, {})
        if value not in seen:
            seen[value] = f"{kind}-{len(seen) + 1}"
        return seen[value]

    def collect_times(self, dicts: Iterable[dict[str, Any]]) -> None:
        stamps: set[int] = set()
        for d in dicts:
            stamps.update(d[k] for k in _TIME_FIELDS if isinstance(d.get(k), int))
            for event in d.get("events", ()):
                stamps.add(event["ts_ns"])
        ordered = sorted(stamps)
        if self.times == "order":
            self.clock = {t: i for i, t in enumerate(ordered)}
        else:
            base = ordered[0] if ordered else 0
            self.clock = {t: t - base for t in ordered}

    def time(self, value: Any) -> Any:
        return self.clock.get(value, value) if isinstance(value, int) else value

    def record(self, d: dict[str, Any]) -> dict[str, Any]:
        kind = d["record"]
        for key, value in d.items():
            if key == "trace_id":
                d[key] = self.label("trace", value)
            elif key in ("span_id", "parent_id"):
                d[key] = self.label("span", value)
            elif key == "id" and kind != "experiment":
                d[key] = self.label(kind, value)
            elif key == "session_id":
                d[key] = self.label("session", value)
            elif key in ("service", "node"):
                d[key] = self.label(key, value)
            elif key in _TIME_FIELDS:
                d[key] = self.time(value)
            elif key == "location" and kind == "span" and isinstance(value, str):
                d[key] = _strip_dirs(value)
            elif key in ("attributes", "message", "error_text"):
                d[key] = _scrub(value)
            elif key == "events":
                for event in value:
                    event["ts_ns"] = self.time(event["ts_ns"])
                    event["attributes"] = _scrub(event["attributes"])
        return d


def _strip_dirs(location: str) -> str:
    """``/a/b/test_x.py:12`` → ``test_x.py:12`` (also with ``\\`` separators)."""
    return re.split(r"[/\\]", location)[-1]


def _scrub(value: Any) -> Any:
    """Drop what varies between runs from free text: directories in stack
    traces and object addresses in reprs."""
    if isinstance(value, str):
        return _ADDRESS.sub("0x?", _FILE_LINE.sub(r'File "\1"', value))
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def as_dicts(
    records: Iterable[Record], normalize: bool = True, times: Times = "order"
) -> list[dict[str, Any]]:
    """Every record as a plain dict, in recording order (see the module doc)."""
    if times not in ("order", "offset"):
        raise ValueError(f"times must be 'order' or 'offset', got {times!r}")
    dicts = [_to_dict(r) for r in records]
    if not normalize:
        return dicts
    norm = _Normalizer(times)
    norm.collect_times(dicts)
    return [norm.record(d) for d in dicts]
