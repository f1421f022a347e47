"""The storage side under faults, against a real SQLite file and a real
PostgreSQL server (issue 10):

* a batch the database refuses because of its *rows* raises
  :class:`~alamos.core.errors.RecordsRejected` (with the database's message
  and the URL, password hidden), rolled back, and the exporter goes on with
  the next batch; a failing database (down, locked, full, a lock timeout, a
  newer schema) raises anything else, so that its records wait in the spool;
* only a duplicate primary key is skipped on SQLite: every other constraint
  is enforced (no more ``INSERT OR IGNORE``);
* spans are keyed by ``(span_id, trace_id)`` (schema version 2): two traces
  that draw the same span id both keep their span, and a database of
  version 1 is migrated with its data, also by concurrent exporters.
"""

from __future__ import annotations

import random
import sqlite3
import string
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import (
    CheckConstraint,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    Table,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import make_url

from alamos.core.errors import RecordsRejected, SchemaVersionError
from alamos.core.records import Record
from alamos.report.query import load_trace, recent_traces
from alamos.report.sql import SQLExporter, schema
from alamos.report.sql.migrate import (
    SCHEMA_VERSION,
    V3_INDEXES,
    V3_TABLES,
    V4_INDEXES,
    V4_TABLES,
)
from alamos.report.sql.rows import rows_for

from .test_sql import count, experiment, log, metric, read_engine, rows, span

T_A = "a" * 32
T_B = "b" * 32
SAME_ID = "5" * 16


def letters(n: int, seed: int = 1) -> str:
    """``n`` random letters: PostgreSQL compresses a repeated letter, in an
    index too, so ``"a" * 3000`` would fit."""
    return "".join(random.Random(seed).choices(string.ascii_letters, k=n))


@pytest.fixture
def exporter(db_url: str) -> Iterator[SQLExporter]:
    exp = SQLExporter(db_url)
    yield exp
    exp.close()


def dialect(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def all_rows(engine: Engine, table: str, order: str) -> list[dict[str, Any]]:
    return rows(engine, f"SELECT * FROM {table} ORDER BY {order}")


# -- rows the database refuses: RecordsRejected, and the exporter goes on ------------


@pytest.mark.postgres
def test_pg_overlong_experiment_path_is_rejected_and_the_exporter_goes_on(pg_url: str) -> None:
    # "index row size 3024 exceeds btree version 4 maximum 2704": before,
    # a plain driver error, i.e. "transient": retried and spooled forever.
    u = make_url(pg_url).set(password="s3cret")  # trust auth: any password works
    exp = SQLExporter(u.render_as_string(hide_password=False))
    exp.export([span(1)])
    engine = read_engine(pg_url)
    with pytest.raises(RecordsRejected) as info:
        exp.export([span(2), experiment(letters(3000)), log(1)])
    reason = info.value.reason
    assert "index row size" in reason
    assert "alamos_experiments_pkey" in reason
    assert "SQLSTATE 54000" in reason
    assert "s3cret" not in reason and "postgres:***@" in reason
    assert len(reason) < 1000
    # Rolled back: nothing of the refused batch is stored.
    assert (count(engine, "alamos_spans"), count(engine, "alamos_logs")) == (1, 0)
    # A remote parent's 6,000-digit trace id: refused the same way.
    with pytest.raises(RecordsRejected, match="index row size"):
        exp.export([span(3, trace_id="".join(random.Random(2).choices("0123456789", k=6000)))])
    # The exporter goes on: the rest of the batches are stored.
    exp.export([span(2), experiment("a" * 30), log(1)])
    exp.export([span(3)])
    assert (count(engine, "alamos_spans"), count(engine, "alamos_logs")) == (3, 1)
    assert count(engine, "alamos_experiments") == 1
    engine.dispose()
    exp.close()


def _user_table_with_check(url: str) -> None:
    """``alamos_spans`` created by the user before alamos, with a CHECK of
    their own (alamos creates the other tables and keeps this one)."""
    md = MetaData()
    spans = schema.spans.to_metadata(md)
    spans.append_constraint(CheckConstraint("length(name) <= 50", name="short_name"))
    engine = read_engine(url)
    md.create_all(engine)
    engine.dispose()


def test_a_check_constraint_is_enforced_not_silently_ignored(db_url: str) -> None:
    # Before: SQLite's INSERT OR IGNORE skipped the span silently (export
    # returned, the span was gone); PostgreSQL raised a "transient" error.
    _user_table_with_check(db_url)
    exp = SQLExporter(db_url)
    exp.export([span(1)])
    engine = exp.engine
    with pytest.raises(RecordsRejected, match=r"(?i)check constraint.*short_name"):
        exp.export([span(2), span(3, name="x" * 100), log(1)])
    assert (count(engine, "alamos_spans"), count(engine, "alamos_logs")) == (1, 0)
    exp.export([span(2), log(1)])
    exp.export([span(1), span(2), log(1)])  # a replay: the duplicate ids are skipped
    assert (count(engine, "alamos_spans"), count(engine, "alamos_logs")) == (2, 1)
    exp.close()


def test_a_unique_index_other_than_the_key_is_enforced(exporter: SQLExporter) -> None:
    # Before: skipped silently on both databases (INSERT OR IGNORE; ON
    # CONFLICT DO NOTHING without a target).
    exporter.export([log(1)])
    engine = exporter.engine
    with engine.begin() as conn:
        conn.execute(text("CREATE UNIQUE INDEX one_message ON alamos_logs (message)"))
    exporter.export([log(1)])  # the same id again: a replay, skipped
    with pytest.raises(RecordsRejected, match=r"(?i)unique.*(one_message|alamos_logs\.message)"):
        exporter.export([log(2, message="message 1"), log(3)])
    assert count(engine, "alamos_logs") == 1
    exporter.export([log(3)])
    assert count(engine, "alamos_logs") == 2


@pytest.mark.postgres
def test_pg_data_exception_is_rejected(pg_url: str) -> None:
    # Class 22: a column narrowed by hand (varchar(5)) and a "WARNING" log.
    exp = SQLExporter(pg_url)
    exp.export([log(1)])
    engine = exp.engine
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE alamos_logs ALTER COLUMN level TYPE varchar(5)"))
    with pytest.raises(RecordsRejected, match="SQLSTATE 22001"):
        exp.export([log(2, level="WARNING")])
    exp.export([log(2, level="ERROR")])
    assert count(engine, "alamos_logs") == 2
    exp.close()


def test_sqlite_string_or_blob_too_big_is_rejected(sqlite_url: str) -> None:
    exp = SQLExporter(sqlite_url)

    @event.listens_for(exp.engine, "connect")
    def _limit(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 100_000)

    exp.export([span(1)])
    with pytest.raises(RecordsRejected, match="string or blob too big"):
        exp.export([span(2), span(3, name="n" * 200_000)])
    exp.export([span(2)])
    assert count(exp.engine, "alamos_spans") == 2
    exp.close()


def test_sqlite_datatype_mismatch_is_rejected(sqlite_url: str) -> None:
    # A user's alamos_logs whose id is an INTEGER PRIMARY KEY (a rowid):
    # alamos' text ids do not fit it.
    md = MetaData()
    Table(
        "alamos_logs",
        md,
        *[
            Column(c.name, Integer if c.name == "id" else c.type, primary_key=c.primary_key)
            for c in schema.logs.columns
        ],
    )
    engine = read_engine(sqlite_url)
    md.create_all(engine)
    engine.dispose()
    exp = SQLExporter(sqlite_url)
    exp.export([span(1)])
    with pytest.raises(RecordsRejected, match="datatype mismatch"):
        exp.export([span(2), log(1)])
    exp.export([span(2)])
    assert count(exp.engine, "alamos_spans") == 2
    exp.close()


def test_a_batch_with_a_non_record_is_rejected(exporter: SQLExporter) -> None:
    with pytest.raises(RecordsRejected, match="cannot store"):
        exporter.export([span(1), object()])  # type: ignore[list-item]
    exporter.export([span(1)])
    assert count(exporter.engine, "alamos_spans") == 1


# -- a failing database: anything but RecordsRejected ---------------------------------


def _raises_transient(exp: SQLExporter, batch: list[Record]) -> BaseException:
    with pytest.raises(Exception) as info:
        exp.export(batch)
    assert not isinstance(info.value, RecordsRejected), info.value
    return info.value


def test_sqlite_locked_is_transient(sqlite_url: str) -> None:
    exp = SQLExporter(sqlite_url)
    exp.sqlite_busy_timeout_ms = 200
    exp.export([span(1)])
    path = make_url(sqlite_url).database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        exc = _raises_transient(exp, [span(2)])
        assert "locked" in str(exc)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    exp.export([span(2)])
    assert count(exp.engine, "alamos_spans") == 2
    exp.close()


def test_sqlite_full_is_transient(sqlite_url: str) -> None:
    # SQLite's own "database or disk is full", with max_page_count as the disk:
    # room for the schema holding one span (measured on a scratch file, so a
    # new table or index does not move it) and one page more, not for the batch.
    scratch = SQLExporter(sqlite_url + "-scratch.db")
    scratch.export([span(0)])
    with scratch.engine.connect() as conn:
        used = int(conn.exec_driver_sql("PRAGMA page_count").scalar() or 0)
    scratch.close()
    assert used > 30  # a page per table and index at least
    exp = SQLExporter(sqlite_url)
    pages = [used + 1]

    @event.listens_for(exp.engine, "connect")
    def _small_disk(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages[0]}")

    exp.export([span(0)])
    batch: list[Record] = [span(i, attributes={"pad": "p" * 200}) for i in range(1, 2001)]
    exc = _raises_transient(exp, batch)
    assert "full" in str(exc)
    pages[0] = 1_000_000  # space again (the failed export dropped the connection)
    assert count(exp.engine, "alamos_spans") == 1
    exp.export(batch)
    assert count(exp.engine, "alamos_spans") == 2001
    exp.close()


def test_newer_schema_is_transient(sqlite_url: str) -> None:
    exp = SQLExporter(sqlite_url)
    exp.export([span(1)])
    with exp.engine.begin() as conn:
        conn.execute(text("UPDATE alamos_schema_version SET version = 99"))
    fresh = SQLExporter(sqlite_url)
    exc = _raises_transient(fresh, [span(2)])
    assert isinstance(exc, SchemaVersionError)
    fresh.close()
    exp.close()


@pytest.mark.postgres
def test_pg_lock_timeout_is_transient(pg_url: str) -> None:
    exp = SQLExporter(pg_url, engine_kwargs={"connect_args": {"options": "-c lock_timeout=300"}})
    exp.export([span(1)])
    holder = psycopg.connect(pg_url)
    holder.execute("LOCK TABLE alamos_spans IN ACCESS EXCLUSIVE MODE")
    try:
        exc = _raises_transient(exp, [span(2)])
        assert "lock timeout" in str(exc)
    finally:
        holder.rollback()
        holder.close()
    exp.export([span(2)])
    assert count(exp.engine, "alamos_spans") == 2
    exp.close()


@pytest.mark.postgres
def test_pg_server_down_is_transient(pg_server: Any, pg_url: str) -> None:
    if not pg_server.controllable:
        pytest.skip("ALAMOS_TEST_PG_URL's server cannot be stopped by the tests")
    exp = SQLExporter(pg_url)
    exp.export([span(1)])
    pg_server.stop()
    try:
        _raises_transient(exp, [span(2)])
    finally:
        pg_server.start()
    exp.export([span(2)])
    assert count(exp.engine, "alamos_spans") == 2
    exp.close()


# -- spans keyed by (span_id, trace_id) ------------------------------------------------


def test_two_traces_with_the_same_span_id_keep_both_spans(exporter: SQLExporter) -> None:
    # Before: keyed by span_id alone, the second span was skipped as a replay.
    a = span(1, trace_id=T_A, span_id=SAME_ID, name="in-a")
    b = span(2, trace_id=T_B, span_id=SAME_ID, name="in-b")
    exporter.export([a])
    exporter.export([b])
    exporter.export([a, b])  # replayed: still stored once each
    engine = exporter.engine
    got = rows(engine, "SELECT trace_id, name FROM alamos_spans ORDER BY trace_id")
    assert got == [{"trace_id": T_A, "name": "in-a"}, {"trace_id": T_B, "name": "in-b"}]
    url = exporter.url.render_as_string(hide_password=False)
    assert [s.name for s in load_trace(url, T_A)[0]] == ["in-a"]
    assert [s.name for s in load_trace(url, T_B)[0]] == ["in-b"]


def test_a_parent_is_looked_for_in_its_own_trace(exporter: SQLExporter) -> None:
    # Trace B's span names a parent whose id exists only in trace A: in B it
    # is an orphan, and B's earliest orphan is its root.
    exporter.export(
        [
            span(1, trace_id=T_A, span_id=SAME_ID, name="a-root"),
            span(2, trace_id=T_B, span_id="6" * 16, parent_id=SAME_ID, name="b-orphan"),
        ]
    )
    url = exporter.url.render_as_string(hide_password=False)
    summaries = {t.trace_id: t for t in recent_traces(url)}
    b = summaries[T_B]
    assert b.root is not None and b.root.name == "b-orphan"
    assert not b.complete
    assert summaries[T_A].complete


# -- the migration from version 1 ----------------------------------------------------


def _create_v1(url: str) -> None:
    """A database as alamos 0.1 (schema version 1) left it: alamos_spans
    keyed by span_id alone."""
    md = MetaData()
    later = {index for _, index in (*V3_INDEXES, *V4_INDEXES)}
    for table in schema.TABLES.values():
        # Version 3's and 4's record tables (alamos_span_stats...) did not exist yet.
        if table is not schema.spans and table.name not in (*V3_TABLES, *V4_TABLES):
            copy = table.to_metadata(md)
            copy.indexes -= {ix for ix in copy.indexes if ix.name in later}
    schema.schema_version.to_metadata(md)
    Table(
        "alamos_spans",
        md,
        *[
            Column(c.name, c.type, nullable=c.nullable, primary_key=c.name == "span_id")
            for c in schema.spans.columns
        ],
        *[
            Index(ix.name, *[c.name for c in ix.columns])
            for ix in schema.spans.indexes
            if ix.name not in later
        ],
        # Versions 1 to 3 looked traces up by this one (version 4 drops it).
        Index("ix_alamos_spans_trace_id", "trace_id"),
    )
    engine = read_engine(url)
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO alamos_schema_version (version) VALUES (1)"))
    assert inspect(engine).get_pk_constraint("alamos_spans")["constrained_columns"] == ["span_id"]
    engine.dispose()


def _insert(url: str, records: list[Record]) -> None:
    engine = read_engine(url)
    with engine.begin() as conn:
        for table, table_rows in rows_for(records).items():
            conn.execute(schema.TABLES[table].insert(), table_rows)
    engine.dispose()


def test_a_version_1_database_is_migrated_with_its_data(db_url: str) -> None:
    _create_v1(db_url)
    old: list[Record] = [
        span(i, attributes={"i": i}, parent_id=f"{i - 1:016x}" if i else None) for i in range(50)
    ]
    _insert(db_url, [*old, log(1), metric(1), experiment()])
    engine = read_engine(db_url)
    with engine.begin() as conn:  # what a user may have added
        conn.execute(text("ALTER TABLE alamos_spans ADD COLUMN extra TEXT"))
        conn.execute(
            text("UPDATE alamos_spans SET extra = 'kept' WHERE span_id < '0000000000000010'")
        )
        conn.execute(text("CREATE INDEX user_span_name ON alamos_spans (name)"))
        conn.execute(
            text(
                "CREATE VIEW user_errors AS SELECT span_id FROM alamos_spans WHERE status = 'error'"
            )
        )
    before = all_rows(engine, "alamos_spans", "span_id")
    exp = SQLExporter(db_url)
    exp.export([span(1, trace_id=T_B, name="same id, other trace"), log(2)])
    after = all_rows(engine, "alamos_spans", "trace_id, span_id")
    insp = inspect(engine)
    assert insp.get_pk_constraint("alamos_spans")["constrained_columns"] == ["span_id", "trace_id"]
    assert rows(engine, "SELECT version FROM alamos_schema_version") == [
        {"version": SCHEMA_VERSION}
    ]
    assert SCHEMA_VERSION == 4
    # Version 3's and 4's tables and indexes, added in place.
    assert set(V3_TABLES) | set(V4_TABLES) <= set(insp.get_table_names())
    for table, index in (*V3_INDEXES, *V4_INDEXES):
        assert index in {ix["name"] for ix in insp.get_indexes(table)}
    # Every old row, the user's column included, and the new span of the same id.
    assert [r for r in after if r["trace_id"] != T_B] == before
    assert sum(r["extra"] == "kept" for r in after) == 16
    assert [r["name"] for r in after if r["trace_id"] == T_B] == ["same id, other trace"]
    assert count(engine, "alamos_logs") == 2
    assert count(engine, "alamos_metrics") == count(engine, "alamos_experiments") == 1
    indexes = {ix["name"] for ix in insp.get_indexes("alamos_spans")}
    assert {"ix_alamos_spans_path_start", "user_span_name"} <= indexes
    assert "ix_alamos_spans_trace_id" not in indexes  # covered by ix_alamos_spans_trace_parent
    assert rows(engine, "SELECT count(*) AS n FROM user_errors") == [{"n": 0}]
    # The migrated database takes replays and collisions like a new one.
    exp.export([*old[:10], span(2, trace_id=T_B)])
    assert count(engine, "alamos_spans") == 52
    exp.close()
    engine.dispose()


def test_concurrent_exporters_migrate_a_version_1_database_once(db_url: str) -> None:
    _create_v1(db_url)
    _insert(db_url, [span(i) for i in range(100)])
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(k: int) -> None:
        exp = SQLExporter(db_url)
        try:
            start.wait()
            for b in range(5):
                # Each exporter also stores a span of the same id in its own trace.
                exp.export([span(k * 1000 + b), span(0, trace_id=f"{k + 1:032x}", name=f"k{k}")])
        except BaseException as exc:
            errors.append(exc)
        finally:
            exp.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    engine = read_engine(db_url)
    assert rows(engine, "SELECT version FROM alamos_schema_version") == [
        {"version": SCHEMA_VERSION}
    ]
    # The old spans, each exporter's own (some of k=0's are old ones: stored
    # once), and span id 0 in four more traces.
    old_ids = {(f"{i:016x}", f"{i:032x}") for i in range(100)}
    new = {(f"{k * 1000 + b:016x}", f"{k * 1000 + b:032x}") for k in range(4) for b in range(5)}
    same = {(f"{0:016x}", f"{k + 1:032x}") for k in range(4)}
    assert count(engine, "alamos_spans") == len(old_ids | new | same)
    engine.dispose()


def test_a_version_1_database_upgrades_and_stores_statistics_and_spikes(db_url: str) -> None:
    """The v3 tables of issue 11 arrive by migration on a v1 database that
    holds data: statistics rows go in (once, replayed), spikes are flagged."""
    from alamos.core.level import Level
    from alamos.core.records import SpanStatsRecord
    from alamos.report.query import spike_traces, store_spikes
    from alamos.stats import merge, read_stats
    from alamos.stats.sketch import empty, encode

    _create_v1(db_url)
    frames = [span(i, name="tick") for i in range(40)]  # each lasts 1,500 ns
    # The last, after a full window of 32 alike, lasts ten times as long: a spike.
    frames[-1] = span(39, name="tick", end_ns=frames[-1].start_ns + 15_000)
    _insert(db_url, frames)
    engine = read_engine(db_url)
    assert "alamos_span_stats" not in inspect(engine).get_table_names()
    sketch = encode(empty())

    def stats_row(i: int) -> SpanStatsRecord:
        window = 60 * 10**9
        return SpanStatsRecord(
            f"{i:032x}", window * i, window, "root/db", "tick", "ok", Level.PROD,
            2, 0, 30, 15.0, 50.0, 10, 20, sketch, {}, "svc", "node-1",
        )  # fmt: skip

    stats = [stats_row(i) for i in range(3)]
    exp = SQLExporter(db_url)
    exp.export(stats)
    exp.export(stats)  # a replay
    exp.close()
    stored = read_stats(db_url)
    assert stored == stats
    assert (merge(stored).count, merge(stored).m2) == (6, 150.0 + 0.0)
    assert store_spikes(db_url, "tick") == 1
    assert spike_traces(db_url) == [f"{39:032x}"]
    assert rows(engine, "SELECT version FROM alamos_schema_version") == [
        {"version": SCHEMA_VERSION}
    ]
    assert count(engine, "alamos_spans") == 40
    engine.dispose()
