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
A database written by a *newer* alamos is refused with
:class:`SchemaVersionError` rather than written to with the wrong layout.
"""

from __future__ import annotations

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

#: The schema version this code writes.
SCHEMA_VERSION = 1

#: ``MIGRATIONS[v](conn)`` upgrades a database at version ``v - 1`` to ``v``.
#: It runs inside the transaction of :func:`ensure_schema`, which then records
#: the new version.  Version 1 is the first one: nothing to migrate yet.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}

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
    Column("span_id", Text, primary_key=True),
    Column("trace_id", Text, nullable=False),
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
