"""What a log call hands to the collector: a :class:`LogItem`.

The instrumented thread stores what it has (the formatted message, the
timestamp, the current span's ids as ints, where the call was made) and
nothing more; :meth:`LogItem.to_record` builds the
:class:`~alamos.core.records.LogRecord` later, on the collector's worker
(hex ids, the location text, a fresh record id), so the caller never pays
for it.  Behind a backlog the hand-off queues the item's compact form
(:meth:`LogItem.compact`, a flat tuple the garbage collector does not visit;
see :mod:`alamos.core.handoff`, "Compaction").
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from alamos.core.ids import hex_id, new_record_id
from alamos.core.records import LogRecord, new_log_record

__all__ = ["LogItem"]

_EMPTY: Any = MappingProxyType({})
#: The values before the attributes in a compact log item: the kind and 8 fields.
_FIELDS = 9


class LogItem:
    """One emitted log call, not yet a record."""

    __slots__ = (
        "attributes",
        "level",
        "line",
        "message",
        "module",
        "path",
        "session_id",
        "span_int",
        "trace_int",
        "ts_ns",
        "where",
    )

    def __init__(
        self,
        ts_ns: int,
        path: str,
        level: str,
        message: str,
        trace_int: int | None,
        span_int: int | None,
        attributes: dict[str, Any] | None,
        module: str,
        where: str,
        line: int,
        session_id: str | None,
    ) -> None:
        self.ts_ns = ts_ns
        self.path = path
        self.level = level
        self.message = message
        self.trace_int = trace_int
        self.span_int = span_int
        self.attributes = attributes
        # Kept apart and formatted by to_record: an f-string on the caller's
        # thread cost more than the three stores (bench/: emitted_log).
        self.module = module
        self.where = where
        self.line = line
        self.session_id = session_id

    def to_record(self, service: str, node: str) -> LogRecord:
        tid, sid, attrs = self.trace_int, self.span_int, self.attributes
        module = self.module
        if type(module) is not str:  # a module's __name__ set to an object: no user code here
            module = "?"
        return new_log_record(
            new_record_id(),
            self.ts_ns,
            self.path,
            self.level,
            self.message,
            None if tid is None else hex_id(tid, 16),
            None if sid is None else hex_id(sid, 8),
            MappingProxyType(attrs) if attrs else _EMPTY,
            f"{module}:{self.where}:{self.line}",
            service,
            node,
            self.session_id,
        )

    def compact(self, kind: int) -> tuple[Any, ...]:
        """This item as a flat tuple: ``kind``, its fields, then its attribute
        keys, then their values (the layout of a compact span, and for the
        same reasons: :mod:`alamos.trace.compact`)."""
        attrs = self.attributes
        module = self.module
        if type(module) is not str:
            module = "?"
        fields = (
            kind,
            self.ts_ns,
            self.path,
            self.level,
            self.message,
            self.trace_int,
            self.span_int,
            f"{module}:{self.where}:{self.line}",
            self.session_id,
        )
        return (*fields, *attrs, *attrs.values()) if attrs else fields

    @staticmethod
    def from_compact(fields: tuple[Any, ...], service: str, node: str) -> LogRecord:
        """The record of the item :meth:`compact` made ``fields`` of."""
        tid, sid = fields[5], fields[6]
        if len(fields) > _FIELDS:
            middle = (len(fields) + _FIELDS) >> 1
            # No strict=: the halves are equal (and the keyword is slow).
            attrs: Any = MappingProxyType(dict(zip(fields[_FIELDS:middle], fields[middle:])))  # noqa: B905
        else:
            attrs = _EMPTY
        return new_log_record(
            new_record_id(),
            fields[1],
            fields[2],
            fields[3],
            fields[4],
            None if tid is None else hex_id(tid, 16),
            None if sid is None else hex_id(sid, 8),
            attrs,
            fields[7],
            service,
            node,
            fields[8],
        )
