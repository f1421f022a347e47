"""Span factories: ``exp.trace.prod("write")``, ``.debug(...)``, ``.bench(...)``.

Every experiment owns one :class:`Tracer`.  The tracer holds its
experiment's on/off decision per level as plain booleans, refreshed by the
experiment whenever the filter changes, so a filtered-out factory call costs
one attribute check and returns a shared :class:`NoopSpan`.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from alamos.core.context import SpanContext
from alamos.core.level import Level, LevelLike, parse_level
from alamos.trace.noop import NoopSpan
from alamos.trace.sampling import Sampler
from alamos.trace.span import Span

if TYPE_CHECKING:
    from alamos.experiment.experiment import Experiment
    from alamos.report.pipeline.collector import Collector

__all__ = ["SpanDecorator", "Tracer"]

F = TypeVar("F", bound=Callable[..., Any])

_FULL = 1 << 64

# The factories read the levels from module globals: in CPython 3.11 an enum
# member looked up on its class (``Level.PROD``) costs about 200 ns, some 10%
# of a recorded span, where a global costs about 10 ns (bench/: recorded_span).
_BENCH, _DEBUG, _PROD = Level.BENCH, Level.DEBUG, Level.PROD

_HERE = {os.path.dirname(os.path.abspath(__file__))}

Parent = SpanContext | Span | None


class Tracer:
    """The span factories of one experiment."""

    __slots__ = (
        "_always",
        "_bench",
        "_collector",
        "_debug",
        "_emit",
        "_exp",
        "_noop_bench",
        "_noop_debug",
        "_noop_prod",
        "_prod",
        "_sampler",
        "_session_id",
        "_track",
        "path",
    )

    path: str
    _always: bool
    _track: bool
    _session_id: str | None

    def __init__(
        self,
        exp: Experiment,
        emit: Callable[[Span], None],
        sampler: Sampler,
        track: bool,
        collector: Collector | None = None,
    ) -> None:
        self._exp = exp
        self.path = exp.path
        self._emit = emit
        # Set when ``emit`` is just ``collector.put``: Span.__exit__ then
        # appends to the queue itself instead of calling ``emit``.
        self._collector = collector
        self._sampler = sampler
        self._always = sampler.threshold >= _FULL
        self._track = track
        self._bench = self._debug = self._prod = False
        self._session_id: str | None = None
        self._noop_bench = NoopSpan(self, Level.BENCH)
        self._noop_debug = NoopSpan(self, Level.DEBUG)
        self._noop_prod = NoopSpan(self, Level.PROD)

    def _refresh(self, bench: bool, debug: bool, prod: bool, session_id: str | None) -> None:
        self._bench, self._debug, self._prod = bench, debug, prod
        self._session_id = session_id

    # -- the factories (hot path) -------------------------------------------

    @overload
    def prod(
        self, name: str, /, *, parent: Parent = ..., attributes: Mapping[str, Any] | None = ...
    ) -> Span | NoopSpan: ...

    @overload
    def prod(
        self,
        name: None = ...,
        /,
        *,
        parent: Parent = ...,
        attributes: Mapping[str, Any] | None = ...,
    ) -> SpanDecorator | NoopSpan: ...

    def prod(
        self,
        name: str | None = None,
        /,
        *,
        parent: Parent = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Span | NoopSpan | SpanDecorator:
        """A prod-level span named ``name``; with no name, a decorator."""
        if not self._prod:
            return self._noop_prod
        if name is None:
            return SpanDecorator(self, _PROD)
        span = Span(self, _PROD, name, parent)
        if attributes:
            span.set_attributes(attributes)
        return span

    @overload
    def debug(
        self, name: str, /, *, parent: Parent = ..., attributes: Mapping[str, Any] | None = ...
    ) -> Span | NoopSpan: ...

    @overload
    def debug(
        self,
        name: None = ...,
        /,
        *,
        parent: Parent = ...,
        attributes: Mapping[str, Any] | None = ...,
    ) -> SpanDecorator | NoopSpan: ...

    def debug(
        self,
        name: str | None = None,
        /,
        *,
        parent: Parent = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Span | NoopSpan | SpanDecorator:
        """A debug-level span named ``name``; with no name, a decorator."""
        if not self._debug:
            return self._noop_debug
        if name is None:
            return SpanDecorator(self, _DEBUG)
        span = Span(self, _DEBUG, name, parent)
        if attributes:
            span.set_attributes(attributes)
        return span

    @overload
    def bench(
        self, name: str, /, *, parent: Parent = ..., attributes: Mapping[str, Any] | None = ...
    ) -> Span | NoopSpan: ...

    @overload
    def bench(
        self,
        name: None = ...,
        /,
        *,
        parent: Parent = ...,
        attributes: Mapping[str, Any] | None = ...,
    ) -> SpanDecorator | NoopSpan: ...

    def bench(
        self,
        name: str | None = None,
        /,
        *,
        parent: Parent = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Span | NoopSpan | SpanDecorator:
        """A bench-level span named ``name``; with no name, a decorator."""
        if not self._bench:
            return self._noop_bench
        if name is None:
            return SpanDecorator(self, _BENCH)
        span = Span(self, _BENCH, name, parent)
        if attributes:
            span.set_attributes(attributes)
        return span

    @overload
    def span(
        self,
        level: LevelLike,
        name: str,
        /,
        *,
        parent: Parent = ...,
        attributes: Mapping[str, Any] | None = ...,
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
    ) -> SpanDecorator | NoopSpan: ...

    def span(
        self,
        level: LevelLike,
        name: str | None = None,
        /,
        *,
        parent: Parent = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Span | NoopSpan | SpanDecorator:
        """The factory for a level given at run time."""
        lvl = parse_level(level)
        if lvl is Level.PROD:
            return self.prod(name, parent=parent, attributes=attributes)
        if lvl is Level.DEBUG:
            return self.debug(name, parent=parent, attributes=attributes)
        return self.bench(name, parent=parent, attributes=attributes)

    def enabled(self, level: LevelLike) -> bool:
        lvl = parse_level(level)
        if lvl is Level.PROD:
            return self._prod
        return self._debug if lvl is Level.DEBUG else self._bench

    # -- helpers used by Span -----------------------------------------------

    def _root_sampled(self, trace_id: int) -> bool:
        return self._always or self._sampler.sample(trace_id, None)

    def _sampled_with_parent(self, trace_id: int, parent_sampled: bool) -> bool:
        return self._sampler.sample(trace_id, parent_sampled)

    def _decorate(self, level: Level, name: str | None, fn: F) -> F:
        span_name = name if name is not None else getattr(fn, "__qualname__", repr(fn))
        factory = {Level.PROD: self.prod, Level.DEBUG: self.debug, Level.BENCH: self.bench}[level]
        return decorate(lambda: factory(span_name), fn)

    def _track_open(self, span: Span) -> None:
        span.location = _user_location()
        self._exp._root_state.track_open(span)

    def _untrack(self, span: Span) -> None:
        self._exp._root_state.untrack(span)


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
