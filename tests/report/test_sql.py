"""SQLExporter against a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect, text

from alamos.core.errors import SchemaVersionError
from alamos.core.exporter import Exporter
from alamos.core.json import STORED_JSON as json_safe
from alamos.core.json import clean_text
from alamos.core.level import Level
from alamos.core.records import (
    EventRecord,
    ExperimentRecord,
    LogRecord,
    LogStatsRecord,
    MetricRecord,
    Record,
    ReportRecord,
    SpanRecord,
    SpanStatsHourRecord,
    SpanStatsRecord,
)
from alamos.report.sql import SQLExporter, migrate, normalize_url, schema
from alamos.report.sql.coerce import dumps_json
from alamos.report.sql.migrate import SCHEMA_VERSION, ensure_schema
from alamos.report.sql.rows import rows_for

T0 = 1_700_000_000_000_000_000
INJECTION = "'; DROP TABLE alamos_spans; --"


# -- record factories ---------------------------------------------------------


def span(i: int = 0, **kw: Any) -> SpanRecord:
    fields: dict[str, Any] = {
        "trace_id": f"{i:032x}",
        "span_id": f"{i:016x}",
        "parent_id": None,
        "path": "root/db",
        "name": "query",
        "level": Level.PROD,
        "start_ns": T0 + i,
        "end_ns": T0 + i + 1500,
        "status": "ok",
        "error_text": None,
        "attributes": {"rows": i, "table": "users"},
        "events": (),
        "service": "svc",
        "node": "node-1",
    }
    fields.update(kw)
    return SpanRecord(**fields)


def log(i: int = 0, **kw: Any) -> LogRecord:
    fields: dict[str, Any] = {
        "id": f"log-{i}",
        "ts_ns": T0 + i,
        "path": "root/db",
        "level": "INFO",
        "message": f"message {i}",
        "trace_id": None,
        "span_id": None,
        "attributes": {},
        "location": "mod.py:1",
        "service": "svc",
        "node": "node-1",
    }
    fields.update(kw)
    return LogRecord(**fields)


def metric(i: int = 0, **kw: Any) -> MetricRecord:
    fields: dict[str, Any] = {
        "id": f"metric-{i}",
        "ts_ns": T0 + i,
        "path": "root/db",
        "name": "requests_total",
        "kind": "counter",
        "labels": {"method": "GET"},
        "value": 3.0,
        "sum": None,
        "count": None,
        "buckets": None,
        "service": "svc",
        "node": "node-1",
    }
    fields.update(kw)
    return MetricRecord(**fields)


def report(i: int = 0, **kw: Any) -> ReportRecord:
    fields: dict[str, Any] = {
        "id": f"report-{i}",
        "ts_ns": T0 + i,
        "path": "root/db",
        "key": "pool",
        "report": {"size": 5, "idle": [1, 2]},
        "service": "svc",
        "node": "node-1",
    }
    fields.update(kw)
    return ReportRecord(**fields)


def span_stats(i: int = 0) -> SpanStatsRecord:
    return SpanStatsRecord(
        f"{i:032x}", T0, 60 * 10**9, "root/db", "write", "ok", Level.PROD,
        2, 0, 30, 15.0, 50.0, 10, 20, "AAA=", {"bytes": {"count": 1}}, "svc", "node-1",
    )  # fmt: skip


def span_stats_1h(i: int = 0) -> SpanStatsHourRecord:
    return SpanStatsHourRecord(
        f"{i:032x}", T0, 3600 * 10**9, "root/db", "write", "ok", Level.PROD,
        2, 0, 30, 15.0, 50.0, 10, 20, "AAA=", {}, "svc", "node-1",
    )  # fmt: skip


def log_stats(i: int = 0) -> LogStatsRecord:
    return LogStatsRecord(f"{i:032x}", T0, 60 * 10**9, "root/db", "INFO", 5, "svc", "node-1")


def experiment(path: str = "root/db", **kw: Any) -> ExperimentRecord:
    fields: dict[str, Any] = {
        "path": path,
        "parent_path": "root",
        "key": path.rsplit("/", 1)[-1],
        "service": "svc",
        "node": "node-1",
        "created_ns": T0,
    }
    fields.update(kw)
    return ExperimentRecord(**fields)


# -- helpers --------------------------------------------------------------------


@pytest.fixture
def exporter(db_url: str) -> Any:
    exp = SQLExporter(db_url)
    yield exp
    exp.close()


def rows(engine: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql), params)]


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def as_json(value: Any) -> Any:
    """A JSON column read back: text on SQLite, already parsed on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


def read_engine(url: str) -> Engine:
    return create_engine(normalize_url(url))


# -- URLs, names, protocol ----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["mysql://user@host/db", "postgresql+psycopg2://u@h/db", "oracle://x", "not a url", ""],
)
def test_unsupported_url_is_a_clear_error(url: str) -> None:
    with pytest.raises(ValueError) as info:
        SQLExporter(url)
    message = str(info.value)
    assert "unsupported database URL" in message
    assert "sqlite:///" in message
    assert "postgresql://" in message


def test_postgres_urls_use_psycopg_3() -> None:
    for url in ("postgres://u:pw@h:5433/db", "postgresql://u:pw@h:5433/db"):
        u = normalize_url(url)
        assert u.drivername == "postgresql+psycopg"
        assert (u.host, u.port, u.database, u.password) == ("h", 5433, "db", "pw")
    assert normalize_url("postgresql+psycopg://h/db").drivername == "postgresql+psycopg"


def test_default_name_is_stable_safe_and_hides_the_password(tmp_path: Path) -> None:
    a = SQLExporter("postgresql://u:secret@h:5433/db")
    b = SQLExporter("postgres://u:other@h:5433/db")
    c = SQLExporter("postgresql://u:secret@h:5433/otherdb")
    assert a.name == b.name != c.name
    assert a.name.startswith("sql-postgresql-")
    assert "secret" not in a.name and "secret" not in repr(a)
    s = SQLExporter(f"sqlite:///{tmp_path}/x.db")
    assert s.name.startswith("sql-sqlite-")
    assert s.name == SQLExporter(f"sqlite:///{tmp_path}/x.db").name
    for name in (a.name, s.name):
        assert all(ch.isalnum() or ch == "-" for ch in name)
    assert SQLExporter("sqlite://", name="mine").name == "mine"


def test_relative_sqlite_path_is_made_absolute(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    exp = SQLExporter("sqlite:///rel/a.db")
    assert exp.url.database == str(tmp_path / "rel" / "a.db")


def test_is_an_exporter() -> None:
    exp = SQLExporter("sqlite://", min_level="debug")
    assert isinstance(exp, Exporter)
    assert exp.synchronous is False
    assert exp.min_level is Level.DEBUG
    assert SQLExporter("sqlite://").min_level is Level.PROD


def test_connects_lazily(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "lazy.db"
    exp = SQLExporter(f"sqlite:///{db}")
    assert exp.engine is exp.engine  # an engine, but no connection yet
    assert not db.exists()
    exp.export([span()])
    assert db.exists()  # parent folder made on first export
    exp.close()
    # Nothing listens there: constructing is fine, exporting raises.
    bad = SQLExporter("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(Exception, match=r"(?i)connect|refused"):
        bad.export([span()])
    bad.close()


def test_in_memory_sqlite() -> None:
    exp = SQLExporter("sqlite://")
    exp.export([span(1), log(1)])
    exp.export([span(1)])
    assert count(exp.engine, "alamos_spans") == 1
    exp.close()


@pytest.mark.postgres
def test_engine_kwargs_are_passed_on(pg_url: str) -> None:
    exp = SQLExporter(
        pg_url, engine_kwargs={"pool_size": 1, "connect_args": {"application_name": "mine"}}
    )
    exp.export([span(1)])
    assert rows(exp.engine, "SELECT current_setting('application_name') AS a") == [{"a": "mine"}]
    exp.close()


def test_export_after_close_raises(sqlite_url: str) -> None:
    exp = SQLExporter(sqlite_url)
    exp.export([span()])
    exp.close()
    exp.close()
    with pytest.raises(RuntimeError, match="closed"):
        exp.export([span(1)])


def test_empty_batch_does_not_connect(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    exp = SQLExporter(f"sqlite:///{db}")
    exp.export([])
    assert not db.exists()


def test_sqlite_pragmas(sqlite_url: str) -> None:
    exp = SQLExporter(sqlite_url)
    exp.export([span()])
    with exp.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    exp.close()


# -- schema -------------------------------------------------------------------


def test_schema_created_on_first_use(exporter: SQLExporter) -> None:
    engine = exporter.engine
    assert not inspect(engine).has_table("alamos_spans")
    exporter.export([span()])
    insp = inspect(engine)
    for table in schema.metadata.tables:
        assert insp.has_table(table), table
    assert rows(engine, "SELECT version FROM alamos_schema_version") == [
        {"version": SCHEMA_VERSION}
    ]
    index_columns = {
        (t, tuple(ix["column_names"]))
        for t in ("alamos_spans", "alamos_logs", "alamos_metrics")
        for ix in insp.get_indexes(t)
    }
    assert {
        ("alamos_spans", ("trace_id", "parent_span_id")),  # serves lookups by trace
        ("alamos_spans", ("path", "start_ns")),
        ("alamos_logs", ("path", "level", "ts_ns")),
        ("alamos_logs", ("trace_id",)),
        ("alamos_metrics", ("path", "name", "ts_ns")),
    } <= index_columns
    # Idempotent: a second exporter (a restart) keeps one version row.
    again = SQLExporter(exporter.url.render_as_string(hide_password=False))
    again.export([span(1)])
    again.close()
    assert count(engine, "alamos_schema_version") == 1
    assert count(engine, "alamos_spans") == 2


def test_json_columns_are_jsonb_on_postgresql(pg_url: str) -> None:
    exp = SQLExporter(pg_url)
    exp.export([span()])
    types = {c["name"]: str(c["type"]) for c in inspect(exp.engine).get_columns("alamos_spans")}
    assert types["attributes"] == "JSONB"
    assert types["start_ns"] == "BIGINT"
    exp.close()


def test_newer_schema_version_is_refused(exporter: SQLExporter) -> None:
    exporter.export([span()])
    with exporter.engine.begin() as conn:
        conn.execute(text("UPDATE alamos_schema_version SET version = :v"), {"v": 99})
    fresh = SQLExporter(exporter.url.render_as_string(hide_password=False))
    with pytest.raises(SchemaVersionError, match=r"version 99.*newer alamos"):
        fresh.export([span(1)])
    with pytest.raises(SchemaVersionError):  # every time: not silently written to
        fresh.export([span(1)])
    fresh.close()
    with pytest.raises(SchemaVersionError):
        ensure_schema(exporter.engine)
    assert count(exporter.engine, "alamos_spans") == 1


def test_migrations_hook(sqlite_url: str, monkeypatch: Any) -> None:
    exp = SQLExporter(sqlite_url)
    exp.export([span()])
    exp.close()
    engine = read_engine(sqlite_url)
    # The version after this alamos' own (the schema was at 1 when this test
    # was written with 2 here).
    nxt = SCHEMA_VERSION + 1
    monkeypatch.setattr(migrate, "SCHEMA_VERSION", nxt)
    with pytest.raises(SchemaVersionError, match="no migration"):
        ensure_schema(engine)
    calls: list[int] = []

    def to_v2(conn: Any) -> None:
        calls.append(1)
        conn.execute(text("ALTER TABLE alamos_spans ADD COLUMN extra TEXT"))

    monkeypatch.setitem(migrate.MIGRATIONS, nxt, to_v2)
    assert ensure_schema(engine) == nxt
    assert ensure_schema(engine) == nxt
    assert calls == [1]
    assert rows(engine, "SELECT version FROM alamos_schema_version") == [{"version": nxt}]
    assert "extra" in {c["name"] for c in inspect(engine).get_columns("alamos_spans")}
    engine.dispose()


# -- round trip ---------------------------------------------------------------


def test_round_trip_of_every_record_kind(exporter: SQLExporter) -> None:
    s = span(
        7,
        parent_id="00000000000000aa",
        level=Level.DEBUG,
        status="error",
        error_text="ValueError: boom",
        attributes={"a": 1, "b": 2.5, "c": True, "d": "x", "e": ("t", 1)},
        events=(EventRecord("flushed", T0 + 10, {"pages": 3}),),
        session_id="sess",
        location="app.py:10",
    )
    lg = log(1, level="WARNING", trace_id=s.trace_id, span_id=s.span_id, attributes={"k": "v"})
    m = metric(
        2,
        kind="histogram",
        value=4.0,
        sum=4.0,
        count=2.0,
        buckets={"0.5": 1.0, "+Inf": 2.0},
        level=Level.BENCH,
    )
    rp = report(3)
    ex = experiment("root/db")
    exporter.export([s, lg, m, rp, ex])
    engine = exporter.engine

    [sr] = rows(engine, "SELECT * FROM alamos_spans")
    assert as_json(sr.pop("attributes")) == {"a": 1, "b": 2.5, "c": True, "d": "x", "e": ["t", 1]}
    assert as_json(sr.pop("events")) == [
        {"name": "flushed", "ts_ns": T0 + 10, "attributes": {"pages": 3}}
    ]
    assert sr == {
        "span_id": s.span_id,
        "trace_id": s.trace_id,
        "parent_span_id": "00000000000000aa",
        "path": "root/db",
        "name": "query",
        "level": "debug",
        "start_ns": T0 + 7,
        "end_ns": T0 + 7 + 1500,
        "duration_ns": 1500,
        "status": "error",
        "error": "ValueError: boom",
        "service": "svc",
        "node": "node-1",
        "session_id": "sess",
        "location": "app.py:10",
    }

    [lr] = rows(engine, "SELECT * FROM alamos_logs")
    assert as_json(lr.pop("attributes")) == {"k": "v"}
    assert lr == {
        "id": "log-1",
        "ts_ns": T0 + 1,
        "path": "root/db",
        "level": "WARNING",
        "message": "message 1",
        "trace_id": s.trace_id,
        "span_id": s.span_id,
        "location": "mod.py:1",
        "service": "svc",
        "node": "node-1",
        "session_id": None,
    }

    [mr] = rows(engine, "SELECT * FROM alamos_metrics")
    assert as_json(mr.pop("labels")) == {"method": "GET"}
    assert as_json(mr.pop("buckets")) == {"0.5": 1.0, "+Inf": 2.0}
    assert mr == {
        "id": "metric-2",
        "ts_ns": T0 + 2,
        "path": "root/db",
        "name": "requests_total",
        "kind": "histogram",
        "value": 4.0,
        "sum": 4.0,
        "count": 2.0,
        "service": "svc",
        "node": "node-1",
        "level": "bench",
    }
    # A counter has no buckets: SQL NULL, not JSON null.
    exporter.export([metric(9)])
    assert rows(engine, "SELECT buckets FROM alamos_metrics WHERE buckets IS NULL") == [
        {"buckets": None}
    ]

    [rr] = rows(engine, "SELECT * FROM alamos_reports")
    assert as_json(rr.pop("report")) == {"size": 5, "idle": [1, 2]}
    assert rr == {
        "id": "report-3",
        "ts_ns": T0 + 3,
        "path": "root/db",
        "key": "pool",
        "service": "svc",
        "node": "node-1",
        "level": "prod",
    }

    assert rows(engine, "SELECT * FROM alamos_experiments") == [
        {
            "path": "root/db",
            "parent_path": "root",
            "key": "db",
            "service": "svc",
            "node": "node-1",
            "created_ns": T0,
        }
    ]


def test_rows_for_matches_the_schema() -> None:
    out = rows_for([span(), log(), metric(), report(), experiment()])
    for table, table_rows in out.items():
        assert list(table_rows[0]) == [c.name for c in schema.metadata.tables[table].columns]
    assert out["alamos_spans"][0]["level"] == "prod"
    with pytest.raises(TypeError, match="cannot store"):
        rows_for([object()])  # type: ignore[list-item]


# -- idempotence, atomicity, volume ---------------------------------------------------


def all_counts(engine: Engine) -> dict[str, int]:
    return {t: count(engine, t) for t in schema.TABLES}


def test_replayed_batches_are_stored_once(exporter: SQLExporter) -> None:
    batch: list[Record] = [
        span(1),
        span(2),
        log(1),
        metric(1),
        report(1),
        experiment(),
        span_stats(1),
        span_stats_1h(1),
        log_stats(1),
    ]
    exporter.export(batch)
    exporter.export(batch)  # a replay of the whole batch
    exporter.export([span(2), span(3), log(1), log(2), span_stats(1), span_stats(2)])
    # The same id in the other statistics tables is another row, and is kept.
    exporter.export([span_stats_1h(1), span_stats_1h(2), log_stats(1), log_stats(2), log_stats(3)])
    exporter.export([span(4), span(4), log(3), log(3)])  # duplicates inside one batch
    assert all_counts(exporter.engine) == {
        "alamos_experiments": 1,
        "alamos_spans": 4,
        "alamos_logs": 3,
        "alamos_metrics": 1,
        "alamos_reports": 1,
        "alamos_span_stats": 2,
        "alamos_span_stats_1h": 2,
        "alamos_log_stats": 3,
    }


def test_a_batch_is_one_transaction(exporter: SQLExporter) -> None:
    exporter.export([span(0)])
    engine = exporter.engine
    # Make every insert into alamos_metrics fail, after the spans of the same
    # batch have been written.
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER fail_metrics BEFORE INSERT ON alamos_metrics "
                    "BEGIN SELECT RAISE(ABORT, 'metrics refused'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION fail_metrics() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'metrics refused'; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER fail_metrics BEFORE INSERT ON alamos_metrics "
                    "FOR EACH ROW EXECUTE FUNCTION fail_metrics()"
                )
            )
    batch: list[Record] = [span(1), span(2), log(1), metric(1)]
    with pytest.raises(Exception, match="metrics refused"):
        exporter.export(batch)
    assert all_counts(engine)["alamos_spans"] == 1
    assert all_counts(engine)["alamos_logs"] == 0
    with engine.begin() as conn:
        on = "" if engine.dialect.name == "sqlite" else " ON alamos_metrics"
        conn.execute(text(f"DROP TRIGGER fail_metrics{on}"))
    exporter.export(batch)
    assert all_counts(engine)["alamos_spans"] == 3
    assert all_counts(engine)["alamos_metrics"] == 1


def test_10k_span_batch(exporter: SQLExporter) -> None:
    batch = [
        span(
            i,
            attributes={"i": i, "method": "GET", "ratio": i / 7},
            events=(EventRecord("e", T0 + i, {"n": i}),) if i % 10 == 0 else (),
        )
        for i in range(10_000)
    ]
    exporter.export(batch[:1])  # schema creation outside the timing
    t = time.perf_counter()
    exporter.export(batch)
    elapsed = time.perf_counter() - t
    print(f"\n{exporter.engine.dialect.name}: 10k spans in {elapsed * 1000:.0f} ms")
    engine = exporter.engine
    assert count(engine, "alamos_spans") == 10_000
    [r] = rows(engine, "SELECT * FROM alamos_spans WHERE span_id = :s", s=f"{9990:016x}")
    assert as_json(r["attributes"]) == {"i": 9990, "method": "GET", "ratio": 9990 / 7}
    assert as_json(r["events"]) == [{"name": "e", "ts_ns": T0 + 9990, "attributes": {"n": 9990}}]
    t = time.perf_counter()
    exporter.export(batch)  # replayed whole
    elapsed = time.perf_counter() - t
    print(f"{exporter.engine.dialect.name}: 10k spans replayed in {elapsed * 1000:.0f} ms")
    assert count(engine, "alamos_spans") == 10_000


# -- hostile input --------------------------------------------------------------


def test_clean_text() -> None:
    plain = "plain ascii"
    assert clean_text(plain) is plain
    assert clean_text("a\x00b") == "a\ufffdb"
    assert clean_text("\ud800") == "\ufffd"
    assert clean_text("é\ud800\x00") == "é\ufffd\ufffd"
    assert clean_text("\ud83d\ude00") == "\U0001f600"  # a split pair is joined
    assert clean_text("\udc00\ud800") == "\ufffd\ufffd"
    assert clean_text(INJECTION) == INJECTION


def test_json_safe_and_dumps() -> None:
    nan, inf = float("nan"), float("inf")
    value = {"nan": nan, "inf": inf, "-inf": -inf, 1: "one", None: b"by\xfftes", "t": (1, {2})}
    safe = json_safe(value)
    assert safe == {
        "nan": "NaN",
        "inf": "Infinity",
        "-inf": "-Infinity",
        "1": "one",
        "null": "by\ufffdtes",
        "t": [1, [2]],
    }
    assert json.loads(dumps_json(value)) == safe
    assert dumps_json({"a": "\x00", "b": "\ud800"}) == '{"a":"\ufffd","b":"\ufffd"}'
    assert dumps_json({"k": [1, 2.5, None, True]}) == '{"k":[1,2.5,null,true]}'
    cycle: list[Any] = []
    cycle.append(cycle)
    assert "<too deep>" in dumps_json(cycle)
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    assert "<too deep>" in dumps_json(deep)
    assert json_safe(10**5000).startswith("<int of")
    assert json_safe(object()).startswith("<object object")


def test_hostile_values_are_stored_safely(exporter: SQLExporter) -> None:
    huge = "x" * 5_000_000 + "é"
    nasty_attrs: dict[str, Any] = {
        "nan": float("nan"),
        "inf": float("inf"),
        "ninf": float("-inf"),
        "nul": "a\x00b",
        "surrogate": "\ud800",
        "emoji": "🚀 ünïcödé",
        INJECTION: INJECTION,
        "key\x00nul": 1,
        "nested": {"deep": [float("nan"), "\x00"]},
        "big": 2**70,
    }
    spans_ = [
        span(
            1,
            name=INJECTION,
            path=INJECTION,
            status="\x00",
            error_text="err\ud800or",
            attributes=nasty_attrs,
            events=(EventRecord("\ud83d\ude00", T0, {"v": float("inf")}),),
            service="svc 🚀",
        ),
        span(2, name="\U0001f600" * 1000, location="\udfff"),
    ]
    logs_ = [
        log(1, message=huge),
        log(2, message=INJECTION, path="a\x00b"),
        log(3, message="emoji 🚀 and NUL \x00 and lone \udc80", level="ERROR"),
    ]
    metrics_ = [
        metric(1, value=float("nan"), labels={"l": "\x00"}),
        metric(2, value=float("inf"), sum=float("-inf"), count=float("nan")),
        metric(3, value=-0.0, buckets={"+Inf": float("inf"), "nan": float("nan")}),
        metric(4, name=INJECTION, value=1e308),
    ]
    reports_ = [
        report(1, report={"x": float("nan"), "y": [b"\x00\xff"], "z": object}, key=INJECTION)
    ]
    exporter.export([*spans_, *logs_, *metrics_, *reports_, experiment(INJECTION)])
    exporter.export([*spans_, *logs_])  # replay too
    engine = exporter.engine
    pg = engine.dialect.name == "postgresql"

    assert inspect(engine).has_table("alamos_spans")
    s1 = rows(engine, "SELECT * FROM alamos_spans WHERE span_id = :i", i=f"{1:016x}")[0]
    assert s1["name"] == INJECTION and s1["path"] == INJECTION
    assert s1["status"] == "\ufffd"
    assert s1["error"] == "err\ufffdor"
    assert s1["service"] == "svc 🚀"
    assert as_json(s1["attributes"]) == {
        "nan": "NaN",
        "inf": "Infinity",
        "ninf": "-Infinity",
        "nul": "a\ufffdb",
        "surrogate": "\ufffd",
        "emoji": "🚀 ünïcödé",
        INJECTION: INJECTION,
        "key\ufffdnul": 1,
        "nested": {"deep": ["NaN", "\ufffd"]},
        "big": 2**70,
    }
    assert as_json(s1["events"]) == [
        {"name": "\U0001f600", "ts_ns": T0, "attributes": {"v": "Infinity"}}
    ]
    s2 = rows(engine, "SELECT name, location FROM alamos_spans WHERE span_id = :i", i=f"{2:016x}")
    assert s2 == [{"name": "\U0001f600" * 1000, "location": "\ufffd"}]

    by_id = {r["id"]: r for r in rows(engine, "SELECT id, message, path FROM alamos_logs")}
    assert by_id["log-1"]["message"] == huge
    assert by_id["log-2"] == {"id": "log-2", "message": INJECTION, "path": "a\ufffdb"}
    assert by_id["log-3"]["message"] == "emoji 🚀 and NUL \ufffd and lone \ufffd"
    assert rows(engine, "SELECT id FROM alamos_logs WHERE message = :m", m=INJECTION) == [
        {"id": "log-2"}
    ]

    ms = {r["id"]: r for r in rows(engine, "SELECT * FROM alamos_metrics")}
    # value/sum/count: PostgreSQL keeps NaN and ±inf; SQLite keeps ±inf, NaN is NULL.
    if pg:
        assert math.isnan(ms["metric-1"]["value"])
        assert math.isnan(ms["metric-2"]["count"])
    else:
        assert ms["metric-1"]["value"] is None
        assert ms["metric-2"]["count"] is None
    assert ms["metric-2"]["value"] == math.inf
    assert ms["metric-2"]["sum"] == -math.inf
    assert ms["metric-3"]["value"] == 0.0
    assert ms["metric-4"]["value"] == 1e308 and ms["metric-4"]["name"] == INJECTION
    assert as_json(ms["metric-1"]["labels"]) == {"l": "\ufffd"}
    assert as_json(ms["metric-3"]["buckets"]) == {"+Inf": "Infinity", "nan": "NaN"}

    [rr] = rows(engine, "SELECT key, report FROM alamos_reports")
    assert rr["key"] == INJECTION
    assert as_json(rr["report"]) == {"x": "NaN", "y": ["\ufffd\ufffd"], "z": "<class 'object'>"}
    assert rows(engine, "SELECT path FROM alamos_experiments") == [{"path": INJECTION}]
    assert all_counts(engine) == {
        "alamos_experiments": 1,
        "alamos_spans": 2,
        "alamos_logs": 3,
        "alamos_metrics": 4,
        "alamos_reports": 1,
        "alamos_span_stats": 0,
        "alamos_span_stats_1h": 0,
        "alamos_log_stats": 0,
    }
    if pg:  # JSONB can be queried
        assert rows(
            engine,
            "SELECT attributes->>'emoji' AS e FROM alamos_spans WHERE span_id = :i",
            i=f"{1:016x}",
        ) == [{"e": "🚀 ünïcödé"}]


def test_wrongly_typed_fields_are_coerced(exporter: SQLExporter) -> None:
    # Records are not validated: make sure odd values neither break the batch
    # nor get stored as something misleading.
    odd = span(1, name=None, status=42, start_ns=T0, end_ns=2**80, level="debug")
    exporter.export([odd, metric(1, value="1.5", sum="nope", count=3)])
    [r] = rows(exporter.engine, "SELECT name, status, end_ns, level FROM alamos_spans")
    assert r == {"name": "", "status": "42", "end_ns": 2**63 - 1, "level": "debug"}
    [m] = rows(exporter.engine, "SELECT value, sum, count FROM alamos_metrics")
    assert m == {"value": 1.5, "sum": None, "count": 3.0}


# -- failures and recovery ---------------------------------------------------------


@pytest.mark.postgres
def test_postgresql_outage_raises_then_recovers(pg_server: Any, pg_url: str) -> None:
    if not pg_server.controllable:
        pytest.skip("ALAMOS_TEST_PG_URL's server cannot be stopped by the tests")
    exp = SQLExporter(pg_url)
    exp.export([span(1), log(1)])
    pg_server.stop()
    try:
        with pytest.raises(Exception, match=r"(?i)connect|terminat|closed|refused"):
            exp.export([span(2), log(2)])
        with pytest.raises(Exception, match=r"(?i)connect|refused"):
            exp.export([span(2), log(2)])  # still down: raises again, quickly
    finally:
        pg_server.start()
    exp.export([span(2), log(2)])  # the failed batch, retried
    exp.export([span(1), span(2), log(1)])  # and a replay
    engine = exp.engine
    assert count(engine, "alamos_spans") == 2
    assert count(engine, "alamos_logs") == 2
    exp.close()


@pytest.mark.postgres
def test_postgresql_connection_killed_between_exports(pg_url: str) -> None:
    exp = SQLExporter(pg_url)
    exp.export([span(1)])
    with exp.engine.connect() as conn:  # kill the pooled connections
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    exp.export([span(2)])  # pre-ping or dispose-on-error reconnects
    assert count(exp.engine, "alamos_spans") == 2
    exp.close()


def test_sqlite_folder_replaced_raises_then_recovers(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    url = f"sqlite:///{folder / 'alamos.db'}"
    exp = SQLExporter(url)
    exp.export([span(1)])
    # The database's folder is moved away and a plain file put in its place:
    # no database can be opened there.
    moved = tmp_path / "moved"
    folder.rename(moved)
    folder.write_text("not a folder")
    with pytest.raises(OSError):
        exp.export([span(2)])
    with pytest.raises(OSError):  # still broken: raises again
        exp.export([span(2)])
    folder.unlink()
    moved.rename(folder)
    exp.export([span(2)])
    exp.export([span(1), span(2)])
    assert count(exp.engine, "alamos_spans") == 2
    exp.close()


def test_sqlite_file_replaced_by_a_directory_raises_then_recovers(tmp_path: Path) -> None:
    db = tmp_path / "alamos.db"
    exp = SQLExporter(f"sqlite:///{db}")
    exp.export([span(1)])
    for p in tmp_path.glob("alamos.db*"):
        p.rename(tmp_path / f"saved-{p.name}")
    db.mkdir()
    with pytest.raises(Exception, match="unable to open database file"):
        exp.export([span(2)])
    db.rmdir()
    for p in tmp_path.glob("saved-*"):
        p.rename(tmp_path / p.name.removeprefix("saved-"))
    exp.export([span(2)])
    exp.export([span(1), span(2)])
    assert count(exp.engine, "alamos_spans") == 2
    exp.close()


def test_sqlite_file_deleted_is_recreated(tmp_path: Path) -> None:
    # An open connection would go on writing to the deleted file: the exporter
    # notices and starts a new database at the same path instead.
    db = tmp_path / "alamos.db"
    exp = SQLExporter(f"sqlite:///{db}")
    exp.export([span(1)])
    for p in tmp_path.glob("alamos.db*"):
        p.unlink()
    exp.export([span(2)])
    assert db.exists()
    engine = read_engine(f"sqlite:///{db}")
    assert rows(engine, "SELECT span_id FROM alamos_spans") == [{"span_id": f"{2:016x}"}]
    engine.dispose()
    exp.close()


def test_sqlite_locked_database_raises_then_recovers(sqlite_url: str) -> None:
    exp = SQLExporter(sqlite_url)
    exp.sqlite_busy_timeout_ms = 200
    exp.export([span(1)])
    exp.close()
    exp = SQLExporter(sqlite_url)
    exp.sqlite_busy_timeout_ms = 200
    path = normalize_url(sqlite_url).database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        with pytest.raises(Exception, match="database is locked"):
            exp.export([span(2)])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    exp.export([span(2)])
    assert count(exp.engine, "alamos_spans") == 2
    exp.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files anyway")
def test_sqlite_read_only_file_raises_then_recovers(tmp_path: Path) -> None:
    db = tmp_path / "alamos.db"
    exp = SQLExporter(f"sqlite:///{db}")
    exp.export([span(1)])
    exp.close()
    exp = SQLExporter(f"sqlite:///{db}")
    for p in tmp_path.iterdir():
        p.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(Exception, match=r"(?i)readonly|read-only|unable to open"):
            exp.export([span(2)])
    finally:
        tmp_path.chmod(0o755)
        for p in tmp_path.iterdir():
            p.chmod(0o644)
    exp.export([span(2)])
    assert count(exp.engine, "alamos_spans") == 2
    exp.close()


def test_export_in_a_forked_child(exporter: SQLExporter) -> None:
    exporter.export([span(1)])  # the parent has pooled connections
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            exporter.export([span(2)])
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    exporter.export([span(3)])  # the parent's connections still work
    assert count(exporter.engine, "alamos_spans") == 3


def test_concurrent_exporters_share_a_sqlite_file(sqlite_url: str) -> None:
    errors: list[BaseException] = []

    def work(k: int) -> None:
        exp = SQLExporter(sqlite_url)
        try:
            for b in range(10):
                exp.export([span(k * 1000 + b * 10 + i) for i in range(10)])
        except BaseException as exc:
            errors.append(exc)
        finally:
            exp.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    engine = read_engine(sqlite_url)
    assert count(engine, "alamos_spans") == 400
    assert count(engine, "alamos_schema_version") == 1
    engine.dispose()
