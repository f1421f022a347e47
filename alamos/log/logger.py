"""Per-experiment logging on top of loguru.

alamos keeps two sides apart:

* the **record** side: every emitted call becomes a
  :class:`~alamos.core.records.LogRecord` carrying the experiment path,
  the current span's ids and the debug session id, bound for the exporters.
  It is cheap: a formatted message, a timestamp and a small tuple, with no
  frame object, datetime, thread or process lookups of loguru's record;
* the **human** side: when console output is on, the same message is also
  passed to loguru (``loguru.logger``), so it reaches the console, files
  and whatever sinks the user configured.  alamos never adds, removes or
  reconfigures the user's loguru sinks.

A level check happens before anything else, so a filtered-out call is one
attribute test (cheaper than loguru's or the stdlib's own filtered-out call).
Levels follow the experiment's threshold: prod shows INFO and up, debug shows
DEBUG and up, bench shows TRACE and up.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from time import time_ns
from typing import TYPE_CHECKING, Any

from loguru import logger as _loguru

from alamos.core.attributes import MAX_ATTRIBUTES, coerce_key, coerce_value
from alamos.core.context import CURRENT

if TYPE_CHECKING:
    from alamos.experiment.experiment import Experiment

__all__ = ["LOG_ITEM", "Logger", "NoopLogger"]

#: Tag of the tuples a log call hands to the collector (see collector.py).
LOG_ITEM = "log"

LogItem = tuple[Any, ...]


def _format(message: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """``message.format(*args, **kwargs)``; never raises (a log call must not
    fail the caller): a bad format string keeps the raw message and says why."""
    try:
        text = message if type(message) is str else str(message)
    except Exception:
        text = _safe_repr(message)
    if args or kwargs:
        try:
            return text.format(*args, **kwargs)
        except Exception as exc:  # a bad format string must not lose the message
            return (
                f"{text} [format error: {type(exc).__name__}: {_safe_str(exc)}; "
                f"args={_safe_repr(args)} kwargs={_safe_repr(kwargs)}]"
            )
    return text


_LEVEL_NAMES = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")


def _level_name(level: object) -> str:
    name = level.upper() if isinstance(level, str) else None
    if name not in _LEVEL_NAMES:
        raise ValueError(
            f"invalid log level {level!r}: use TRACE, DEBUG, INFO, SUCCESS, WARNING, "
            "ERROR or CRITICAL"
        )
    return name


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return _safe_repr(value)


class Logger:
    """The log methods of one experiment: ``exp.log.info("opened {n} files", n=3)``.

    Positional and keyword arguments format the message as in loguru
    (``str.format``); keyword arguments are also stored as the record's
    ``attributes``.
    """

    __slots__ = ("_console", "_debug", "_emit", "_exp", "_info", "_trace", "path")

    def __init__(self, exp: Experiment, emit: Callable[[LogItem], None], console: bool) -> None:
        self._exp = exp
        self.path = exp.path
        self._emit = emit
        self._console = console
        self._trace = self._debug = self._info = False

    def _refresh(self, bench: bool, debug: bool, prod: bool) -> None:
        self._trace, self._debug, self._info = bench, debug, prod

    def trace(self, message: Any, /, *args: Any, **kwargs: Any) -> None:
        if self._trace:
            self._log("TRACE", message, args, kwargs)

    def debug(self, message: Any, /, *args: Any, **kwargs: Any) -> None:
        if self._debug:
            self._log("DEBUG", message, args, kwargs)

    def info(self, message: Any, /, *args: Any, **kwargs: Any) -> None:
        if self._info:
            self._log("INFO", message, args, kwargs)

    def success(self, message: Any, /, *args: Any, **kwargs: Any) -> None:
        if self._info:
            self._log("SUCCESS", message, args, kwargs)

    def warning(self, message: Any, /, *args: Any, **kwargs: Any) -> None:
        if self._info:
            self._log("WARNING", message, args, kwargs)

    def error(self, message: Any, /, *args: Any, **kwargs: Any) -> None:
        if self._info:
            self._log("ERROR", message, args, kwargs)

    def critical(self, message: Any, /, *args: Any, **kwargs: Any) -> None:
        if self._info:
            self._log("CRITICAL", message, args, kwargs)

    def exception(self, message: Any, /, *args: Any, **kwargs: Any) -> None:
        """Log at ERROR with the exception being handled (its traceback is
        stored in the ``exception`` attribute)."""
        if self._info:
            self._log("ERROR", message, args, kwargs, exc=True)

    def log(self, level: str, message: Any, /, *args: Any, **kwargs: Any) -> None:
        """Log at a level given by name (TRACE ... CRITICAL, any case)."""
        name = _level_name(level)
        if self.enabled(name):
            self._log(name, message, args, kwargs)

    def enabled(self, level: str) -> bool:
        """Whether a log call at ``level`` (a name, any case) is kept right now."""
        name = _level_name(level)
        if name == "TRACE":
            return self._trace
        return self._debug if name == "DEBUG" else self._info

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
        attrs: dict[str, Any] | None = None
        if kwargs:
            attrs = {}
            for key, value in kwargs.items():
                if len(attrs) >= MAX_ATTRIBUTES:
                    break
                attrs[coerce_key(key)] = coerce_value(value)
        if exc:
            info = sys.exc_info()
            exc = info[1] is not None  # loguru would print "NoneType: None"
            if info[1] is not None:
                attrs = attrs if attrs is not None else {}
                attrs["exception"] = coerce_value("".join(traceback.format_exception(info[1])))
        frame = sys._getframe(2)
        location = f"{frame.f_globals.get('__name__', '?')}:{frame.f_code.co_name}:{frame.f_lineno}"
        cur = CURRENT.get()
        self._emit(
            (
                LOG_ITEM,
                ts,
                self.path,
                level,
                text,
                None if cur is None else cur._tid,
                None if cur is None else cur._sid,
                attrs,
                location,
                self._exp._session_id,
            )
        )
        if self._console:
            _loguru.opt(depth=2, exception=exc).bind(alamos=True, alamos_path=self.path).log(
                level, text
            )


class NoopLogger:
    """The logger of :data:`alamos.NOOP` and of a closed experiment: does nothing."""

    __slots__ = ()

    path = ""

    def trace(self, message: Any, /, *args: Any, **kwargs: Any) -> None:
        return None

    debug = info = success = warning = error = critical = exception = trace

    def log(self, level: str, message: Any, /, *args: Any, **kwargs: Any) -> None:
        return None

    def enabled(self, level: str) -> bool:
        return False
