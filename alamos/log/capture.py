"""Capture plain loguru calls into an experiment tree.

Code that already logs with ``from loguru import logger`` keeps doing so;
``alamos.log.capture(exp)`` adds one loguru sink that turns those records
into alamos log records of ``exp`` (with the current span's ids and the
debug session), so they reach the database beside everything else.  Records
that alamos itself passed to loguru (``extra["alamos"]``) are skipped, so
nothing is recorded twice.  The sink is removed when the tree closes, or by
calling the returned handle's ``close()``.  It is the only sink alamos ever
adds to loguru, and only when asked.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from loguru import logger as _loguru

from alamos.core.attributes import MAX_ATTRIBUTES, coerce_key, coerce_value
from alamos.core.context import CURRENT
from alamos.log.logger import LOG_ITEM

if TYPE_CHECKING:
    from loguru import Message, Record

    from alamos.experiment.experiment import Experiment

__all__ = ["Capture", "capture"]

_KNOWN = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")


def _level_name(record: Record) -> str:
    name = record["level"].name
    if name in _KNOWN:
        return name
    # A custom loguru level: the highest standard level at or below its number.
    no = record["level"].no
    out = "TRACE"
    for std, std_no in zip(_KNOWN, (5, 10, 20, 25, 30, 40, 50), strict=True):
        if no >= std_no:
            out = std
    return out


class Capture:
    """A loguru sink feeding ``exp``; ``close()`` removes it (idempotent)."""

    def __init__(self, exp: Experiment, level: str | int) -> None:
        self.exp = exp
        self.handler_id: int | None = None
        state = exp._root_state
        with state.lock:
            if state.closed:  # NOOP, or a closed tree: nothing would remove the sink
                return
            self.handler_id = _loguru.add(
                self._sink,
                level=level,
                filter=lambda r: not r["extra"].get("alamos"),
                format="{message}",
                catch=True,
            )
            state.closers.append(self.close)

    def _sink(self, message: Message) -> None:
        record = message.record
        exp = self.exp
        name = _level_name(record)
        if not exp.log.enabled(name):
            return
        attrs: dict[str, Any] = {}
        for key, value in record["extra"].items():
            if len(attrs) >= MAX_ATTRIBUTES:
                break
            attrs[coerce_key(key)] = coerce_value(value)
        if record["exception"] is not None:
            attrs["exception"] = coerce_value(str(record["exception"]))
        cur = CURRENT.get()
        exp._root_state.emit(
            (
                LOG_ITEM,
                int(record["time"].timestamp() * 1e9),
                exp.path,
                name,
                record["message"],
                None if cur is None else cur._tid,
                None if cur is None else cur._sid,
                attrs or None,
                f"{record['name']}:{record['function']}:{record['line']}",
                exp._session_id,
            )
        )

    def close(self) -> None:
        handler_id, self.handler_id = self.handler_id, None
        if handler_id is not None:
            with contextlib.suppress(ValueError):  # already removed by the user
                _loguru.remove(handler_id)


def capture(exp: Experiment, *, level: str | int = "TRACE") -> Capture:
    """Record plain ``loguru.logger`` calls (at ``level`` and up, and allowed by
    ``exp``'s filter) as log records of ``exp``."""
    return Capture(exp, level)
