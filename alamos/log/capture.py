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
from typing import TYPE_CHECKING, Protocol

from loguru import logger as _loguru

from alamos.core.attributes import (
    MAX_MESSAGE,
    coerce_text,
    coerce_value,
    sized_attributes,
    text_size,
)
from alamos.core.context import CURRENT
from alamos.core.level import nearest_log_level
from alamos.log.item import LogItem
from alamos.log.logger import Logger

if TYPE_CHECKING:
    from loguru import Message

__all__ = ["Capture", "capture"]


class HasLog(Protocol):
    """What :func:`capture` needs of an experiment: its logger."""

    @property
    def log(self) -> Logger: ...


class Capture:
    """A loguru sink feeding a logger; ``close()`` removes it (idempotent)."""

    def __init__(self, logger: Logger, level: str | int) -> None:
        self.logger = logger
        self.handler_id: int | None = None
        handler_id = _loguru.add(
            self._sink,
            level=level,
            filter=lambda r: not r["extra"].get("alamos"),
            format="{message}",
            catch=True,
        )
        on_close = logger._on_close
        if on_close is None or not on_close(self.close):
            # NOOP, or a closed tree: nothing would remove the sink.
            _loguru.remove(handler_id)
            return
        self.handler_id = handler_id

    def _sink(self, message: Message) -> None:
        record = message.record
        logger = self.logger
        name = nearest_log_level(record["level"].name, record["level"].no)
        if not logger.enabled(name):
            return
        attrs, size = sized_attributes(record["extra"])
        if record["exception"] is not None:
            attrs["exception"] = tb = coerce_value(str(record["exception"]))
            size += text_size(tb)
        # The same limit as alamos' own log calls (loguru's message is a str).
        text = coerce_text(record["message"], MAX_MESSAGE)
        size += text_size(text)
        cur = CURRENT.get()
        logger._put(
            LogItem(
                int(record["time"].timestamp() * 1e9),
                logger.path,
                name,
                text,
                None if cur is None else cur.trace_int,
                None if cur is None else cur.span_int,
                attrs or None,
                record["name"] or "?",
                record["function"],
                record["line"],
                logger._session_id,
            ),
            size,
        )

    def close(self) -> None:
        handler_id, self.handler_id = self.handler_id, None
        if handler_id is not None:
            with contextlib.suppress(ValueError):  # already removed by the user
                _loguru.remove(handler_id)


def capture(exp: HasLog, *, level: str | int = "TRACE") -> Capture:
    """Record plain ``loguru.logger`` calls (at ``level`` and up, and allowed by
    ``exp``'s filter) as log records of ``exp``."""
    return Capture(exp.log, level)
