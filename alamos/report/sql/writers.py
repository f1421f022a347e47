"""How :class:`~alamos.report.sql.SQLExporter` writes rows, per database.

Each writer takes a SQLAlchemy connection inside a transaction, a table name
and its rows (tuples in :data:`~alamos.report.sql.rows.COLUMNS` order), and goes
straight to the driver's connection: SQLAlchemy's per-row work is skipped.
SQL is built from table and column names only, never from values.

* **SQLite** (:func:`sqlite_insert`): multi-row
  ``INSERT OR ROLLBACK ... ON CONFLICT (<primary key>) DO NOTHING``.
* **PostgreSQL** (:func:`pg_copy`, then :func:`pg_merge`): ``COPY`` straight
  into the table; if a key is already there (a replay), the exporter rolls
  the transaction back and writes the batch again with :func:`pg_merge`.

Only a row whose primary key is stored already is skipped (the idempotent
replay); every other refusal by the database raises.  :func:`rejection`
tells a refusal of the rows themselves (permanent: the same rows would be
refused again) from a failure of the database (transient).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from alamos.report.sql.rows import COLUMNS, Row
from alamos.report.sql.schema import TABLES

__all__ = [
    "SQLITE_CHUNK",
    "Writer",
    "file_identity",
    "is_unique_violation",
    "pg_copy",
    "pg_merge",
    "rejection",
    "set_wal",
    "sqlite_insert",
]

Writer = Callable[[Connection, str, Sequence[Row]], None]


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


#: Each table's primary key columns, quoted: the conflict target of the
#: writes, so that a duplicate *id* is skipped and nothing else is.
_KEYS: dict[str, str] = {
    name: _quoted(c.name for c in table.primary_key.columns) for name, table in TABLES.items()
}


# ---------------------------------------------------------------------------
# SQLite
# ---------------------------------------------------------------------------

#: Rows per ``INSERT`` statement at most (a power of two).
SQLITE_CHUNK = 1024


@functools.cache
def _sqlite_insert_sql(table: str, nrows: int) -> str:
    """``INSERT`` of ``nrows`` rows into ``table`` in one statement, skipping
    the rows whose primary key is stored already.

    Not ``INSERT OR IGNORE``: that also skips, silently, a row that breaks
    any other constraint (NOT NULL, CHECK, UNIQUE...), which must fail the
    batch instead.  The upsert clause (SQLite 3.24) skips the duplicate key
    only; ``OR ROLLBACK`` makes any other violation roll the whole
    transaction back, which the exporter does after any failure anyway.
    Without it (``OR ABORT``, the default), a multi-row statement that may
    abort half-way keeps a statement journal to undo its own rows: measured
    on 512-row batches of spans, 29% more CPU per row than ``OR IGNORE``
    (97k against 137k rows/s); ``OR ROLLBACK`` costs what ``OR IGNORE`` did.
    """
    cols = COLUMNS[table]
    one = f"({', '.join('?' for _ in cols)})"
    return (
        f'INSERT OR ROLLBACK INTO "{table}" ({_quoted(cols)}) VALUES {", ".join([one] * nrows)} '
        f"ON CONFLICT ({_KEYS[table]}) DO NOTHING"
    )


def sqlite_insert(conn: Connection, table: str, rows: Sequence[Row]) -> None:
    """Insert ``rows`` with multi-row ``INSERT`` statements (see
    :func:`_sqlite_insert_sql`).

    Measured against ``executemany``: as fast alone, and faster while other
    threads run Python (the instrumented code, the collector).  sqlite3
    releases the GIL around each statement step, and ``executemany`` steps
    once per row: each row then waits to get the GIL back (up to the
    interpreter's 5 ms switch interval).  Here one statement inserts up to
    1024 rows, in chunks of powers of two, so that only a few statements per
    table are compiled (then cached by sqlite3).
    """
    dbapi = conn.connection.driver_connection
    assert isinstance(dbapi, sqlite3.Connection)
    ncols = len(COLUMNS[table])
    chunk = SQLITE_CHUNK
    limit = dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    while chunk > 1 and chunk * ncols > limit:
        chunk //= 2
    flat = chain.from_iterable
    i, n = 0, len(rows)
    while i < n:
        size = chunk
        while size > n - i:
            size //= 2
        dbapi.execute(_sqlite_insert_sql(table, size), list(flat(rows[i : i + size])))
        i += size


def set_wal(cur: sqlite3.Cursor, timeout: float) -> None:
    """Switch the database to WAL (a no-op once it is: the mode is persistent).

    The switch takes an exclusive lock and, unlike other statements, does not
    wait for it (busy_timeout): retry it until ``timeout``.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        mode = str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if mode in ("wal", "memory"):
            return
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def file_identity(path: str | None) -> tuple[int, int] | None:
    """``(device, inode)`` of the file at ``path``, or None."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------


def _copy_rows(cur: Any, table: str, cols: str, rows: Sequence[Row]) -> None:
    with cur.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
        write = copy.write_row
        for row in rows:
            write(row)


def pg_copy(conn: Connection, table: str, rows: Sequence[Row]) -> None:
    """``COPY`` ``rows`` straight into ``table``: the fastest bulk path.

    Raises psycopg's ``UniqueViolation`` if a key is already stored (a
    replay); the transaction is then aborted, and the exporter writes the
    batch again with :func:`pg_merge`.  (No savepoint per table: two round
    trips each, on every batch, for the rare replay.  COPY measured about
    twice as fast as ``executemany`` with ``ON CONFLICT DO NOTHING``.)
    """
    raw: Any = conn.connection.driver_connection
    with raw.cursor() as cur:
        _copy_rows(cur, table, _quoted(COLUMNS[table]), rows)


def pg_merge(conn: Connection, table: str, rows: Sequence[Row]) -> None:
    """Store the rows of ``rows`` whose key is not there yet: ``COPY`` into a
    temporary table, then ``INSERT ... SELECT ... ON CONFLICT (<primary key>)
    DO NOTHING``.  The conflict target is the primary key: a row that
    collides with another unique index raises (a refused row, not a replay)."""
    raw: Any = conn.connection.driver_connection
    cols = _quoted(COLUMNS[table])
    tmp = f"_alamos_load_{table}"
    with raw.cursor() as cur:
        cur.execute(f'CREATE TEMP TABLE "{tmp}" (LIKE "{table}") ON COMMIT DROP')
        _copy_rows(cur, tmp, cols, rows)
        cur.execute(
            f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM "{tmp}" '
            f"ON CONFLICT ({_KEYS[table]}) DO NOTHING"
        )
        cur.execute(f'DROP TABLE "{tmp}"')


def is_unique_violation(exc: BaseException) -> bool:
    """Whether ``exc`` is psycopg's ``UniqueViolation`` (a key already stored)."""
    try:
        from psycopg.errors import UniqueViolation
    except ImportError:  # pragma: no cover - psycopg is there for PostgreSQL
        return False
    return isinstance(exc, UniqueViolation)


# ---------------------------------------------------------------------------
# Refused rows (permanent) or a failing database (transient)
# ---------------------------------------------------------------------------

#: PostgreSQL SQLSTATE classes that condemn the rows, not the database:
#: 22 data_exception (a value out of range, a character the encoding cannot
#: hold...), 23 integrity_constraint_violation (CHECK, NOT NULL, a unique index
#: other than the primary key: the key itself never conflicts, see
#: :func:`pg_merge`), 54 program_limit_exceeded ("index row size 3024 exceeds
#: btree version 4 maximum 2704").  Everything else (08 connection, 40
#: serialization failure and deadlock, 53 disk full, 55 lock not available,
#: 57 statement timeout or shutdown, 42 a table dropped by hand...) is the
#: database's state, which changes: transient.
_PG_REFUSING_CLASSES = frozenset({"22", "23", "54"})

#: The longest reason kept: PostgreSQL's messages can quote a whole row.
_REASON_MAX = 500


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= _REASON_MAX else line[: _REASON_MAX - 1] + "…"


def rejection(exc: BaseException) -> str | None:
    """The database's message if ``exc``, raised while writing a batch, says
    the database refused the *rows* (the same rows would be refused again),
    or ``None`` if it is a failure of the database or the connection
    (exporting the same rows later may work).

    * PostgreSQL (psycopg 3): the SQLSTATE classes of
      :data:`_PG_REFUSING_CLASSES`, and psycopg's own ``DataError`` for a
      value it cannot send.
    * SQLite: ``IntegrityError`` (a constraint other than the duplicate
      primary key, which the writes skip; a trigger's ``RAISE``; "datatype
      mismatch") and ``DataError`` ("string or blob too big").  Busy, locked,
      full, read-only, I/O, corrupt: ``OperationalError`` and the like, transient.
    * either: a value the driver cannot encode or bind (``UnicodeError``,
      ``OverflowError``).

    SQLAlchemy's wrappers (raised by a commit) are looked through.
    """
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError)):
        name = getattr(exc, "sqlite_errorname", None)
        message = _first_line(str(exc))
        return f"{message} ({name})" if name else message
    if isinstance(exc, (UnicodeError, OverflowError)):
        return _first_line(f"{type(exc).__name__}: {exc}")
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is there for PostgreSQL
        return None
    if not isinstance(exc, psycopg.Error):
        return None
    sqlstate = exc.sqlstate
    if sqlstate is None:
        # Raised by psycopg itself, before the server saw anything.
        return _first_line(str(exc)) if isinstance(exc, psycopg.DataError) else None
    if sqlstate[:2] not in _PG_REFUSING_CLASSES:
        return None
    return f"{_first_line(exc.diag.message_primary or str(exc))} (SQLSTATE {sqlstate})"
