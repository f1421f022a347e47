"""The identity of a span as it travels, and the span now current.

:class:`SpanContext` is what crosses a process boundary (W3C trace and span
ids in hex).  :data:`CURRENT` is a :class:`contextvars.ContextVar`, which
follows asyncio tasks, trio tasks and threads started with a copied context,
so parenting "follows the request" through every layer without any explicit
passing.  It lives on the ground floor because spans set it and logs read it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Protocol

import attrs

__all__ = ["CURRENT", "EXPECTED", "INVALID_CONTEXT", "CurrentSpan", "SpanContext"]


@attrs.frozen(slots=True)
class SpanContext:
    """The identity of a span as it travels: W3C trace and span ids in hex."""

    trace_id: str
    """32 lower-case hex digits."""
    span_id: str
    """16 lower-case hex digits."""
    sampled: bool = True
    tracestate: str | None = None
    remote: bool = False


#: The context of a span that is not recorded: all-zero ids (invalid in W3C).
INVALID_CONTEXT = SpanContext("0" * 32, "0" * 16, sampled=False)


class CurrentSpan(Protocol):
    """What the ground floor knows of the current span: its ids as integers
    (formatted as hex only when a record is built, off the hot path)."""

    @property
    def trace_int(self) -> int: ...

    @property
    def span_int(self) -> int: ...


#: The span now current in this context (an :class:`alamos.Span`), or None;
#: typed by :func:`alamos.current_span`, which reads it.
CURRENT: ContextVar[Any] = ContextVar("alamos_current_span", default=None)

#: Which exceptions are *expected* in this context: a predicate, or None.  A
#: span that an expected exception leaves records it as an event and is not
#: marked as an error.  A server middleware sets it for the time of a request
#: (:class:`alamos.asgi.AlamosMiddleware`: an ``HTTPException`` with a 4xx
#: status is the client's mistake, not the server's).  Read only when an
#: exception leaves a span, never on the hot path.
EXPECTED: ContextVar[Callable[[BaseException], bool] | None] = ContextVar(
    "alamos_expected_exceptions", default=None
)
