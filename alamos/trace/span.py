"""Spans: timed, nested units of work.

The hot path (``Span.__init__``, ``__enter__``, ``__exit__``) is written for
speed, and each shortcut below says why it is there:

* ids are kept as ``int`` (``random.getrandbits``) and formatted as hex only
  when somebody asks (``span.context``) or when the collector's worker builds
  the record, off the instrumented thread;
* a finished span goes through the hand-off's ``put`` as is (the tracer was
  given it when it was built); the :class:`~alamos.core.records.SpanRecord` is
  built later by the collector's worker (:meth:`Span.to_record`); behind a
  backlog the hand-off queues its compact form instead
  (:mod:`alamos.trace.compact`), which the garbage collector does not visit;
* attributes and events are allocated on first use only;
* what the caller gives is coerced here, once (names, attribute values,
  events, error texts: :mod:`alamos.core.attributes`), so the worker and
  ``flush()`` never call user code and every record can be spooled;
* a span that holds long text gets a tracer of its own
  (:class:`_SizedTracer`) that puts it with its size, so the hand-off can
  bound the queued bytes (see :mod:`alamos.core.handoff`, "Bytes"); the
  common span's end reads no size at all (a size slot stored by every
  factory call and read at every end cost about 1.5% of a recorded span,
  callgrind: 14,809 -> 15,027 instructions per span).
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Mapping
from contextvars import Token
from random import getrandbits
from time import time_ns
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from alamos.core.attributes import (
    INT_MAX,
    INT_MIN,
    MAX_ATTRIBUTES,
    MAX_MESSAGE,
    MAX_NAME,
    SMALL_TEXT,
    coerce_key,
    coerce_text,
    coerce_value,
    sized_attributes,
    text_size,
)
from alamos.core.context import CURRENT, EXPECTED, SpanContext
from alamos.core.ids import hex_id
from alamos.core.level import Level
from alamos.core.records import EventRecord, SpanRecord, new_span_record
from alamos.core.safe import error_text, safe_str
from alamos.trace.compact import compact_span, span_from_compact
from alamos.trace.noop import EMPTY_ATTRIBUTES, NoopSpan

if TYPE_CHECKING:
    from alamos.trace.tracer import Tracer

__all__ = ["NoopSpan", "Span", "current_span"]

F = TypeVar("F", bound=Callable[..., Any])
E = TypeVar("E", bound=BaseException)

#: W3C ids: exactly 32 (trace) and 16 (span) lower-case hex digits.
_TRACE_ID = re.compile("[0-9a-f]{32}").fullmatch
_SPAN_ID = re.compile("[0-9a-f]{16}").fullmatch


class Span:
    """A span being recorded.  Use it as a context manager (or call
    :meth:`start` and :meth:`end`); it becomes the current span while open."""

    # The hot fields are slots; the rarely-set ones are class-level defaults
    # kept out of the slots, so ``__init__`` assigns 6 attributes instead of
    # 15 (a measurable share of a recorded span).  When one of them is set it
    # goes to the instance ``__dict__``, created on first use.  ``end_ns`` and
    # ``_attrs`` are slots although they start as None: one is set by every
    # span and the other by most, and a slot write is cheaper than the dict
    # write (bench/ A/B: -5% on a recorded span, -12% with 3 attributes).
    __slots__ = (
        "__dict__",
        "_attrs",
        "_parent",
        "_token",
        "_tracer",
        "end_ns",
        "level",
        "name",
        "parent_int",
        "sampled",
        "session_id",
        "span_int",
        "start_ns",
        "trace_int",
        "tracestate",
    )

    trace_int: int
    """The trace id as an int (``trace_id`` is its hex form)."""
    span_int: int
    """The span id as an int (``span_id`` is its hex form)."""
    parent_int: int | None
    """The parent's span id as an int, or None."""
    _token: Token[Span | None] | None
    sampled: bool
    session_id: str | None
    start_ns: int
    tracestate: str | None

    _events: list[EventRecord] | None = None
    status = "unset"
    error_text: str | None = None
    location: str | None = None
    dropped_attributes = 0
    _error_id = 0
    #: Exception types expected of this span (``ignore=`` of the factory).
    _ignore: tuple[type[BaseException], ...] = ()

    def __init__(
        self, tracer: Tracer, level: Level, name: str, parent: SpanContext | Span | None = None
    ) -> None:
        # The factories (tracer.py) build spans without this __init__, with
        # the same steps inlined.
        self._tracer = tracer
        self.level = level
        self._attrs: dict[str, Any] | None = None
        self.end_ns: int | None = None
        if type(name) is str and len(name) <= SMALL_TEXT:
            self.name = name
        else:
            self._set_name(name)
        self._parent = parent

    def _set_name(self, name: object) -> None:
        """A name that is not a short str: text of at most MAX_NAME characters."""
        self.name = text = coerce_text(name, MAX_NAME)
        self._weigh(text_size(text))

    def _weigh(self, n: int) -> None:
        """Count ``n`` more bytes of long text: the span is put with them."""
        if n:
            # Any: a _SizedTracer stands for the Tracer it wraps.
            tracer: Any = self._tracer
            if type(tracer) is not _SizedTracer:
                tracer = _SizedTracer(tracer)
                self._tracer = tracer
            tracer.extra += n

    # -- lifetime ---------------------------------------------------------

    def __enter__(self) -> Span:
        """Start the span and make it current (``start()`` is the same)."""
        parent = self._parent
        tracer = self._tracer
        if parent is None:
            parent = CURRENT.get()
        if parent is None:
            # A new trace.  The id is never 0 (W3C treats all-zero as invalid).
            tid = getrandbits(128) or 1
            self.trace_int = tid
            self.parent_int = None
            self.sampled = tracer._always or tracer._root_sampled(tid)
            self.tracestate = None
        elif type(parent) is Span:
            self.trace_int = parent.trace_int
            self.parent_int = parent.span_int
            self.sampled = parent.sampled
            self.tracestate = parent.tracestate
        else:
            self._start_remote(parent)
        self.span_int = getrandbits(64) or 1
        self.session_id = tracer._session_id
        if tracer._track:
            tracer._track_open(self)
        self.start_ns = time_ns()
        self._token = CURRENT.set(self)
        return self

    start = __enter__

    @property
    def path(self) -> str:
        return self._tracer.path

    def _start_remote(self, parent: object) -> None:
        """Start under a parent that is not a local :class:`Span`: a
        :class:`SpanContext` (or a record with the same ids), or a filtered-out
        :class:`NoopSpan`, which stands for "no parent given".

        As W3C says, a context whose trace id is not exactly 32 lower-case hex
        digits, or whose span id is not exactly 16, or either all zero,
        starts a fresh trace; so does a foreign object whose attributes raise
        (anything: the caller's ``with`` must not fail because of it).  Only
        valid ids are stored: a malformed one could never be joined, and a
        huge one breaks the database's index (issue 10).
        """
        if type(parent) is NoopSpan:
            current = CURRENT.get()
            if current is not None:
                self.trace_int, self.parent_int = current.trace_int, current.span_int
                self.sampled, self.tracestate = current.sampled, current.tracestate
                return
            parent = None
        tid = pid = 0
        sampled = True
        tracestate = None
        if parent is not None:
            try:
                trace_id = parent.trace_id  # type: ignore[attr-defined]
                span_id = parent.span_id  # type: ignore[attr-defined]
                if (
                    type(trace_id) is str
                    and type(span_id) is str
                    and _TRACE_ID(trace_id)
                    and _SPAN_ID(span_id)
                ):
                    tid, pid = int(trace_id, 16), int(span_id, 16)
                    sampled = bool(getattr(parent, "sampled", True))
                    tracestate = getattr(parent, "tracestate", None)
                    if tracestate is not None and type(tracestate) is not str:
                        tracestate = None
            except Exception:
                tid = pid = 0
        if tid == 0 or pid == 0:  # no or an invalid context starts a fresh trace
            tid = getrandbits(128) or 1
            self.trace_int, self.parent_int = tid, None
            self.sampled = self._tracer._root_sampled(tid)
            self.tracestate = None
            return
        self.trace_int, self.parent_int = tid, pid
        self.sampled = self._tracer._sampled_with_parent(tid, sampled)
        self.tracestate = tracestate

    def end(self) -> None:
        """End the span (idempotent) and hand it to the exporters if sampled.

        If the span is the current one (``start()`` made it so), its parent
        becomes current again.
        """
        if self.end_ns is not None:
            return
        self.end_ns = time_ns()
        tracer = self._tracer
        if tracer._track:
            tracer._untrack(self)
        if self.sampled:
            tracer._put(self)
        if CURRENT.get() is self and (token := self._token) is not None:
            self._token = None
            try:
                CURRENT.reset(token)
            except ValueError:
                self._lost_token()

    def _lost_token(self) -> None:
        """Ended in another context than it was started in (an async generator
        resumed elsewhere): the token cannot restore what was current before,
        so if this span is current here, its parent (if given explicitly) or
        nothing becomes current.  Another context's current span is left alone."""
        if CURRENT.get() is self:
            parent = self._parent
            CURRENT.set(parent if type(parent) is Span else None)

    def __exit__(self, et: object, exc: BaseException | None, tb: object) -> None:
        # An error already recorded (`raise span.error(e)`) is not recorded twice.
        if exc is not None and isinstance(exc, Exception) and id(exc) != self._error_id:
            if self._is_expected(exc):
                self.expected(exc)
            else:
                self.error(exc)
        # end(), inlined: this is the hot path.
        if self.end_ns is None:
            self.end_ns = time_ns()
            tracer = self._tracer
            if tracer._track:
                tracer._untrack(self)
            if self.sampled:
                tracer._put(self)
        token = self._token
        if token is None:  # a second __exit__ on the same span: nothing to restore
            return
        # Dropping the token keeps it out of the queue with the span
        # (-64 bytes per queued span, and one less object to free later).
        self._token = None
        try:
            CURRENT.reset(token)
        except ValueError:
            self._lost_token()

    def __call__(self, fn: F) -> F:
        """Use a named span as a decorator: a new span per call."""
        return self._tracer._decorate(self.level, self.name, fn)

    # -- data -------------------------------------------------------------

    def set(self, key: str, value: Any) -> Span:
        """Set one attribute (see :mod:`alamos.core.attributes` for the rules)."""
        if self.end_ns is not None:
            return self
        attrs = self._attrs
        if type(key) is not str:
            key = coerce_key(key)
        if attrs is None:
            attrs = self._attrs = {}
        elif len(attrs) >= MAX_ATTRIBUTES and key not in attrs:
            self.dropped_attributes += 1
            return self
        # Short str, int, float and bool are what coerce_value would return
        # unchanged; not calling it for them saves a call per attribute, a
        # measurable share of a span with a few attributes (bench/).  Long
        # text (more than SMALL_TEXT) is also weighed, for the hand-off's
        # byte bound: the length test was there already (for MAX_STRING).
        t = type(value)
        if t is str:
            if len(value) > SMALL_TEXT:
                value = self._long_value(value)
        elif t is int:
            # An int of more than MAX_INT_BITS becomes text.  The first test is
            # against one-digit ints, which CPython compares fastest: about 180
            # instructions of a span with 3 attributes' 21,000 (callgrind),
            # against 370 for the exact bounds alone.
            if (value > 0x3FFFFFFF or value < -0x3FFFFFFF) and (
                value >= INT_MAX or value <= INT_MIN
            ):
                value = coerce_value(value)
        elif t is not float and t is not bool:
            value = self._long_value(value)
        attrs[key] = value
        return self

    def _long_value(self, value: Any) -> Any:
        """Any value but a short str, int, float or bool, coerced and weighed."""
        value = coerce_value(value)
        self._weigh(text_size(value))
        return value

    def set_attributes(self, attributes: Mapping[str, Any]) -> Span:
        for key, value in attributes.items():
            self.set(key, value)
        return self

    def event(self, name: str, /, **attributes: Any) -> Span:
        """Record a point in time inside the span."""
        if self.end_ns is not None:
            return self
        events = self._events
        if events is None:
            events = self._events = []
        if len(events) < MAX_ATTRIBUTES:
            if type(name) is not str or len(name) > SMALL_TEXT:
                name = coerce_text(name, MAX_NAME)
            attrs, size = sized_attributes(attributes) if attributes else ({}, 0)
            events.append(EventRecord(name, time_ns(), attrs))
            self._weigh(size + text_size(name))
        return self

    def error(self, exc: E) -> E:
        """Record ``exc`` on the span, set the status to error, return ``exc``.

        So that ``raise span.error(ValueError(...))`` reads naturally (the
        exception then leaving the block is not recorded a second time).
        Ignored once the span has ended.
        """
        if self.end_ns is not None:
            return exc
        self.status = "error"
        self.error_text = text = coerce_text(error_text(exc), MAX_MESSAGE)
        self._weigh(text_size(text))
        self._error_id = id(exc)
        self.event(
            "exception",
            type=type(exc).__qualname__,
            message=safe_str(exc, f"<unprintable {type(exc).__name__}>"),
            stacktrace="".join(traceback.format_exception(exc)),
        )
        return exc

    def expected(self, exc: E) -> E:
        """Record ``exc`` as an *expected* exception: an ``exception`` event
        (``type``, ``message``, ``expected=True``, no stack trace), the status
        unchanged.  What a span does with an exception it was told to ignore
        (``ignore=`` of the factory, ``exp.ignore(...)``, ``alamos.new(...,
        ignore=...)``, or a request's 4xx ``HTTPException`` under
        :class:`alamos.asgi.AlamosMiddleware`).  Returns ``exc``."""
        if self.end_ns is not None:
            return exc
        self._error_id = id(exc)
        self.event(
            "exception",
            type=type(exc).__qualname__,
            message=safe_str(exc, f"<unprintable {type(exc).__name__}>"),
            expected=True,
        )
        return exc

    def _is_expected(self, exc: BaseException) -> bool:
        """Whether ``exc`` leaving the span is expected: one of the span's or
        its experiment's ignored types, or expected in this context
        (:data:`alamos.core.context.EXPECTED`).  Only on the exception path."""
        ignore = self._ignore
        if ignore and isinstance(exc, ignore):
            return True
        ignore = self._tracer.ignore
        if ignore and isinstance(exc, ignore):
            return True
        predicate = EXPECTED.get()
        if predicate is None:
            return False
        try:
            return bool(predicate(exc))
        except Exception:  # a broken predicate: the exception is an error, as without one
            return False

    def set_status(self, status: str, description: str | None = None) -> Span:
        """Set the status to "unset", "ok" or "error" (ignored once ended)."""
        if status not in ("unset", "ok", "error"):
            raise ValueError(f"invalid span status {status!r}: use 'unset', 'ok' or 'error'")
        if self.end_ns is not None:
            return self
        self.status = status
        if description is not None:
            self.error_text = text = coerce_text(description, MAX_MESSAGE)
            self._weigh(text_size(text))
        return self

    # -- views ------------------------------------------------------------

    @property
    def context(self) -> SpanContext:
        return SpanContext(
            f"{self.trace_int:032x}", f"{self.span_int:016x}", self.sampled, self.tracestate
        )

    @property
    def trace_id(self) -> str:
        return f"{self.trace_int:032x}"

    @property
    def span_id(self) -> str:
        return f"{self.span_int:016x}"

    @property
    def parent_id(self) -> str | None:
        return None if self.parent_int is None else f"{self.parent_int:016x}"

    @property
    def attributes(self) -> Mapping[str, Any]:
        return MappingProxyType(self._attrs) if self._attrs else EMPTY_ATTRIBUTES

    @property
    def events(self) -> tuple[EventRecord, ...]:
        return tuple(self._events) if self._events else ()

    @property
    def recording(self) -> bool:
        return self.sampled and self.end_ns is None

    def __repr__(self) -> str:
        return f"<Span {self.path}:{self.name} {self.status} trace={self.trace_id}>"

    def to_record(self, service: str, node: str) -> SpanRecord:
        """The frozen record of this finished span (built by the collector's
        worker, off the instrumented thread: see :class:`alamos.core.handoff.Item`)."""
        pid = self.parent_int
        attrs = self._attrs
        events = self._events
        name = self.name
        if type(name) is not str:  # its __class__ claimed str (a mock): no user code here
            name = f"<{type(name).__name__}>"
        return new_span_record(
            hex_id(self.trace_int, 16),
            hex_id(self.span_int, 8),
            None if pid is None else hex_id(pid, 8),
            self._tracer.path,
            name,
            self.level,
            self.start_ns,
            self.end_ns if self.end_ns is not None else self.start_ns,
            self.status,
            self.error_text,
            # No copy: a finished span ignores set(), so its dict never changes again.
            MappingProxyType(attrs) if attrs else EMPTY_ATTRIBUTES,
            tuple(events) if events else (),
            service,
            node,
            self.session_id,
            self.location,
        )

    # The compact form queued behind a backlog (alamos.core.handoff.Compact).
    compact = compact_span
    from_compact = staticmethod(span_from_compact)


class _SizedTracer:
    """The tracer of one span that holds long text (names, attribute values,
    events, error texts over :data:`~alamos.core.attributes.SMALL_TEXT`):
    the span's real tracer, except that its ``_put`` passes the span's size
    (``extra``) to the hand-off.  The span switches to it in
    :meth:`Span._weigh`, so the common span pays nothing for the byte bound
    (a ``with`` binds ``__exit__`` when it starts, so a switch of the span's
    class would come too late).
    """

    __slots__ = ("_real", "extra")

    def __init__(self, real: Tracer) -> None:
        self._real = real
        self.extra = 0

    def _put(self, span: Span) -> None:
        self._real._put(span, self.extra)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def current_span() -> Span | None:
    """The span now current in this context, or ``None``."""
    span: Span | None = CURRENT.get()
    return span
