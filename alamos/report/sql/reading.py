"""Opening a database to read alamos' tables back (traces, budgets, statistics, rules).

Shared by every reader above the storage side (:mod:`alamos.report.query`,
:mod:`alamos.stats`, :mod:`alamos.rules`): one way to open a URL for reading, and one way a
failure to read is reported (:class:`~alamos.core.errors.TraceQueryError`,
naming the database with its password hidden).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Engine, create_engine, inspect, or_
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from alamos.core.errors import TraceQueryError
from alamos.core.level import Level, parse_level
from alamos.report.sql.exporter import normalize_url
from alamos.report.sql.schema import spans

__all__ = [
    "decode_json",
    "decode_level",
    "decode_mapping",
    "in_subtree",
    "read_engine",
    "reason_of",
    "run_read",
]

T = TypeVar("T")


def reason_of(exc: BaseException) -> str:
    """The first line of a database error (the driver's, under SQLAlchemy's
    wrapper), for a message."""
    orig = getattr(exc, "orig", None)
    reason = str(orig if orig is not None else exc).strip()
    return reason.splitlines()[0] if reason else type(exc).__name__


def read_engine(url: str) -> Engine:
    """An engine for reading ``url``, failing clearly rather than creating a file.

    SQLite would silently create an empty database at a mistyped path; a
    reader checks that the file exists first.
    """
    try:
        u = normalize_url(url)
    except ValueError as exc:
        raise TraceQueryError(str(exc)) from exc
    shown = u.render_as_string(hide_password=True)
    connect_args: dict[str, Any] = {}
    if u.drivername == "sqlite":
        database = u.database or ""
        if database in ("", ":memory:"):
            raise TraceQueryError(f"{shown} is an in-memory database: it holds no traces")
        if not database.startswith("file:") and not Path(database).is_file():
            raise TraceQueryError(f"no SQLite database at {database} (from {shown})")
    else:
        connect_args["connect_timeout"] = 10
    return create_engine(u, poolclass=NullPool, connect_args=connect_args)


def run_read(url: str, work: Callable[[Connection], T], *, table: str = spans.name) -> T:
    """``work(conn)`` on a connection to ``url``; any failure to read becomes
    a :class:`TraceQueryError` naming the database (password hidden).  A
    database without ``table`` (nothing exported to it yet, or an alamos
    older than that table) is refused with a message saying so."""
    engine = read_engine(url)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(table):
                if table == spans.name:
                    raise TraceQueryError(
                        f"{shown} has no alamos tables: nothing has been exported to it yet"
                    )
                raise TraceQueryError(
                    f"{shown} has no {table} table: nothing has been exported to it yet "
                    "by an alamos that writes it"
                )
            return work(conn)
    except SQLAlchemyError as exc:
        raise TraceQueryError(f"cannot read {shown}: {reason_of(exc)}") from exc
    finally:
        engine.dispose()


def in_subtree(column: Any, path: str) -> ColumnElement[bool]:
    """``column`` (an experiment path) is ``path`` or a path below it.

    ``startswith`` escapes ``%`` and ``_`` (a key may hold either), so
    ``a_b`` never matches ``axb.c``."""
    condition: ColumnElement[bool] = or_(
        column == path, column.startswith(path + ".", autoescape=True)
    )
    return condition


# -- decoding column values ------------------------------------------------------
# Lenient on purpose: the tables are shared and public, so one corrupt JSON
# value or unknown level text shows as empty or ``prod`` rather than making a
# whole listing unreadable.  Every reader (report.query, stats) uses these.


def decode_json(value: object) -> object:
    """A JSON column read as text (or already decoded, as JSONB is): the
    value, or ``None`` for text that is not JSON."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return None


def decode_mapping(value: object) -> Mapping[str, Any]:
    """A JSON object column: the mapping, or ``{}`` for anything else."""
    value = decode_json(value)
    return value if isinstance(value, dict) else {}


def decode_level(value: object) -> Level:
    """A level column: the level, or ``prod`` for unknown text."""
    try:
        return parse_level(value)  # type: ignore[arg-type]
    except ValueError:
        return Level.PROD  # unknown text in a shared table: show it, don't fail
