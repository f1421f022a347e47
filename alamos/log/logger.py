"""Per-experiment logging on top of loguru.

alamos keeps two sides apart:

* the **record** side: every emitted call becomes a
  :class:`~alamos.core.records.LogRecord` carrying the experiment path,
  the current span's ids and the debug session id, bound for the exporters.
  It is cheap: a formatted message, a timestamp and a small
  :class:`~alamos.log.item.LogItem`, with no datetime, thread or process
  lookups of loguru's record;
* the **human** side: when console output is on, the same message is also
  passed to loguru (``loguru.logger``), so it reaches the console, files
  and whatever sinks the user configured.  alamos never adds, removes or
  reconfigures the user's loguru sinks.

A level check happens before anything else, so a filtered-out call is one
attribute test (cheaper than loguru's or the stdlib's own filtered-out call).
Levels follow the experiment's threshold: prod shows INFO and up, debug shows
DEBUG and up, bench shows TRACE and up.

Messages are text made on the caller's thread (a slow ``__str__`` of the
message or of an argument is the caller's own cost, never the worker's),
cut at :data:`~alamos.core.attributes.MAX_MESSAGE` characters (with "…",
for the record and the console alike); a long message is put with its size,
for the hand-off's byte bound.

The seven level methods are generated from the one table of log levels
(:data:`alamos.core.level.LOG_LEVELS`), each reading its on/off flag as a
slot: as fast as the hand-written copies they replace (bench/: filtered_log).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from time import time_ns
from typing import Any, Protocol

from loguru import logger as _loguru

from alamos.core.attributes import (
    MAX_MESSAGE,
    SMALL_TEXT,
    coerce_value,
    sized_attributes,
    text_size,
)
from alamos.core.codegen import compile_function
from alamos.core.context import CURRENT
from alamos.core.handoff import Put
from alamos.core.level import LOG_LEVELS, log_level_name
from alamos.core.safe import safe_repr, safe_str
from alamos.core.scope import LiveScope, Scope
from alamos.log.item import LogItem

__all__ = ["LogMethod", "Logger"]

#: Registers a function to call when the tree closes; False if already closed.
OnClose = Callable[[Callable[[], None]], bool]


class LogMethod(Protocol):
    """``exp.log.info`` and the other level methods."""

    def __call__(self, message: Any, /, *args: Any, **kwargs: Any) -> None: ...


def _format(message: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """``message.format(*args, **kwargs)``; never raises (a log call must not
    fail the caller): a bad format string keeps the raw message and says why."""
    if type(message) is str:
        text = message
    elif isinstance(message, str):  # a str subclass: its text, no user method
        text = str.__str__(message)
    else:
        try:
            # str() may return a str subclass, whose methods are user code.
            text = str.__str__(str(message))
        except Exception:
            text = str.__str__(safe_repr(message, why=False))
    if args or kwargs:
        try:
            return text.format(*args, **kwargs)
        except Exception as exc:  # a bad format string must not lose the message
            return (
                f"{text} [format error: {type(exc).__name__}: {safe_str(exc)}; "
                f"args={safe_repr(args, why=False)} kwargs={safe_repr(kwargs, why=False)}]"
            )
    return text


class Logger:
    """The log methods of one experiment: ``exp.log.info("opened {n} files", n=3)``.

    Positional and keyword arguments format the message as in loguru
    (``str.format``); keyword arguments are also stored as the record's
    ``attributes``.
    """

    __slots__ = (
        "_bench",
        "_console",
        "_debug",
        "_on_close",
        "_prod",
        "_put",
        "_session_id",
        "path",
    )

    trace: LogMethod
    debug: LogMethod
    info: LogMethod
    success: LogMethod
    warning: LogMethod
    error: LogMethod
    critical: LogMethod

    def __init__(
        self,
        scope: LiveScope,
        put: Put,
        console: bool,
        on_close: OnClose | None = None,
    ) -> None:
        self.path = scope.scope.path
        self._put = put
        self._console = console
        self._on_close = on_close
        scope.watch(self._update)

    def _update(self, scope: Scope) -> None:
        self._bench, self._debug, self._prod = scope.bench, scope.debug, scope.prod
        self._session_id = scope.session_id
        if scope.put is not None:
            self._put = scope.put

    def exception(self, message: Any, /, *args: Any, **kwargs: Any) -> None:
        """Log at ERROR with the exception being handled (its traceback is
        stored in the ``exception`` attribute)."""
        if self._prod:
            self._log("ERROR", message, args, kwargs, exc=True)

    def log(self, level: str, message: Any, /, *args: Any, **kwargs: Any) -> None:
        """Log at a level given by name (TRACE ... CRITICAL, any case)."""
        name = log_level_name(level)
        if self.enabled(name):
            self._log(name, message, args, kwargs)

    def enabled(self, level: str) -> bool:
        """Whether a log call at ``level`` (a name, any case) is kept right now."""
        on: bool = getattr(self, f"_{LOG_LEVELS[log_level_name(level)]}")
        return on

    def _log(
        self,
        level: str,
        message: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        exc: bool = False,
    ) -> None:
        ts = time_ns()
        text = _format(message, args, kwargs)
        # The bytes beyond the hand-off's fixed estimate: long text only.
        size = 0
        if len(text) > SMALL_TEXT:
            if len(text) > MAX_MESSAGE:
                text = text[:MAX_MESSAGE] + "…"
            size = text_size(text)
        attrs: dict[str, Any] | None = None
        if kwargs:
            attrs, extra = sized_attributes(kwargs)
            size += extra
        if exc:
            info = sys.exc_info()
            exc = info[1] is not None  # loguru would print "NoneType: None"
            if info[1] is not None:
                attrs = attrs if attrs is not None else {}
                tb = coerce_value("".join(traceback.format_exception(info[1])))
                attrs["exception"] = tb
                size += text_size(tb)
        frame = sys._getframe(2)
        cur = CURRENT.get()
        self._put(
            LogItem(
                ts,
                self.path,
                level,
                text,
                None if cur is None else cur.trace_int,
                None if cur is None else cur.span_int,
                attrs,
                frame.f_globals.get("__name__", "?"),
                frame.f_code.co_name,
                frame.f_lineno,
                self._session_id,
            ),
            size,
        )
        if self._console:
            _loguru.opt(depth=2, exception=exc).bind(alamos=True, alamos_path=self.path).log(
                level, text
            )


_LEVEL_METHOD = """\
def {method}(self, message, /, *args, **kwargs):
    if self._{flag}:
        self._log("{name}", message, args, kwargs)
"""


def _make_level_methods() -> None:
    for name, level in LOG_LEVELS.items():
        method = name.lower()
        source = _LEVEL_METHOD.format(method=method, flag=level, name=name)
        fn = compile_function(method, source, {}, owner="Logger")
        fn.__doc__ = f"Log at {name} (kept while {level}-level records are on here)."
        setattr(Logger, method, fn)


_make_level_methods()
