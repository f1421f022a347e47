"""The SQL schema alamos exports to (SQLAlchemy Core).

One table per record kind, plus ``alamos_schema_version``.  All times are
integer nanoseconds since the epoch (``BIGINT``); levels are stored as the
strings ``"bench"``, ``"debug"`` and ``"prod"``.  JSON columns are ``JSONB``
on PostgreSQL and JSON text on SQLite.

Each table stores one record class (the one whose ``table`` is its name), a
column per field of the same name; :func:`field_of` gives the field of a
column where the names differ (``parent_span_id`` holds ``parent_id``), or
``None`` for a column derived from others (``duration_ns``).  The rows are
written (:mod:`~alamos.report.sql.rows`) and read back
(:mod:`alamos.report.query`) through that mapping.

:func:`ensure_schema` creates the tables on first use and records
:data:`SCHEMA_VERSION`.  A later version of alamos that changes the schema
bumps :data:`SCHEMA_VERSION` and adds ``MIGRATIONS[new_version]``, a function
that upgrades a database from ``new_version - 1`` inside the same transaction.
A migration names the tables and columns it changes itself, rather than
reading the tables defined here, which describe the *latest* version.
A database written by a *newer* alamos is refused with
:class:`SchemaVersionError` rather than written to with the wrong layout.

Versions:

1. the first schema;
2. ``alamos_spans`` keyed by ``(span_id, trace_id)`` instead of ``span_id``
   alone: span ids are 64 random bits drawn per trace, so two traces can draw
   the same one (even odds at about 5e9 stored spans), and the second span
   was then skipped as if it were a replay.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB

from alamos.core.errors import SchemaVersionError

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TABLES",
    "JSONType",
    "ensure_schema",
    "experiments",
    "field_of",
    "logs",
    "metadata",
    "metrics",
    "reports",
    "schema_version",
    "spans",
]

#: The schema version this code writes (see the module docstring).
SCHEMA_VERSION = 2

#: JSONB on PostgreSQL, JSON text elsewhere.  Python ``None`` is SQL ``NULL``.
JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

# Key for pg_advisory_xact_lock so that concurrent processes do not race
# each other creating the tables ("alamos" in ASCII, as an int).
_PG_LOCK_KEY = 0x616C616D6F73

metadata = MetaData()

experiments = Table(
    "alamos_experiments",
    metadata,
    Column("path", Text, primary_key=True),
    Column("parent_path", Text),
    Column("key", Text, nullable=False),
    Column("service", Text, nullable=False),
    Column("node", Text, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
)

spans = Table(
    "alamos_spans",
    metadata,
    # Keyed by the pair: a span id is unique within its trace only.  span_id
    # first, so that the key's index also serves a lookup by span id alone;
    # ix_alamos_spans_trace_id serves the lookups by trace.
    Column("span_id", Text, primary_key=True),
    Column("trace_id", Text, primary_key=True),
    Column("parent_span_id", Text, info={"field": "parent_id"}),
    Column("path", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("start_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger, nullable=False),
    Column("duration_ns", BigInteger, nullable=False, info={"field": None}),
    Column("status", Text, nullable=False),
    Column("error", Text, info={"field": "error_text"}),
    Column("attributes", JSONType),
    Column("events", JSONType),
    Column("service", Text, nullable=False),
    Column("node", Text, nullable=False),
    Column("session_id", Text),
    Column("location", Text),
    Index("ix_alamos_spans_trace_id", "trace_id"),
    Index("ix_alamos_spans_path_start", "path", "start_ns"),
)

logs = Table(
    "alamos_logs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("ts_ns", BigInteger, nullable=False),
    Column("path", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("trace_id", Text),
    Column("span_id", Text),
    Column("attributes", JSONType),
    Column("location", Text),
    Column("service", Text, nullable=False),
    Column("node", Text, nullable=False),
    Column("session_id", Text),
    Index("ix_alamos_logs_path_level_ts", "path", "level", "ts_ns"),
    Index("ix_alamos_logs_trace_id", "trace_id"),
)

metrics = Table(
    "alamos_metrics",
    metadata,
    Column("id", Text, primary_key=True),
    Column("ts_ns", BigInteger, nullable=False),
    Column("path", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("labels", JSONType),
    Column("value", Double),
    Column("sum", Double),
    Column("count", Double),
    Column("buckets", JSONType),
    Column("service", Text, nullable=False),
    Column("node", Text, nullable=False),
    Column("level", Text, nullable=False),
    Index("ix_alamos_metrics_path_name_ts", "path", "name", "ts_ns"),
)

reports = Table(
    "alamos_reports",
    metadata,
    Column("id", Text, primary_key=True),
    Column("ts_ns", BigInteger, nullable=False),
    Column("path", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("report", JSONType),
    Column("service", Text, nullable=False),
    Column("node", Text, nullable=False),
    Column("level", Text, nullable=False),
)

schema_version = Table(
    "alamos_schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

#: The record tables by name, in the order rows are written.
TABLES: dict[str, Table] = {t.name: t for t in (experiments, spans, logs, metrics, reports)}


def field_of(column: Column[Any]) -> str | None:
    """The record field ``column`` stores: its own name unless its ``info``
    says otherwise; ``None`` for a derived column (``duration_ns``)."""
    field: str | None = column.info.get("field", column.name)
    return field


# ---------------------------------------------------------------------------
# Migrations
# ---------------------------------------------------------------------------

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


#: ``MIGRATIONS[v](conn)`` upgrades a database at version ``v - 1`` to ``v``.
#: It runs inside the transaction of :func:`ensure_schema` (which holds the
#: lock that serialises concurrent processes), which then records the new
#: version.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _v2_spans_keyed_by_trace_and_span,
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
