"""Span factories: ``exp.trace.prod("write")``, ``.debug(...)``, ``.bench(...)``.

Every experiment owns one :class:`Tracer`, built with what it needs and
nothing more: the experiment's :class:`~alamos.core.scope.LiveScope` (its
path, which levels are on, the debug session), the hand-off's ``put``, the
sampler, and the debug-mode callbacks for spans started and ended.  The
tracer keeps the on/off decision per level as plain booleans, updated when
the scope changes, so a filtered-out factory call costs one attribute check
and returns a shared :class:`NoopSpan`.

The three factories are generated from one template (:data:`_FACTORY`), one
per level: written out, they were three copies with three sets of
overloads.  Generated code reads its level as a constant and its on/off
flag as a slot, as fast as the hand-written copies (bench/: filtered_span,
recorded_span), and its source is in :mod:`linecache` for tracebacks.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, overload

from alamos.core.attributes import SMALL_TEXT
from alamos.core.codegen import compile_function
from alamos.core.context import SpanContext
from alamos.core.handoff import Put
from alamos.core.level import Level, LevelLike, parse_level
from alamos.core.scope import LiveScope, Scope
from alamos.trace.noop import NoopSpan
from alamos.trace.sampling import FULL, Sampler
from alamos.trace.span import Span

__all__ = ["Ignore", "SpanDecorator", "SpanFactory", "Tracer", "check_ignore"]

F = TypeVar("F", bound=Callable[..., Any])

_HERE = {os.path.dirname(os.path.abspath(__file__))}

Parent = SpanContext | Span | None
#: Exception types a span treats as expected (``ignore=``).
Ignore = tuple[type[BaseException], ...]


def check_ignore(types: object) -> Ignore:
    """``types`` as a tuple of exception classes, or a :class:`TypeError`
    saying what ``ignore=`` takes."""
    if isinstance(types, type):
        types = (types,)
    if not isinstance(types, tuple | list) or not all(
        isinstance(t, type) and issubclass(t, BaseException) for t in types
    ):
        raise TypeError(
            f"ignore={types!r}: give exception classes, e.g. ignore=(HTTPException, KeyError)"
        )
    return tuple(types)


class SpanFactory(Protocol):
    """``exp.trace.prod`` (and ``debug``, ``bench``): a span named ``name``,
    or, with no name, a decorator naming its spans by ``__qualname__``."""

    @overload
    def __call__(
        self,
        name: str,
        /,
        *,
        parent: Parent = ...,
        attributes: Mapping[str, Any] | None = ...,
        ignore: Ignore | None = ...,
    ) -> Span | NoopSpan: ...

    @overload
    def __call__(
        self,
        name: None = ...,
        /,
        *,
        parent: Parent = ...,
        attributes: Mapping[str, Any] | None = ...,
        ignore: Ignore | None = ...,
    ) -> SpanDecorator | NoopSpan: ...


class Tracer:
    """The span factories of one experiment."""

    __slots__ = (
        "_always",
        "_bench",
        "_debug",
        "_ignore",
        "_noop_bench",
        "_noop_debug",
        "_noop_prod",
        "_on_end",
        "_on_start",
        "_prod",
        "_put",
        "_sampler",
        "_session_id",
        "_track",
        "path",
    )

    prod: SpanFactory
    debug: SpanFactory
    bench: SpanFactory

    def __init__(
        self,
        scope: LiveScope,
        put: Put,
        sampler: Sampler,
        on_start: Callable[[Span], None] | None = None,
        on_end: Callable[[Span], None] | None = None,
    ) -> None:
        self.path = scope.scope.path
        self._put = put
        self._sampler = sampler
        self._always = sampler.threshold >= FULL
        self._on_start = on_start
        self._on_end = on_end
        self._track = on_start is not None
        self._ignore: Ignore = ()
        self._noop_bench = NoopSpan(self, Level.BENCH)
        self._noop_debug = NoopSpan(self, Level.DEBUG)
        self._noop_prod = NoopSpan(self, Level.PROD)
        scope.watch(self._update)

    def _update(self, scope: Scope) -> None:
        self._bench, self._debug, self._prod = scope.bench, scope.debug, scope.prod
        self._session_id = scope.session_id
        if scope.put is not None:
            self._put = scope.put

    @overload
    def span(
        self,
        level: LevelLike,
        name: str,
        /,
        *,
        parent: Parent = ...,
        attributes: Mapping[str, Any] | None = ...,
        ignore: Ignore | None = ...,
    ) -> Span | NoopSpan: ...

    @overload
    def span(
        self,
        level: LevelLike,
        name: None = ...,
        /,
        *,
        parent: Parent = ...,
        attributes: Mapping[str, Any] | None = ...,
        ignore: Ignore | None = ...,
    ) -> SpanDecorator | NoopSpan: ...

    def span(
        self,
        level: LevelLike,
        name: str | None = None,
        /,
        *,
        parent: Parent = None,
        attributes: Mapping[str, Any] | None = None,
        ignore: Ignore | None = None,
    ) -> Span | NoopSpan | SpanDecorator:
        """The factory for a level given at run time."""
        factory: SpanFactory = getattr(self, str(parse_level(level)))
        return factory(name, parent=parent, attributes=attributes, ignore=ignore)

    @property
    def ignore(self) -> Ignore:
        """Exception types this experiment's spans treat as expected: recorded
        as an event, not an error (see :meth:`Span.expected`)."""
        return self._ignore

    def set_ignore(self, types: object) -> None:
        """Replace :attr:`ignore` (exception classes; ``()`` for none)."""
        self._ignore = check_ignore(types)

    def enabled(self, level: LevelLike) -> bool:
        enabled: bool = getattr(self, f"_{parse_level(level)}")
        return enabled

    # -- helpers used by Span -----------------------------------------------

    def _root_sampled(self, trace_id: int) -> bool:
        return self._always or self._sampler.sample(trace_id, None)

    def _sampled_with_parent(self, trace_id: int, parent_sampled: bool) -> bool:
        return self._sampler.sample(trace_id, parent_sampled)

    def _decorate(self, level: Level, name: str | None, fn: F) -> F:
        span_name = name if name is not None else getattr(fn, "__qualname__", repr(fn))
        factory: SpanFactory = getattr(self, str(level))
        return decorate(lambda: factory(span_name), fn)

    def _track_open(self, span: Span) -> None:
        span.location = _user_location()
        if self._on_start is not None:
            self._on_start(span)

    def _untrack(self, span: Span) -> None:
        if self._on_end is not None:
            self._on_end(span)


# The template of the factories.  The level is a constant of the generated
# code: in CPython 3.11 an enum member looked up on its class (``Level.PROD``)
# costs about 200 ns, some 10% of a recorded span, where a global costs
# about 10 ns (bench/: recorded_span).  So is the length under which a str
# name is kept as it is; any other name is coerced here, on the caller's
# thread (``Span._set_name``: text, cut at MAX_NAME, weighed).  The check
# reads ``name.__class__``, not ``type(name)``: 155 against 365 instructions
# per span (callgrind, this CPython build), of about 14,700; an object lying
# about its class (a mock) is caught by ``Span.to_record``.  ``None`` (the
# decorator form, rare) is tested after it, so a named span pays one test.
# ``ignore=`` (issue 14) costs a default argument and one ``is not None``
# test: callgrind, 13,197 -> 13,115 instructions per recorded span (whole
# process, worker included: no measurable change); bench.compare, 3 rounds:
# recorded_span +3.2% (ranges overlapping), span_3_attributes -0.1%.  The
# experiment's ignored types are read only when an exception leaves a span.
_FACTORY = """\
def {name}(self, name=None, /, *, parent=None, attributes=None, ignore=None):
    if not self._{name}:
        return self._noop_{name}
    span = _new(Span)
    span._tracer = self
    if name.__class__ is str and len(name) <= {small}:
        span.name = name
    elif name is None:
        return SpanDecorator(self, {constant})
    else:
        span._set_name(name)
    span.level = {constant}
    span._attrs = None
    span.end_ns = None
    span._parent = parent
    if attributes:
        span.set_attributes(attributes)
    if ignore is not None:
        span._ignore = _check_ignore(ignore)
    return span
"""


def _make_factories() -> None:
    for level in Level:
        name, constant = str(level), f"_{level.name}"
        namespace: dict[str, Any] = {
            "Span": Span,
            "SpanDecorator": SpanDecorator,
            "_new": object.__new__,
            "_check_ignore": check_ignore,
            constant: level,
        }
        source = _FACTORY.format(name=name, constant=constant, small=SMALL_TEXT)
        factory = compile_function(name, source, namespace, owner="Tracer")
        factory.__doc__ = f"A {name}-level span named ``name``; with no name, a decorator."
        setattr(Tracer, name, factory)


class SpanDecorator:
    """What ``exp.trace.prod()`` (no name) returns: a decorator whose spans are
    named after the function's ``__qualname__``."""

    __slots__ = ("_level", "_tracer")

    def __init__(self, tracer: Tracer, level: Level) -> None:
        self._tracer = tracer
        self._level = level

    def __call__(self, fn: F) -> F:
        return self._tracer._decorate(self._level, None, fn)

    def __enter__(self) -> None:
        raise TypeError(
            "a span needs a name: write `with exp.trace.prod('name'):`; "
            "`exp.trace.prod()` without a name is only a decorator"
        )

    def __exit__(self, *exc: object) -> None:
        return None


def _user_location() -> str:
    """``file:line`` of the first frame outside alamos' trace package."""
    frame = sys._getframe(1)
    while frame is not None and os.path.dirname(frame.f_code.co_filename) in _HERE:
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return "<unknown>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def decorate(start: Callable[[], Span | NoopSpan], fn: F) -> F:
    """Wrap ``fn`` (sync or async) so that each call runs inside ``start()``."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            with start():
                return await fn(*args, **kwargs)

        return awrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with start():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


_make_factories()
