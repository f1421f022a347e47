"""The dashboard's view of the database: one engine, and clear failures.

:class:`Database` keeps one pooled engine for the life of the app (a page
runs several queries; PostgreSQL connections are not free to open) and
checks on every request, not once at start, that the database is there:
the dashboard may be started before the first export.  Each failure is a
:class:`~alamos.core.errors.TraceQueryError` whose message says what to do;
the app turns it into a page (:mod:`alamos.dashboard.app`), never a stack
trace.

:class:`Window` is the time range a page shows (15 min, 1 h, 24 h, 7 d or
custom) and :class:`Filters` the service, node and level filters of the
tree and layer pages.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
from sqlalchemy import Connection, Engine, Table, create_engine, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from alamos.core.errors import TraceQueryError
from alamos.core.level import LOG_LEVELS, Level
from alamos.dashboard.sketch_cache import SketchCache
from alamos.report.sql import normalize_url
from alamos.report.sql.reading import reason_of
from alamos.report.sql.schema import logs as logs_table
from alamos.report.sql.schema import spans as spans_table

__all__ = ["WINDOWS", "Database", "Filters", "Window", "parse_filters", "parse_window"]

#: The windows a page offers, by name, in seconds.
WINDOWS: Mapping[str, int] = {"15m": 900, "1h": 3600, "24h": 86400, "7d": 604800}
DEFAULT_WINDOW = "1h"
_LEVELS = ("bench", "debug", "prod")


class Database:
    """The database at ``url``, read through one pooled engine."""

    def __init__(self, url: str) -> None:
        try:
            self.url = normalize_url(url)
        except ValueError as exc:
            raise TraceQueryError(str(exc)) from exc
        self.shown = self.url.render_as_string(hide_password=True)
        self.dialect = "sqlite" if self.url.drivername.startswith("sqlite") else "postgresql"
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        #: Summed statistics sketches kept between requests (see sketch_cache).
        self.sketches = SketchCache()

    def _file(self) -> Path | None:
        if self.dialect != "sqlite":
            return None
        database = self.url.database or ""
        if database in ("", ":memory:"):
            raise TraceQueryError(
                f"{self.shown} is an in-memory database: it holds nothing to show; "
                "give the URL of the database alamos exports to (--db)"
            )
        return None if database.startswith("file:") else Path(database)

    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                args: dict[str, Any] = {}
                if self.dialect == "postgresql":
                    args["connect_args"] = {"connect_timeout": 10}
                self._engine = create_engine(self.url, pool_pre_ping=True, **args)
            return self._engine

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection, after checking that the alamos tables are there.

        Raises :class:`TraceQueryError` for a missing SQLite file, a database
        that cannot be reached, or one nothing has been exported to yet.
        """
        path = self._file()
        if path is not None and not path.is_file():
            raise TraceQueryError(
                f"no SQLite database at {path} (from {self.shown}): check --db, "
                "or run your instrumented program (or `alamos demo`) first"
            )
        try:
            with self.engine().connect() as conn:
                if not inspect(conn).has_table(spans_table.name):
                    raise TraceQueryError(
                        f"{self.shown} has no alamos tables: nothing has been exported to it "
                        "yet (run your instrumented program, or `alamos demo --db ...`)"
                    )
                yield conn
        except SQLAlchemyError as exc:
            raise TraceQueryError(f"cannot read {self.shown}: {reason_of(exc)}") from exc

    def dispose(self) -> None:
        self.sketches.clear()
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


@attrs.frozen
class Window:
    """``[start_ns, end_ns)``; ``name`` is a key of :data:`WINDOWS` or ``"custom"``."""

    name: str
    start_ns: int
    end_ns: int

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    def step_ns(self, buckets: int) -> int:
        """The width of one of ``buckets`` equal buckets (at least 1 ns)."""
        return max(1, math.ceil((self.end_ns - self.start_ns) / buckets))

    def query(self) -> dict[str, str]:
        """The query-string parameters that select this window again."""
        if self.name != "custom":
            return {"w": self.name}
        return {"w": "custom", "from": _iso(self.start_ns), "to": _iso(self.end_ns)}


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _parse_time(text: str) -> int:
    """``2024-05-01T12:00[:00]`` (UTC) or ns since the epoch."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(
            f"invalid time {text!r}: expected YYYY-MM-DDTHH:MM[:SS] (UTC) "
            "or nanoseconds since the epoch"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1e9)


def parse_window(params: Mapping[str, str], now_ns: int | None = None) -> Window:
    """The window of a request's ``w`` (and ``from``/``to`` for ``custom``).

    Raises :class:`ValueError` with a message for the page on bad input.
    """
    name = params.get("w") or DEFAULT_WINDOW
    now = time.time_ns() if now_ns is None else now_ns
    if name == "custom":
        start = _parse_time(params.get("from") or "")
        end = _parse_time(params.get("to") or "") if params.get("to") else now
        if end <= start:
            raise ValueError("the custom window ends before it starts: swap 'from' and 'to'")
        return Window("custom", start, end)
    seconds = WINDOWS.get(name)
    if seconds is None:
        raise ValueError(f"unknown window {name!r}: use {', '.join(WINDOWS)} or custom")
    return Window(name, now - seconds * 1_000_000_000, now + 1)


@attrs.frozen
class Filters:
    """The service, node and level filters (empty: no filter).

    ``level`` keeps spans at that level or above (``debug`` keeps debug and
    prod) and logs exported at that level or above.
    """

    service: str = ""
    node: str = ""
    level: str = ""

    @property
    def span_levels(self) -> tuple[str, ...] | None:
        if not self.level:
            return None
        floor = Level[self.level.upper()]
        return tuple(n for n in _LEVELS if Level[n.upper()] >= floor)

    @property
    def log_levels(self) -> tuple[str, ...] | None:
        if not self.level:
            return None
        floor = Level[self.level.upper()]
        return tuple(n for n, lvl in LOG_LEVELS.items() if lvl >= floor)

    def conditions(
        self, table: Table, levels: tuple[str, ...] | None = None
    ) -> list[ColumnElement[bool]]:
        """The service and node filters on ``table``'s columns, and ``levels``
        (:attr:`span_levels` or :attr:`log_levels`, as the table stores them)."""
        c = table.c
        conds: list[ColumnElement[bool]] = []
        if self.service:
            conds.append(c.service == self.service)
        if self.node:
            conds.append(c.node == self.node)
        if levels is not None:
            conds.append(c.level.in_(levels))
        return conds

    def spans_in(self, window: Window) -> list[ColumnElement[bool]]:
        """The spans that started in ``window`` and pass these filters."""
        s = spans_table.c
        return [
            s.start_ns >= window.start_ns,
            s.start_ns < window.end_ns,
            *self.conditions(spans_table, self.span_levels),
        ]

    def logs_in(self, window: Window) -> list[ColumnElement[bool]]:
        """The logs written in ``window`` that pass these filters."""
        lg = logs_table.c
        return [
            lg.ts_ns >= window.start_ns,
            lg.ts_ns < window.end_ns,
            *self.conditions(logs_table, self.log_levels),
        ]

    def query(self) -> dict[str, str]:
        return {k: v for k, v in attrs.asdict(self).items() if v}


def parse_filters(params: Mapping[str, str]) -> Filters:
    level = (params.get("level") or "").strip().lower()
    if level and level not in _LEVELS:
        raise ValueError(f"unknown level {level!r}: use bench, debug or prod")
    return Filters(
        service=(params.get("service") or "").strip(),
        node=(params.get("node") or "").strip(),
        level=level,
    )
