"""Export records to a SQL database: SQLite or PostgreSQL.

:class:`SQLExporter` writes each batch of records in one transaction into the
tables of :mod:`alamos.report.sql.schema` (created on first use).  Writes are
idempotent by primary key, so a batch replayed after a failure is stored once.

* **SQLite** (``sqlite:///path/to/file.db``, SQLite 3.24 or later): WAL
  journal, ``synchronous=NORMAL``, a busy timeout, transactions opened with
  ``BEGIN IMMEDIATE``; rows go in with multi-row ``INSERT ... ON CONFLICT
  (<primary key>) DO NOTHING`` statements, straight through the sqlite3
  connection.
* **PostgreSQL** (``postgresql://``, ``postgres://`` or
  ``postgresql+psycopg://``, always through psycopg 3): each table's rows are
  sent with one ``COPY``, straight into the table; if some key is already
  stored (a replay), the transaction is rolled back and the batch written
  again, each table's rows copied into a temporary table and moved with
  ``INSERT ... SELECT ... ON CONFLICT (<primary key>) DO NOTHING``.  (COPY
  measured about twice as fast as ``executemany`` with ``ON CONFLICT DO
  NOTHING`` on 10k-span batches.)  See :mod:`alamos.report.sql.writers`.

A batch the database refuses because of its *rows* (a value too large for
an index, a CHECK or NOT NULL constraint, a unique index other than the
primary key...) raises :class:`~alamos.core.errors.RecordsRejected`: the
same records would be refused again, so the delivery isolates them instead
of retrying.  Any other exception is a transient failure (the database is
down, locked, full; its schema is newer).  See
:func:`~alamos.report.sql.writers.rejection` for the rule.

Records are converted by :mod:`alamos.report.sql.rows`, which makes hostile
values storable (see :func:`~alamos.report.sql.rows.rows_for`).  SQL is
always parameterised, never built from values.
Export after a fork is safe: the child drops the parent's pooled connections.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError

from alamos.core.errors import RecordsRejected
from alamos.core.level import Level, LevelLike, parse_level
from alamos.core.records import Record
from alamos.report.sql.coerce import dumps_json
from alamos.report.sql.migrate import ensure_schema
from alamos.report.sql.rows import Row, convert
from alamos.report.sql.schema import TABLES
from alamos.report.sql.writers import (
    Writer,
    file_identity,
    is_unique_violation,
    pg_copy,
    pg_merge,
    rejection,
    set_wal,
    sqlite_insert,
)

__all__ = ["SUPPORTED_URLS", "SQLExporter", "normalize_url"]

#: The URL forms :class:`SQLExporter` accepts.
SUPPORTED_URLS = (
    "sqlite:///path/to/file.db",
    "sqlite:// (in memory)",
    "postgresql://user:password@host:port/db",
    "postgres://...",
    "postgresql+psycopg://...",
)

# ---------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------


def _unsupported(url: str, why: str) -> ValueError:
    return ValueError(
        f"unsupported database URL {url!r}: {why}; SQLExporter supports "
        + ", ".join(SUPPORTED_URLS)
    )


def normalize_url(url: str | URL) -> URL:
    """The SQLAlchemy URL to connect with: PostgreSQL always through psycopg 3,
    a SQLite file path made absolute.  Raises ValueError for any other scheme."""
    shown = url.render_as_string(hide_password=True) if isinstance(url, URL) else url
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise _unsupported(str(shown), "it is not a database URL") from exc
    backend, _, driver = u.drivername.partition("+")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise _unsupported(str(shown), f"the SQLite driver {driver!r} is not supported")
        database = u.database or ""
        if database not in ("", ":memory:") and not database.startswith("file:"):
            database = str(Path(database).expanduser().absolute())
        return u.set(drivername="sqlite", database=database)
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise _unsupported(
                str(shown), f"the PostgreSQL driver {driver!r} is not supported (psycopg 3 is)"
            )
        return u.set(drivername="postgresql+psycopg")
    raise _unsupported(str(shown), f"the scheme {u.drivername!r} is not supported")


def _default_name(u: URL) -> str:
    scheme = "postgresql" if u.drivername.startswith("postgresql") else "sqlite"
    ident = u.render_as_string(hide_password=True)  # "user:***@host": no secret
    return f"sql-{scheme}-{hashlib.sha1(ident.encode()).hexdigest()[:12]}"


# ---------------------------------------------------------------------------
# The exporter
# ---------------------------------------------------------------------------

#: The oldest SQLite with ``INSERT ... ON CONFLICT (...) DO NOTHING``.
SQLITE_MIN_VERSION = (3, 24, 0)


def _write(engine: Engine, rows: Mapping[str, Sequence[Row]], writer: Writer) -> None:
    """Write every table's rows with ``writer``, in one transaction."""
    with engine.begin() as conn:
        for table in TABLES:
            table_rows = rows.get(table)
            if table_rows:
                writer(conn, table, table_rows)


class SQLExporter:
    """Store records in SQLite or PostgreSQL (see the module docstring).

    ``url``: ``sqlite:///path/to/file.db`` (a relative path is made absolute
    now), ``postgresql://...``, ``postgres://...`` (ValueError otherwise).
    ``min_level``: the lowest level exported.  ``name``: the exporter's stable
    name (it names a spool folder); by default ``sql-<scheme>-<12 hex digits of
    the SHA-1 of the URL with its password masked>``.  ``engine_kwargs``: extra
    keyword arguments for :func:`sqlalchemy.create_engine` (``connect_args``
    are merged with the exporter's own).

    Nothing connects until the first :meth:`export`, which also creates the
    tables (:func:`alamos.report.sql.migrate.ensure_schema`).  :meth:`export`
    writes a batch in one transaction, or raises:

    * :class:`~alamos.core.errors.RecordsRejected` if the database refused
      the rows themselves: the transaction is rolled back and the connection
      kept, as the delivery then exports parts of the batch to find the rows
      at fault;
    * anything else for a transient failure (the driver's or SQLAlchemy's
      exceptions, :class:`~alamos.core.errors.SchemaVersionError` for a bad
      schema version): the connection pool is thrown away and the schema
      re-checked, so the next :meth:`export` starts afresh.

    A SQLite file deleted or replaced while in use is noticed (the exporter
    writes to whatever file is at the path).
    """

    synchronous = False

    #: SQLite ``busy_timeout``: how long a write waits for another writer.
    sqlite_busy_timeout_ms = 10_000

    def __init__(
        self,
        url: str,
        *,
        min_level: LevelLike = "prod",
        name: str | None = None,
        engine_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.url: URL = normalize_url(url)
        if self.url.drivername.startswith("postgresql") and find_spec("psycopg") is None:
            raise ImportError(
                "SQLExporter needs psycopg 3 for PostgreSQL: pip install 'alamos[postgres]' "
                "(or 'psycopg[binary]')"
            )
        if self.url.drivername == "sqlite" and sqlite3.sqlite_version_info < SQLITE_MIN_VERSION:
            raise RuntimeError(
                f"SQLExporter needs SQLite {'.'.join(map(str, SQLITE_MIN_VERSION))} or later "
                f"(for INSERT ... ON CONFLICT), this Python has {sqlite3.sqlite_version}"
            )
        self.min_level: Level = parse_level(min_level)
        self.name: str = name if name is not None else _default_name(self.url)
        self._engine_kwargs = dict(engine_kwargs or {})
        self._engine: Engine | None = None
        self._schema_ready = False
        self._closed = False
        self._sqlite_path: str | None = None
        self._sqlite_file: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.dialect: str = (
            "postgresql" if self.url.drivername.startswith("postgresql") else "sqlite"
        )
        postgres = self.dialect == "postgresql"
        self._writer: Writer = pg_copy if postgres else sqlite_insert
        #: Writes a batch whose keys may be stored already (after ``_writer`` hit one).
        self._merge: Writer | None = pg_merge if postgres else None
        database = self.url.database or ""
        if (
            self.dialect == "sqlite"
            and database not in ("", ":memory:")
            and not database.startswith("file:")
        ):
            self._sqlite_path = database

    def __repr__(self) -> str:
        url = self.url.render_as_string(hide_password=True)
        return f"SQLExporter({url!r}, min_level={self.min_level}, name={self.name!r})"

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (created on first use; no connection is made)."""
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def export(self, records: Sequence[Record]) -> None:
        """Store ``records`` in one transaction (idempotent by id), or raise
        (:class:`~alamos.core.errors.RecordsRejected` if the database refused
        the records themselves; see the class docstring)."""
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        if not records:
            return
        try:
            rows = convert(records)
        except TypeError as exc:  # not a record: no database could store it
            raise RecordsRejected(str(exc)) from exc
        if self._pid != os.getpid():
            self._after_fork()
        with self._lock:
            engine = self.engine
            try:
                if self._schema_ready and self._sqlite_file_changed():
                    # Deleted or replaced under us: an open connection would
                    # go on writing to the old file, where nobody looks.
                    self._schema_ready = False
                    engine.dispose()
                if not self._schema_ready:
                    if self._sqlite_path is not None:
                        Path(self._sqlite_path).parent.mkdir(parents=True, exist_ok=True)
                    ensure_schema(engine)
                    self._sqlite_file = file_identity(self._sqlite_path)
                    self._schema_ready = True
                try:
                    try:
                        _write(engine, rows, self._writer)
                    except Exception as exc:
                        if self._merge is None or not is_unique_violation(exc):
                            raise
                        # A key is stored already (a replay): write again,
                        # keeping only the new rows.
                        _write(engine, rows, self._merge)
                except Exception as exc:
                    reason = rejection(exc)
                    if reason is None:
                        raise
                    shown = self.url.render_as_string(hide_password=True)
                    raise RecordsRejected(f"{shown} refused the records: {reason}") from exc
            except RecordsRejected:
                # The transaction was rolled back and the connection is sound:
                # keep it (and the checked schema) for the exports that follow,
                # as the delivery splits the batch.
                raise
            except BaseException:
                # The connection may be broken (server restarted, file gone):
                # start the next export from a fresh pool and re-check the schema.
                self._schema_ready = False
                engine.dispose()
                raise

    def _after_fork(self) -> None:
        # In a forked child: the pooled connections are the parent's; drop
        # them without closing them (that would cut the parent's), and do not
        # trust a lock some parent thread may have held at the fork.
        self._pid = os.getpid()
        self._lock = threading.Lock()
        if self._engine is not None:
            self._engine.dispose(close=False)

    def close(self) -> None:
        """Close the connections.  ``export`` raises afterwards."""
        with self._lock:
            self._closed = True
            if self._engine is not None:
                self._engine.dispose()

    # -- engines -----------------------------------------------------------

    def _sqlite_file_changed(self) -> bool:
        return (
            self._sqlite_path is not None and file_identity(self._sqlite_path) != self._sqlite_file
        )

    def _create_engine(self) -> Engine:
        kwargs: dict[str, Any] = {"json_serializer": dumps_json}
        connect_args: dict[str, Any] = {}
        if self.dialect == "postgresql":
            kwargs.update(pool_pre_ping=True, pool_size=2, max_overflow=2)
            connect_args.update(
                connect_timeout=10,
                application_name="alamos",
                # Notice a dead server or network within about a minute
                # instead of waiting on the socket forever.
                keepalives=1,
                keepalives_idle=30,
                keepalives_interval=10,
                keepalives_count=3,
            )
        elif (self.url.database or "") in ("", ":memory:"):
            from sqlalchemy.pool import StaticPool

            # One in-memory database, shared by whichever thread exports.
            kwargs["poolclass"] = StaticPool
            connect_args["check_same_thread"] = False
        extra = dict(self._engine_kwargs)
        connect_args.update(extra.pop("connect_args", None) or {})
        kwargs.update(extra, connect_args=connect_args)
        if self.dialect == "postgresql":
            return create_engine(self.url, **kwargs)
        engine = create_engine(self.url, **kwargs)
        busy_ms = int(self.sqlite_busy_timeout_ms)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, record: Any) -> None:
            # Let SQLAlchemy (not the sqlite3 module) decide when transactions
            # begin, so that they begin with BEGIN IMMEDIATE (see "begin").
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            try:
                cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
                # A new file returns space to the filesystem when retention
                # deletes rows (alamos.retention runs incremental_vacuum).  The
                # mode must be set before the first page is written (the WAL
                # switch writes one), so only on an empty file; an existing
                # database is converted by one VACUUM (`alamos gc --vacuum`).
                if cur.execute("PRAGMA page_count").fetchone()[0] == 0:
                    cur.execute("PRAGMA auto_vacuum = INCREMENTAL")
                set_wal(cur, busy_ms / 1000)
                cur.execute("PRAGMA synchronous = NORMAL")
            finally:
                cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Take the write lock up front: a deferred transaction that reads
            # and then writes can fail at once with SQLITE_BUSY under contention.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
