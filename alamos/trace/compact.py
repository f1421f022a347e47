"""The compact form of a finished span, queued behind a backlog.

Once the hand-off holds :data:`~alamos.core.handoff.COMPACT_AT` items (the
collector's worker is behind), a finished span is queued as the flat tuple
:func:`compact_span` makes, instead of as the :class:`~alamos.trace.span.Span`
object: a span object is one more object every full garbage collection
visits, while a tuple holding only ``str``, ``int``, ``float``, ``bool``,
``None`` and such tuples is untracked by the collector at its next
collection (see :mod:`alamos.core.handoff`, "Compaction").  So the tuple
holds no dict (a tuple holding a dict is never untracked, even an untracked
dict), no list, no :class:`~alamos.core.level.Level` (an enum member is a
tracked object) and no reference to the tracer: attributes are a tuple of
keys and a tuple of values, events are flattened, the level is its int.

:func:`span_from_compact` builds, on the collector's worker, the same
:class:`~alamos.core.records.SpanRecord` that :meth:`Span.to_record` builds
from the span object (``tests/trace/test_compact.py`` checks every field).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from alamos.core.ids import hex_id
from alamos.core.level import Level
from alamos.core.records import EventRecord, SpanRecord, new_span_record
from alamos.trace.noop import EMPTY_ATTRIBUTES

if TYPE_CHECKING:
    from alamos.trace.span import Span

__all__ = ["compact_span", "span_from_compact"]

_LEVELS = {int(level): level for level in Level}


def compact_span(span: Span, kind: int) -> tuple[Any, ...]:
    """``span`` (ended) as a flat tuple starting with ``kind``."""
    attrs = span._attrs
    events = span._events
    name = span.name
    if type(name) is not str:  # its __class__ claimed str (a mock): no user code here
        name = f"<{type(name).__name__}>"
    end_ns = span.end_ns
    return (
        kind,
        span.trace_int,
        span.span_int,
        span.parent_int,
        span._tracer.path,
        name,
        int(span.level),
        span.start_ns,
        end_ns if end_ns is not None else span.start_ns,
        span.status,
        span.error_text,
        span.session_id,
        span.location,
        tuple(attrs) if attrs else (),
        tuple(attrs.values()) if attrs else (),
        _flat_events(events) if events else (),
    )


def _flat_events(events: list[EventRecord]) -> tuple[Any, ...]:
    """Name, time, attribute keys and values of each event, one after another."""
    flat: list[Any] = []
    for event in events:
        attrs = event.attributes
        flat += (event.name, event.ts_ns, tuple(attrs), tuple(attrs.values()))
    return tuple(flat)


def _events(flat: tuple[Any, ...]) -> tuple[EventRecord, ...]:
    return tuple(
        EventRecord(flat[i], flat[i + 1], dict(zip(flat[i + 2], flat[i + 3], strict=True)))
        for i in range(0, len(flat), 4)
    )


def span_from_compact(fields: tuple[Any, ...], service: str, node: str) -> SpanRecord:
    """The record of the span :func:`compact_span` made ``fields`` of."""
    (
        _,
        tid,
        sid,
        pid,
        path,
        name,
        level,
        start_ns,
        end_ns,
        status,
        error_text,
        session_id,
        location,
        keys,
        values,
        events,
    ) = fields
    return new_span_record(
        hex_id(tid, 16),
        hex_id(sid, 8),
        None if pid is None else hex_id(pid, 8),
        path,
        name,
        _LEVELS[level],
        start_ns,
        end_ns,
        status,
        error_text,
        MappingProxyType(dict(zip(keys, values, strict=True))) if keys else EMPTY_ATTRIBUTES,
        _events(events) if events else (),
        service,
        node,
        session_id,
        location,
    )
