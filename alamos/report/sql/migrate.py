"""Creating and upgrading the alamos schema in a database.

:func:`ensure_schema` creates the tables of :mod:`alamos.report.sql.schema`
on first use and records :data:`SCHEMA_VERSION`.  A later version of alamos
that changes the schema bumps :data:`SCHEMA_VERSION` and adds
``MIGRATIONS[new_version]``, a function that upgrades a database from
``new_version - 1`` inside the same transaction.  A migration that changes an
existing table names the tables and columns it changes itself, rather than
reading the tables of :mod:`~alamos.report.sql.schema`, which describe the
*latest* version.  A migration that only adds tables or indexes creates them
from :mod:`~alamos.report.sql.schema` by name; should a later version change
one of them, that migration must first freeze its own copy of it.  A
database written by a *newer* alamos is refused with
:class:`SchemaVersionError` rather than written to with the wrong layout.

Versions:

1. the first schema;
2. ``alamos_spans`` keyed by ``(span_id, trace_id)`` instead of ``span_id``
   alone: span ids are 64 random bits drawn per trace, so two traces can draw
   the same one (even odds at about 5e9 stored spans), and the second span
   was then skipped as if it were a replay.
3. the analysis and retention tables, and the indexes their queries use
   (:data:`V3_TABLES`, :data:`V3_INDEXES`).
4. the hourly tier of the span statistics and the log counts per
   statistics window (:data:`V4_TABLES`), for the dashboard's long windows,
   and the index of a span's children (:data:`V4_INDEXES`), for the frame
   budgets.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import (
    Connection,
    Engine,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)

from alamos.core.errors import SchemaVersionError
from alamos.report.sql.schema import metadata, schema_version

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "V3_INDEXES",
    "V3_TABLES",
    "V4_DROPPED_INDEXES",
    "V4_INDEXES",
    "V4_TABLES",
    "ensure_schema",
]

#: The schema version this code writes (see the module docstring).
SCHEMA_VERSION = 4

# Key for pg_advisory_xact_lock so that concurrent processes do not race
# each other creating the tables ("alamos" in ASCII, as an int).
_PG_LOCK_KEY = 0x616C616D6F73

_PK_CLAUSE = re.compile(r"PRIMARY\s+KEY\s*\([^)]*\)", re.IGNORECASE)


def _set_primary_key(conn: Connection, table: str, columns: tuple[str, ...]) -> None:
    """Make ``columns`` the primary key of ``table``, keeping its rows, its
    other columns (those a user added too), indexes and triggers.

    PostgreSQL alters the constraint in place.  SQLite cannot: the table is
    rebuilt as its documentation describes (create the new table from the
    stored ``CREATE TABLE`` with the key clause replaced, copy the rows, drop
    the old table, rename the new one, re-create its indexes and triggers),
    with ``legacy_alter_table`` on during the rename so that a view over the
    table is left as it is (it names the table, which exists again after).
    """
    key = ", ".join(f'"{c}"' for c in columns)
    if conn.dialect.name == "postgresql":
        old = inspect(conn).get_pk_constraint(table).get("name")
        drop = f'DROP CONSTRAINT "{old}", ' if old else ""
        conn.exec_driver_sql(f'ALTER TABLE "{table}" {drop}ADD PRIMARY KEY ({key})')
        return
    ddl = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar()
    rebuilt = f"{table}_rebuilt"
    new_ddl, keys = _PK_CLAUSE.subn(f"PRIMARY KEY ({key})", str(ddl or ""), count=2)
    new_ddl, names = re.subn(
        rf'^\s*CREATE\s+TABLE\s+(?:"{table}"|{table})(?=[\s(])',
        f'CREATE TABLE "{rebuilt}"',
        new_ddl,
        count=1,
        flags=re.IGNORECASE,
    )
    if keys != 1 or names != 1:
        raise SchemaVersionError(
            f"cannot migrate {table}: its layout is not one alamos wrote "
            f"(expected one table-level PRIMARY KEY clause): {ddl!r:.300}"
        )
    attached = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') "
        "AND sql IS NOT NULL ORDER BY type, name",
        (table,),
    ).scalars()
    recreate = list(attached)
    conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{rebuilt}"')
    conn.exec_driver_sql(new_ddl)
    conn.exec_driver_sql(f'INSERT INTO "{rebuilt}" SELECT * FROM "{table}"')
    conn.exec_driver_sql(f'DROP TABLE "{table}"')
    legacy = conn.exec_driver_sql("PRAGMA legacy_alter_table").scalar()
    conn.exec_driver_sql("PRAGMA legacy_alter_table = ON")
    try:
        conn.exec_driver_sql(f'ALTER TABLE "{rebuilt}" RENAME TO "{table}"')
    finally:
        conn.exec_driver_sql(f"PRAGMA legacy_alter_table = {int(bool(legacy))}")
    for sql in recreate:
        conn.exec_driver_sql(sql)


def _v2_spans_keyed_by_trace_and_span(conn: Connection) -> None:
    """Version 2: ``alamos_spans`` keyed by ``(span_id, trace_id)``."""
    _set_primary_key(conn, "alamos_spans", ("span_id", "trace_id"))


def _create(
    conn: Connection, tables: tuple[str, ...], indexes: tuple[tuple[str, str], ...]
) -> None:
    """Create the ``tables`` and the ``indexes`` (``(table, index name)``) as
    :mod:`~alamos.report.sql.schema` defines them, those missing only."""
    for name in tables:
        metadata.tables[name].create(conn, checkfirst=True)
    for table, index in indexes:
        (ix,) = (i for i in metadata.tables[table].indexes if i.name == index)
        ix.create(conn, checkfirst=True)


#: The tables version 3 adds, by name (each defined in :mod:`~alamos.report.sql.schema`).
V3_TABLES: tuple[str, ...] = (
    "alamos_span_stats",
    "alamos_spikes",
    "alamos_holds",
    "alamos_gc_pending",
)

#: The indexes version 3 adds to existing tables, as (table, index name).
V3_INDEXES: tuple[tuple[str, str], ...] = (
    # The dashboard's (issue 13) and retention's (issue 12): see the tables' definitions.
    ("alamos_spans", "ix_alamos_spans_path_start_cover"),
    ("alamos_spans", "ix_alamos_spans_start"),
    ("alamos_spans", "ix_alamos_spans_session"),
    ("alamos_spans", "ix_alamos_spans_name_start"),
    ("alamos_spans", "ix_alamos_spans_errors"),
    ("alamos_logs", "ix_alamos_logs_ts"),
    ("alamos_logs", "ix_alamos_logs_session"),
    ("alamos_metrics", "ix_alamos_metrics_ts"),
    ("alamos_metrics", "ix_alamos_metrics_name_ts"),
    ("alamos_reports", "ix_alamos_reports_ts"),
)


def _v3_analysis_and_retention(conn: Connection) -> None:
    """Version 3: the tables of :data:`V3_TABLES` and the indexes of :data:`V3_INDEXES`."""
    _create(conn, V3_TABLES, V3_INDEXES)


#: The tables version 4 adds (see :mod:`~alamos.report.sql.schema`).
V4_TABLES: tuple[str, ...] = ("alamos_span_stats_1h", "alamos_log_stats")


#: The indexes version 4 adds to existing tables, as (table, index name).
V4_INDEXES: tuple[tuple[str, str], ...] = (
    # The frame budgets' walk (alamos.report.query.budgets): a span's children.
    ("alamos_spans", "ix_alamos_spans_trace_parent"),
)

#: The indexes version 4 drops: ``ix_alamos_spans_trace_id`` (trace_id alone)
#: is a prefix of ``ix_alamos_spans_trace_parent``, which serves every lookup
#: by trace; keeping both would cost every stored span one more index write.
V4_DROPPED_INDEXES: tuple[str, ...] = ("ix_alamos_spans_trace_id",)


def _v4_statistics_tiers(conn: Connection) -> None:
    """Version 4: the tables of :data:`V4_TABLES` and the indexes of :data:`V4_INDEXES`."""
    _create(conn, V4_TABLES, V4_INDEXES)
    for index in V4_DROPPED_INDEXES:  # after the index that replaces it exists
        conn.execute(text(f"DROP INDEX IF EXISTS {index}"))


#: ``MIGRATIONS[v](conn)`` upgrades a database at version ``v - 1`` to ``v``.
#: It runs inside the transaction of :func:`ensure_schema` (which holds the
#: lock that serialises concurrent processes), which then records the new
#: version.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _v2_spans_keyed_by_trace_and_span,
    3: _v3_analysis_and_retention,
    4: _v4_statistics_tiers,
}


def ensure_schema(engine: Engine | Connection) -> int:
    """Create or upgrade the alamos tables; return the schema version in use.

    Safe to call on every start and from concurrent processes: on PostgreSQL
    the work is serialised with an advisory lock; on SQLite the engines made by
    :class:`alamos.report.sql.SQLExporter` begin with ``BEGIN IMMEDIATE``.
    Raises :class:`SchemaVersionError` if the database was written by a newer
    alamos (its version is above :data:`SCHEMA_VERSION`) or if no migration is
    known for an older version.  Given a :class:`~sqlalchemy.Connection`, the
    work is done in its current transaction and not committed.
    """
    if isinstance(engine, Connection):
        return _ensure_schema(engine)
    with engine.begin() as conn:
        return _ensure_schema(conn)


def _ensure_schema(conn: Connection) -> int:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    current: int | None = None
    if inspect(conn).has_table(schema_version.name):
        current = conn.execute(select(func.max(schema_version.c.version))).scalar()
    if current is None:
        metadata.create_all(conn, checkfirst=True)
        conn.execute(insert(schema_version).values(version=SCHEMA_VERSION))
        return SCHEMA_VERSION
    if current > SCHEMA_VERSION:
        url = conn.engine.url.render_as_string(hide_password=True)
        raise SchemaVersionError(
            f"the alamos schema in {url} is version {current}, but this alamos "
            f"only knows versions up to {SCHEMA_VERSION}: it was written by a newer "
            "alamos; upgrade alamos (or export to another database)"
        )
    if current < SCHEMA_VERSION:
        for version in range(current + 1, SCHEMA_VERSION + 1):
            migrate = MIGRATIONS.get(version)
            if migrate is None:
                raise SchemaVersionError(
                    f"no migration of the alamos schema from version {version - 1} to {version}"
                )
            migrate(conn)
        conn.execute(update(schema_version).values(version=SCHEMA_VERSION))
    # Tables or indexes added without a version bump, or dropped by hand.
    metadata.create_all(conn, checkfirst=True)
    return SCHEMA_VERSION
