"""gc's last step, returning space, and the SQLite housekeeping between its
transactions (a WAL checkpoint in gc's own connection).

SQLite files made by this alamos use incremental auto-vacuum: freed pages
are given back in steps of :data:`VACUUM_STEP_PAGES`, each its own short
transaction, so an exporter waits for one step at most.  A full ``VACUUM``
(``vacuum=True``) locks the file while it runs.  PostgreSQL: a plain
``VACUUM (ANALYZE)`` on request (no lock on writers); autovacuum reuses the
space anyway.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from sqlalchemy import text

from alamos.report.sql.schema import logs, spans
from alamos.retention.db import Db
from alamos.retention.summary import Space

__all__ = ["VACUUM_STEP_PAGES", "checkpoint", "return_space", "size_of", "sqlite_run"]

#: Pages freed per ``PRAGMA incremental_vacuum`` step (8 MiB at 4 KiB pages).
VACUUM_STEP_PAGES = 2_048


def sqlite_run(db: Db, *statements: str, script: str | None = None) -> int:
    """Run SQLite statements outside any transaction (VACUUM and the
    checkpoint need that) on a connection of the write engine; the first
    column of the last one's first row, or 0."""
    raw = db.write.raw_connection()
    try:
        cur = raw.driver_connection.cursor()  # type: ignore[union-attr]
        value = 0
        for sql in statements:
            row = cur.execute(sql).fetchone()
            value = int(row[0]) if row and row[0] is not None else 0
        if script is not None:
            cur.executescript(script)
        cur.close()
    finally:
        raw.close()
    return value


def checkpoint(db: Db) -> None:
    """SQLite: copy the WAL back into the file now, in gc's connection.
    Otherwise the exporter's next commit past 1,000 WAL pages runs the
    checkpoint of gc's deletes (measured: exporter calls of 1.1-1.4 s
    during the delete batches on 100,000 spans).  PASSIVE: it never waits
    for, nor blocks, a writer.  Nothing on PostgreSQL."""
    if db.sqlite_path is not None:
        sqlite_run(db, "PRAGMA wal_checkpoint(PASSIVE)")


def size_of(db: Db) -> int:
    """Bytes: the SQLite file and its WAL, or the PostgreSQL database."""
    if db.sqlite_path is not None:
        return sum(
            os.path.getsize(f)
            for f in (db.sqlite_path, db.sqlite_path + "-wal")
            if os.path.exists(f)
        )
    with db.read.connect() as conn:
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
        return int(size or 0)


def return_space(
    db: Db,
    full: bool,
    before: int,
    step: Callable[[int], bool],
) -> Space:
    """Give freed space back (see the module docstring).  ``step(pages)`` is
    called after each incremental step (gc pauses, checkpoints and reports
    progress there) and returns False to stop early."""
    if db.sqlite_path is None:
        if full:
            names = [spans.name, logs.name, "alamos_metrics", "alamos_reports"]
            with db.write.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql("VACUUM (ANALYZE) " + ", ".join(f'"{n}"' for n in names))
            return Space(before, size_of(db), "postgres-vacuum")
        return Space(before, size_of(db), "none (PostgreSQL's autovacuum reuses the space)")
    mode = sqlite_run(db, "PRAGMA auto_vacuum")
    if full:
        sqlite_run(db, "PRAGMA auto_vacuum = INCREMENTAL", "VACUUM")
        method = "vacuum"
    elif mode == 2:
        # One step per transaction, then a checkpoint and a pause (as after
        # each delete batch): an exporter waits for one step at most.
        # executescript, because sqlite3's execute steps a statement that
        # returns no row once, and incremental_vacuum frees one page per
        # step (measured: 1 page per call instead of 2,048).
        free = sqlite_run(db, "PRAGMA freelist_count")
        for _ in range(free // VACUUM_STEP_PAGES + 2):
            if free <= 0:
                break
            sqlite_run(db, script=f"PRAGMA incremental_vacuum({VACUUM_STEP_PAGES});")
            if not step(min(free, VACUUM_STEP_PAGES)):
                break
            free = sqlite_run(db, "PRAGMA freelist_count")
        method = "incremental_vacuum"
    else:
        method = "none (an older file without auto-vacuum: run gc with --vacuum once)"
    checkpoint(db)
    return Space(before, size_of(db), method)
