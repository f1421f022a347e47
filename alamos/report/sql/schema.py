"""The SQL schema alamos exports to (SQLAlchemy Core): the tables of the latest version.

One table per record kind, plus ``alamos_schema_version``.  All times are
integer nanoseconds since the epoch (``BIGINT``); levels are stored as the
strings ``"bench"``, ``"debug"`` and ``"prod"``.  JSON columns are ``JSONB``
on PostgreSQL and JSON text on SQLite.

Each record table stores one record class (the one whose ``table`` is its
name), a column per field of the same name; :func:`field_of` gives the field
of a column where the names differ (``parent_span_id`` holds ``parent_id``), or
``None`` for a column derived from others (``duration_ns``).  The rows are
written (:mod:`~alamos.report.sql.rows`) and read back
(:mod:`alamos.report.query`) through that mapping.  Tables that no record
fills (the analysis and retention tables) are written by the code that owns
them.

Creating and upgrading a database is :mod:`alamos.report.sql.migrate`'s job
(:func:`~alamos.report.sql.migrate.ensure_schema`, the version history and
the migrations).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = [
    "TABLES",
    "JSONType",
    "experiments",
    "field_of",
    "gc_pending",
    "holds",
    "log_stats",
    "logs",
    "metadata",
    "metrics",
    "reports",
    "schema_version",
    "span_stats",
    "span_stats_1h",
    "spans",
    "spikes",
]

#: JSONB on PostgreSQL, JSON text elsewhere.  Python ``None`` is SQL ``NULL``.
JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

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
    # ix_alamos_spans_trace_parent (trace_id first) serves the lookups by trace.
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
    Index("ix_alamos_spans_path_start", "path", "start_ns"),
    # Version 3, for the dashboard (alamos.dashboard): a layer's spans in a
    # window read from the index alone (the tree page: 2.2 s -> 0.7 s to count
    # 1,000,000 spans on SQLite), the window across all paths (search), and
    # the debug sessions (partial: most spans have none).
    Index("ix_alamos_spans_path_start_cover", "path", "start_ns", "duration_ns", "status", "level"),
    Index("ix_alamos_spans_start", "start_ns"),
    # Frames by name (alamos.report.query.spikes: the running mean reads the
    # frames of one name from the window before the range on), and the
    # errors in a window (partial: search by status=error, a layer's recent
    # errors; 1% of the spans on scripts/dashboard_bench.py).
    Index("ix_alamos_spans_name_start", "name", "start_ns"),
    Index(
        "ix_alamos_spans_errors",
        "start_ns",
        sqlite_where=text("status = 'error'"),
        postgresql_where=text("status = 'error'"),
    ),
    Index(
        "ix_alamos_spans_session",
        "session_id",
        "start_ns",
        sqlite_where=text("session_id IS NOT NULL"),
        postgresql_where=text("session_id IS NOT NULL"),
    ),
    # Version 4: the children of a span (the frame budgets' walk below each
    # frame, alamos.report.query.budgets: one index read per level instead of
    # every span of the trace; see _per_frame_cte there for the figures).  It
    # replaced ix_alamos_spans_trace_id (trace_id alone), which it covers: one
    # index to write per span, as before.
    Index("ix_alamos_spans_trace_parent", "trace_id", "parent_span_id"),
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
    # Version 3, for the dashboard (logs in a window, and of a debug session) and
    # retention (logs outside any trace deleted by age).
    Index("ix_alamos_logs_ts", "ts_ns"),
    Index(
        "ix_alamos_logs_session",
        "session_id",
        "ts_ns",
        sqlite_where=text("session_id IS NOT NULL"),
        postgresql_where=text("session_id IS NOT NULL"),
    ),
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
    # Retention deletes metric samples by age (v3).
    Index("ix_alamos_metrics_ts", "ts_ns"),
    # A metric's samples in a window whatever their path (v3): the recording
    # rules' series on the dashboard's analysis page (live rows carry the
    # tree's root path, backfilled ones the backfill's).
    Index("ix_alamos_metrics_name_ts", "name", "ts_ns"),
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
    # Retention deletes reports by age (v3).
    Index("ix_alamos_reports_ts", "ts_ns"),
)

# -- retention (v3): written by alamos.retention, not by a record class ------

holds = Table(
    "alamos_holds",
    metadata,
    # A held trace is never deleted by garbage collection while the hold lasts
    # (until_ns NULL: until it is removed).
    Column("trace_id", Text, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("until_ns", BigInteger),
)

gc_pending = Table(
    "alamos_gc_pending",
    metadata,
    # The traces a garbage collection decided to delete and has not finished
    # deleting: the record that lets a rerun finish a gc killed half-way.
    # started = 1 once some of the trace's rows are deleted (a trace larger
    # than one batch): a rerun deletes the rest, whatever its policy says.
    Column("trace_id", Text, primary_key=True),
    Column("n_rows", BigInteger, nullable=False),
    Column("started", Integer, nullable=False),
    Column("decided_ns", BigInteger, nullable=False),
    # Each delete batch takes the next traces in this order (started ones
    # first): without the index every batch sorted the whole table (88,734
    # pending traces, 200 batches on 1,000,000 spans; PostgreSQL ran that
    # sort with parallel workers).
    Index("ix_alamos_gc_pending_queue", text("started DESC"), "trace_id"),
)


# Windowed span statistics (alamos.stats): one row per (path, name, status,
# level), window and emission; rows merge exactly (see docs/stats.md).
def _span_stats_columns() -> list[Column[Any]]:
    """The columns of both statistics tiers (new objects for each table)."""
    return [
        Column("id", Text, primary_key=True),
        Column("window_start_ns", BigInteger, nullable=False),
        Column("window_ns", BigInteger, nullable=False),
        Column("path", Text, nullable=False),
        Column("name", Text, nullable=False),
        Column("status", Text, nullable=False),
        Column("level", Text, nullable=False),
        Column("count", BigInteger, nullable=False),
        Column("errors", BigInteger, nullable=False),
        Column("sum_ns", BigInteger, nullable=False),
        Column("mean_ns", Double, nullable=False),
        Column("m2", Double, nullable=False),
        Column("min_ns", BigInteger, nullable=False),
        Column("max_ns", BigInteger, nullable=False),
        Column("sketch", Text, nullable=False),
        Column("attributes", JSONType),
        Column("service", Text, nullable=False),
        Column("node", Text, nullable=False),
    ]


span_stats = Table(
    "alamos_span_stats",
    metadata,
    *_span_stats_columns(),
    Index("ix_alamos_span_stats_window", "window_start_ns"),
    Index("ix_alamos_span_stats_path_name_window", "path", "name", "window_start_ns"),
)

# The same statistics summed per hour (version 4): a coarser tier, as a
# time-series database downsamples, so that a page over a day or a week
# merges 24 or 168 sketches per series instead of 1,440 or 10,080.  Written
# by the tree's statistics observer (alamos.stats.live) when an hour has
# ended, and at close for the part of the hour it saw; a process that dies
# mid-hour writes no hour row, and readers fall back to the minute rows (an
# hour is complete when its rows' counts add up to the minute rows' counts).
span_stats_1h = Table(
    "alamos_span_stats_1h",
    metadata,
    *_span_stats_columns(),
    Index("ix_alamos_span_stats_1h_window", "window_start_ns"),
    Index("ix_alamos_span_stats_1h_path_window", "path", "window_start_ns"),
)

# Logs counted per statistics window (version 4), by (path, level, service,
# node): the tree page's "logs by level" over a long window sums these rows
# instead of counting every log.  Written by the statistics observer with the
# span statistics (same windows, same pipeline: retry, spool, replay, and an
# id fixed when the row is built).
log_stats = Table(
    "alamos_log_stats",
    metadata,
    Column("id", Text, primary_key=True),
    Column("window_start_ns", BigInteger, nullable=False),
    Column("window_ns", BigInteger, nullable=False),
    Column("path", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("service", Text, nullable=False),
    Column("node", Text, nullable=False),
    Index("ix_alamos_log_stats_window", "window_start_ns", "path", "level"),
)

# Frames flagged as spikes by the frame budgets (alamos.report.query.spikes):
# written when a budget report stores them, read by retention and the
# dashboard.  Keyed by the frame's span, so storing it again stores nothing.
spikes = Table(
    "alamos_spikes",
    metadata,
    Column("span_id", Text, primary_key=True),
    Column("trace_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("start_ns", BigInteger, nullable=False),
    Column("duration_ns", BigInteger, nullable=False),
    Column("baseline_ns", Double, nullable=False),
    Column("factor", Double, nullable=False),
    Column("window", Integer, nullable=False),
    Column("flagged_ns", BigInteger, nullable=False),
    Index("ix_alamos_spikes_start", "start_ns"),
    # Retention's keep_spikes looks up each trace's flags (and their age):
    # the primary key leads with span_id, no use for that.
    Index("ix_alamos_spikes_trace", "trace_id", "start_ns"),
)

schema_version = Table(
    "alamos_schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

#: The record tables by name, in the order rows are written.
TABLES: dict[str, Table] = {
    t.name: t
    for t in (experiments, spans, logs, metrics, reports, span_stats, span_stats_1h, log_stats)
}


def field_of(column: Column[Any]) -> str | None:
    """The record field ``column`` stores: its own name unless its ``info``
    says otherwise; ``None`` for a derived column (``duration_ns``)."""
    field: str | None = column.info.get("field", column.name)
    return field
