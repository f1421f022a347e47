"""Reading a database back, for the analysis packages (``alamos.rules``...).

:func:`read` runs a function on a connection to a URL and turns any failure
to read into a :class:`~alamos.core.errors.TraceQueryError` that names the
database (password hidden).  It never creates a database: SQLite would
silently create an empty file at a mistyped path, so the file must exist,
and a database without the alamos tables is refused with a clear message.
(The same rules as :mod:`alamos.report.query.traces`, which predates this
module; the analysis packages cannot import ``report.query``, one layer
over.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from alamos.core.errors import TraceQueryError
from alamos.report.sql.exporter import normalize_url
from alamos.report.sql.schema import spans

__all__ = ["read", "read_engine"]

T = TypeVar("T")


def read_engine(url: str) -> Engine:
    """An engine for reading ``url`` (no pool), failing clearly rather than
    creating a SQLite file."""
    try:
        u = normalize_url(url)
    except ValueError as exc:
        raise TraceQueryError(str(exc)) from exc
    shown = u.render_as_string(hide_password=True)
    connect_args: dict[str, Any] = {}
    if u.drivername == "sqlite":
        database = u.database or ""
        if database in ("", ":memory:"):
            raise TraceQueryError(f"{shown} is an in-memory database: it holds no spans")
        if not database.startswith("file:") and not Path(database).is_file():
            raise TraceQueryError(f"no SQLite database at {database} (from {shown})")
    else:
        connect_args["connect_timeout"] = 10
    return create_engine(u, poolclass=NullPool, connect_args=connect_args)


def read(url: str, work: Callable[[Connection], T]) -> T:
    """``work(conn)`` on a connection to ``url``, which must hold the alamos
    tables; any failure to read raises :class:`TraceQueryError`."""
    engine = read_engine(url)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(spans.name):
                raise TraceQueryError(
                    f"{shown} has no alamos tables: nothing has been exported to it yet"
                )
            return work(conn)
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        reason = str(orig if orig is not None else exc).strip()
        reason = reason.splitlines()[0] if reason else type(exc).__name__
        raise TraceQueryError(f"cannot read {shown}: {reason}") from exc
    finally:
        engine.dispose()
