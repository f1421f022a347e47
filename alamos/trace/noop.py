"""What a filtered-out span factory returns: :class:`NoopSpan`.

It has the same API as :class:`~alamos.trace.span.Span` and does nothing, so
instrumented code never checks whether a level is on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from alamos.core.context import INVALID_CONTEXT
from alamos.core.level import Level
from alamos.core.records import EventRecord

if TYPE_CHECKING:
    from alamos.trace.tracer import Tracer

__all__ = ["EMPTY_ATTRIBUTES", "NoopSpan"]

F = TypeVar("F", bound=Callable[..., Any])
E = TypeVar("E", bound=BaseException)

EMPTY_ATTRIBUTES: Mapping[str, Any] = MappingProxyType({})


class NoopSpan:
    """What a filtered-out factory returns: the same API, doing nothing.

    One instance per tracer and level is shared by every call, so a
    filtered-out ``with`` allocates nothing.  It keeps its tracer only so
    that ``@exp.trace.debug("name")`` still works as a decorator when the
    level is switched on later (spans are then named by ``__qualname__``).
    """

    __slots__ = ("_level", "_tracer")

    name = ""
    status = "unset"
    error_text = None
    start_ns = 0
    end_ns = 0
    session_id = None
    parent_id = None
    trace_id = INVALID_CONTEXT.trace_id
    span_id = INVALID_CONTEXT.span_id
    trace_int = 0
    span_int = 0
    parent_int = None
    tracestate = None
    sampled = False
    recording = False
    location = None
    dropped_attributes = 0
    attributes: Mapping[str, Any] = EMPTY_ATTRIBUTES
    events: tuple[EventRecord, ...] = ()
    context = INVALID_CONTEXT

    def __init__(self, tracer: Tracer | None, level: Level) -> None:
        self._tracer = tracer
        self._level = level

    @property
    def level(self) -> Level:
        return self._level

    @property
    def path(self) -> str:
        return "" if self._tracer is None else self._tracer.path

    def __enter__(self) -> NoopSpan:
        return self

    def __exit__(self, et: object, exc: object, tb: object) -> None:
        return None

    def start(self) -> NoopSpan:
        return self

    def end(self) -> None:
        return None

    def set(self, key: str, value: Any) -> NoopSpan:
        return self

    def set_attributes(self, attributes: Mapping[str, Any]) -> NoopSpan:
        return self

    def event(self, name: str, /, **attributes: Any) -> NoopSpan:
        return self

    def set_status(self, status: str, description: str | None = None) -> NoopSpan:
        return self

    def error(self, exc: E) -> E:
        return exc

    def expected(self, exc: E) -> E:
        return exc

    def to_record(self, service: str, node: str) -> NoReturn:
        """A NoopSpan records nothing, so it has no record (it is never queued)."""
        raise TypeError("a filtered-out span (NoopSpan) records nothing: it has no record")

    def compact(self, kind: int) -> NoReturn:
        """A NoopSpan records nothing, so it has no compact form (it is never queued)."""
        raise TypeError("a filtered-out span (NoopSpan) records nothing: it has no compact form")

    @staticmethod
    def from_compact(fields: tuple[Any, ...], service: str, node: str) -> NoReturn:
        """Only a recorded :class:`~alamos.trace.span.Span` has a compact form."""
        raise TypeError("a filtered-out span (NoopSpan) records nothing: it has no compact form")

    def __call__(self, fn: F) -> F:
        if self._tracer is None:
            return fn
        return self._tracer._decorate(self._level, None, fn)

    def __repr__(self) -> str:
        return f"<NoopSpan {self._level}>"
