"""The compact form of a finished span, queued behind a backlog.

Once the hand-off holds :data:`~alamos.core.handoff.COMPACT_AT` items (the
collector's worker is behind), a finished span is queued as the flat tuple
:func:`compact_span` makes instead of as the :class:`~alamos.trace.span.Span`
object (see :mod:`alamos.core.handoff`, "Compaction").  A span object is
one more object every full garbage collection visits; a tuple is untracked
by the collector at its first collection if every value in it is untracked
then, and is never visited again.  Hence the layout:

* no dict (a tuple holding a dict is never untracked, even an untracked
  dict), no list, no :class:`~alamos.core.level.Level` (an enum member is a
  tracked object: the level is its int) and no tracer;
* no tuple inside either, in the common case: the attribute keys and then
  their values follow the fields in the tuple itself.  A collection places
  a tuple's contents after it and examines them in that order, so a tuple
  holding a tuple is untracked one collection after it, late enough for
  about one in ten to reach the oldest generation, and so to be visited by
  (and to bring on) a full collection.  Only events and attribute values
  that are sequences (rare) are nested.

The layout costs the worker a little (``dict(zip(keys, values))``, not
``dict(pairs)``): 24,200 instructions a record against 20,300 with a tuple
of pairs, and the instrumented thread 6,600 instructions for
:func:`compact_span` against 5,400 (callgrind, a span with 3 attributes);
with pairs, 100,000 queued spans brought on 4 full collections, flat none
(``scripts/gc_pause.py``).

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

__all__ = ["FIELDS", "compact_span", "span_from_compact"]

#: The values before the attributes in a compact span: the kind and 13 fields.
FIELDS = 14

_LEVELS = {int(level): level for level in Level}


def compact_span(span: Span, kind: int) -> tuple[Any, ...]:
    """``span`` (ended) as a flat tuple: ``kind``, its fields, then its
    attribute keys, then their values."""
    name = span.name
    if type(name) is not str:  # its __class__ claimed str (a mock): no user code here
        name = f"<{type(name).__name__}>"
    end_ns = span.end_ns
    events = span._events
    attrs = span._attrs
    fields = (
        kind,
        span.trace_int,
        span.span_int,
        span.parent_int,
        span._tracer.path,
        name,
        # An IntEnum member plus 0 is its plain int, in a quarter of the
        # instructions of int(level) (callgrind: 270 against 1,160).
        span.level + 0,
        span.start_ns,
        end_ns if end_ns is not None else span.start_ns,
        span.status,
        span.error_text,
        span.session_id,
        span.location,
        _flat_events(events) if events else (),
    )
    return (*fields, *attrs, *attrs.values()) if attrs else fields


def span_from_compact(fields: tuple[Any, ...], service: str, node: str) -> SpanRecord:
    """The record of the span :func:`compact_span` made ``fields`` of."""
    pid = fields[3]
    events = fields[13]
    if len(fields) > FIELDS:
        middle = (len(fields) + FIELDS) >> 1
        # No strict=: the halves are equal, and the keyword cost 1,500
        # instructions (callgrind); inline, as a call costs 800 more.
        attrs: Any = MappingProxyType(dict(zip(fields[FIELDS:middle], fields[middle:])))  # noqa: B905
    else:
        attrs = EMPTY_ATTRIBUTES
    return new_span_record(
        hex_id(fields[1], 16),
        hex_id(fields[2], 8),
        None if pid is None else hex_id(pid, 8),
        fields[4],
        fields[5],
        _LEVELS[fields[6]],
        fields[7],
        fields[8],
        fields[9],
        fields[10],
        attrs,
        _events(events) if events else (),
        service,
        node,
        fields[11],
        fields[12],
    )


def _flat_events(events: list[EventRecord]) -> tuple[Any, ...]:
    """Name, time, attribute count, keys and values of each event, one after another."""
    flat: list[Any] = []
    for event in events:
        attrs = event.attributes
        flat += (event.name, event.ts_ns, len(attrs), *attrs, *attrs.values())
    return tuple(flat)


def _events(flat: tuple[Any, ...]) -> tuple[EventRecord, ...]:
    events = []
    i = 0
    while i < len(flat):
        keys, n = i + 3, flat[i + 2]
        values = keys + n
        attrs = dict(zip(flat[keys:values], flat[values : values + n], strict=True))
        events.append(EventRecord(flat[i], flat[i + 1], attrs))
        i = values + n
    return tuple(events)
