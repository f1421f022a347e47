"""Connecting to the database for garbage collection and holds.

Two engines per database:

* :func:`open_db` gives a :class:`Db` whose ``read`` engine runs plain
  (deferred) transactions, so that deciding what to delete, a long read, never
  takes SQLite's write lock (readers do not block the exporters in WAL mode,
  nor on PostgreSQL), and whose ``write`` engine begins SQLite transactions
  with ``BEGIN IMMEDIATE``, as the exporter does, so that a short delete waits
  for the writer's lock (``busy_timeout``) instead of failing half-way;
* :meth:`Db.lock` makes sure one garbage collection at a time runs on a
  database: a PostgreSQL advisory lock on its own connection, or an ``flock``
  on ``<file>.gc-lock`` beside a SQLite file.

A missing SQLite file, a database without alamos tables or an unreachable
server raise :class:`~alamos.core.errors.RetentionError` (nothing is created).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool, QueuePool

from alamos.core.errors import GcRunning, NothingToCollect, RetentionError
from alamos.report.sql import normalize_url
from alamos.report.sql.coerce import dumps_json
from alamos.report.sql.migrate import ensure_schema
from alamos.report.sql.reading import reason_of
from alamos.report.sql.schema import spans
from alamos.report.sql.writers import set_wal

__all__ = ["GC_LOCK_KEY", "Db", "check_database", "open_db"]

#: ``pg_try_advisory_lock`` key of garbage collection ("alamosgc" in ASCII).
GC_LOCK_KEY = 0x616C616D6F736763

#: How long a delete waits for an exporter's write lock on SQLite (ms).
BUSY_TIMEOUT_MS = 10_000
#: SQLite ``journal_size_limit`` of gc's connections.
WAL_LIMIT_BYTES = 16 * 1024 * 1024


class Db:
    """The engines of one database (see the module docstring)."""

    def __init__(self, url: str) -> None:
        try:
            u = normalize_url(url)
        except ValueError as exc:
            raise RetentionError(str(exc)) from exc
        self.url = u
        self.shown = u.render_as_string(hide_password=True)
        self.dialect = "postgresql" if u.drivername.startswith("postgresql") else "sqlite"
        self.sqlite_path: str | None = None
        kwargs: dict[str, Any] = {"poolclass": NullPool, "json_serializer": dumps_json}
        if self.dialect == "sqlite":
            database = u.database or ""
            if database in ("", ":memory:") or database.startswith("file:"):
                raise RetentionError(
                    f"{self.shown} is not a SQLite file: retention works on a database "
                    "file (sqlite:///path/to/alamos.db) or PostgreSQL"
                )
            if not Path(database).is_file():
                raise NothingToCollect(
                    f"no SQLite database at {database} (from {self.shown}): check the path "
                    "(--db or $ALAMOS_DB)"
                )
            self.sqlite_path = database
            self.read = create_engine(u, **kwargs)
            self.write = create_engine(u, **kwargs)
            _sqlite_events(self.read, "BEGIN", wal=False)
            # gc reads (the decision) while it writes (the pending traces) on
            # another connection: only WAL lets both go on at once.  Files the
            # exporter made are in WAL already (the mode is persistent).
            _sqlite_events(self.write, "BEGIN IMMEDIATE", wal=True)
        else:
            kwargs["connect_args"] = {
                "connect_timeout": 10,
                "application_name": "alamos-gc",
                # gc is background work: no parallel workers.  Measured
                # (scripts/retention_bench.py, 1,000,000 spans, 2 cores): the
                # decision and each batch's queue query ran with 2 workers
                # besides gc's backend, 3 processes taking the cores from
                # the exporters (wait events IPC:MessageQueueSend,
                # IPC:BgWorkerShutdown during their longest calls).
                "options": "-c max_parallel_workers_per_gather=0",
            }
            # One gc's connections are kept for its batches (disposed at the
            # end) instead of a new backend per transaction: the lock's, the
            # decision's and the writes' (PostgreSQL forks a process and
            # loads its catalog caches for each connection: 200 batches).
            kwargs.update(poolclass=QueuePool, pool_size=3, max_overflow=2)
            self.read = create_engine(u, **kwargs)
            self.write = self.read

    def check(self, upgrade: bool = True) -> None:
        """Raise :class:`RetentionError` unless the database holds alamos tables;
        with ``upgrade``, bring an older alamos schema up to date in place (as
        an exporter would; a dry run does not)."""
        try:
            with self.read.connect() as conn:
                present = inspect(conn).has_table(spans.name)
        except SQLAlchemyError as exc:
            raise RetentionError(f"cannot read {self.shown}: {reason_of(exc)}") from exc
        if not present:
            raise NothingToCollect(
                f"{self.shown} has no alamos tables: nothing has been exported to it yet "
                "(check --db or $ALAMOS_DB)"
            )
        if not upgrade:
            return
        try:
            ensure_schema(self.write)
        except SQLAlchemyError as exc:
            raise RetentionError(f"cannot upgrade {self.shown}: {reason_of(exc)}") from exc

    def has_table(self, conn: Connection, name: str) -> bool:
        return bool(inspect(conn).has_table(name))

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the database's gc lock, or raise :class:`RetentionError` if
        another garbage collection holds it (:class:`GcRunning`)."""
        busy = GcRunning(
            f"another garbage collection is running on {self.shown}; "
            "run one at a time (see the README, Retention)"
        )
        if self.sqlite_path is not None:
            path = self.sqlite_path + ".gc-lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise busy from None
                yield
            finally:
                os.close(fd)  # releases the flock
            return
        with self.read.connect() as conn:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": GC_LOCK_KEY})
            if not got.scalar():
                raise busy
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": GC_LOCK_KEY})
                conn.commit()

    def dispose(self) -> None:
        self.read.dispose()
        self.write.dispose()


def _sqlite_events(engine: Engine, begin: str, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        # SQLAlchemy, not the sqlite3 module, begins transactions (see "begin").
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if wal:
                set_wal(cur, BUSY_TIMEOUT_MS / 1000)
                # When gc's connection restarts the WAL after a checkpoint,
                # cut the file back (gc's deletes and vacuum grow it).
                cur.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)


def open_db(url: str, upgrade: bool = True) -> Db:
    """The :class:`Db` of ``url``, checked (see :meth:`Db.check`)."""
    db = Db(url)
    try:
        db.check(upgrade)
    except BaseException:
        db.dispose()
        raise
    return db


def check_database(url: str) -> None:
    """Raise :class:`RetentionError` unless ``url`` names a reachable database
    with alamos tables (nothing is created or changed)."""
    open_db(url, upgrade=False).dispose()
