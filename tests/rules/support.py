"""Span records with chosen times and attributes, for the rules tests."""

from __future__ import annotations

from typing import Any

from alamos.core.level import Level, parse_level
from alamos.core.records import SpanRecord

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
#: A start of time aligned to a minute (2023-11-14T22:13:00Z).
T0 = 1_699_999_980 * SECOND


def span(
    i: int,
    name: str,
    end_ns: int,
    *,
    duration_ns: int = 1_000_000,
    path: str = "svc.api",
    status: str = "ok",
    level: Level | str = Level.PROD,
    **attributes: Any,
) -> SpanRecord:
    """A finished span record, the ``i``-th of its trace."""
    return SpanRecord(
        trace_id=f"{i + 1:032x}",
        span_id=f"{i + 1:016x}",
        parent_id=None,
        path=path,
        name=name,
        level=parse_level(level),
        start_ns=end_ns - duration_ns,
        end_ns=end_ns,
        status=status,
        error_text=None,
        attributes={k.replace("__", "."): v for k, v in attributes.items()},
        events=(),
        service="svc",
        node="n1",
    )
