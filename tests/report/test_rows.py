"""The fast paths of the export: row conversion, record construction and the
SQLite multi-row insert give exactly what the plain, field-by-field code
gives, for clean and hostile records alike."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import pytest

import alamos
from alamos.core.ids import hex_id
from alamos.core.level import Level
from alamos.core.records import (
    EventRecord,
    LogRecord,
    SpanContext,
    SpanRecord,
    new_log_record,
    new_span_record,
)
from alamos.report.sql import SQLExporter
from alamos.report.sql import rows as rows_module
from alamos.report.sql.coerce import json_col
from alamos.report.sql.rows import convert
from alamos.report.sql.writers import SQLITE_CHUNK
from alamos.testing import Recorder

T0 = 1_700_000_000_000_000_000


def span(**kw: Any) -> SpanRecord:
    fields: dict[str, Any] = {
        "trace_id": "ab" * 16,
        "span_id": "cd" * 8,
        "parent_id": "ef" * 8,
        "path": "server.api",
        "name": "write",
        "level": Level.PROD,
        "start_ns": T0,
        "end_ns": T0 + 1500,
        "status": "ok",
        "error_text": None,
        "attributes": MappingProxyType({}),
        "events": (),
        "service": "server",
        "node": "host:1",
        "session_id": None,
        "location": "app.py:12",
    }
    fields.update(kw)
    return SpanRecord(**fields)


def log(**kw: Any) -> LogRecord:
    fields: dict[str, Any] = {
        "id": "12" * 16,
        "ts_ns": T0,
        "path": "server.api",
        "level": "INFO",
        "message": "wrote 3 pages",
        "trace_id": "ab" * 16,
        "span_id": "cd" * 8,
        "attributes": MappingProxyType({"pages": 3}),
        "location": "app:write:12",
        "service": "server",
        "node": "host:1",
        "session_id": None,
    }
    fields.update(kw)
    return LogRecord(**fields)


class Unhashable:
    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return "unhashable"


SPANS = [
    span(),
    span(parent_id=None, location=None),
    span(attributes=MappingProxyType({"bytes": 3, "table": "users", "hit": True})),
    span(attributes={"plain": "dict"}),
    span(attributes={}),
    span(attributes=None),
    span(attributes={"nan": math.nan, "inf": -math.inf}),
    span(events=(EventRecord("flushed", T0 + 1, {"pages": 3}),)),
    span(events=None),
    span(name="émoji 🚀"),
    span(name="nul\x00", path="lone \ud800"),
    span(service="svc\x00", node="\udfff"),
    span(error_text="ValueError: bad \ud83d\ude00"),
    span(session_id="s" * 16, status="error"),
    span(name=None, status=42),
    span(trace_id=b"bytes", span_id=12),
    span(start_ns=-5, end_ns=T0),
    span(start_ns=T0, end_ns=2**80),
    span(start_ns=1.5, end_ns="7"),
    span(level="debug"),
    span(level=1),
    span(level=Unhashable()),
    span(name=Unhashable()),
]
LOGS = [
    log(),
    log(attributes=MappingProxyType({})),
    log(attributes={}),
    log(trace_id=None, span_id=None, location=None),
    log(message="x" * 100_000),
    log(message="NUL \x00 and lone \udc80"),
    log(level=None, message=None),
    log(ts_ns=2**64),
    log(ts_ns="soon"),
    log(attributes={"nan": math.nan, "key\x00": 1}),
    log(id=Unhashable()),
]


@pytest.mark.parametrize("record", [*SPANS, *LOGS])
def test_fast_path_gives_the_plain_row(record: Any) -> None:
    (rows,) = convert([record]).values()
    plain = rows_module._CONVERTERS[type(record)][1](record, json_col)
    assert rows == [plain]


def test_batches_keep_order_and_tables() -> None:
    out = convert([SPANS[0], LOGS[0], SPANS[1], LOGS[1]])
    assert set(out) == {"alamos_spans", "alamos_logs"}
    assert [r[1] for r in out["alamos_spans"]] == [SPANS[0].trace_id, SPANS[1].trace_id]
    assert [r[0] for r in out["alamos_logs"]] == [LOGS[0].id, LOGS[1].id]
    with pytest.raises(TypeError, match="cannot store"):
        convert([object()])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("fast", "cls", "record"),
    [(new_span_record, SpanRecord, SPANS[2]), (new_log_record, LogRecord, LOGS[0])],
)
def test_fast_constructors_build_the_same_frozen_record(fast: Any, cls: Any, record: Any) -> None:
    values = attrs.astuple(record, recurse=False)
    built = fast(*values)
    assert type(built) is cls
    assert built == cls(*values) == record
    assert repr(built) == repr(record)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.path = "elsewhere"
    with pytest.raises(TypeError):
        fast(*values[:-1])  # every field is required


def test_ids_out_of_range_are_still_formatted() -> None:
    # An id of more than 128 bits is still formatted in full, never an error.
    assert hex_id(int("f" * 40, 16), 16) == "f" * 40
    assert hex_id(1, 8) == "0" * 15 + "1"


def test_a_remote_trace_id_out_of_range_starts_a_fresh_trace() -> None:
    # Issue 10, defect 2: such an id once made a row the database refused for
    # ever; a remote parent needs exactly 32 hex digits, else a fresh trace (W3C).
    rec = Recorder()
    root = rec.new("server")
    with root.trace.prod("handle", parent=SpanContext("f" * 40, "1" * 16)):
        pass
    root.close()
    (record,) = rec.spans(name="handle")
    assert len(record.trace_id) == 32 and record.trace_id != "f" * 32
    assert record.parent_id is None
    assert len(record.span_id) == 16


@pytest.mark.parametrize("n", [1, 3, SQLITE_CHUNK - 1, SQLITE_CHUNK, SQLITE_CHUNK + 1, 2500])
def test_sqlite_multi_row_insert(tmp_path: Path, n: int) -> None:
    exporter = SQLExporter(f"sqlite:///{tmp_path / 'a.db'}")
    batch = [span(span_id=f"{i:016x}", trace_id=f"{i:032x}") for i in range(n)]
    exporter.export(batch)
    exporter.export(batch[: n // 2 + 1])  # replayed: ignored
    exporter.close()
    with sqlite3.connect(tmp_path / "a.db") as conn:
        stored = [r[0] for r in conn.execute("SELECT span_id FROM alamos_spans ORDER BY span_id")]
    assert stored == [f"{i:016x}" for i in range(n)]


def test_sqlite_insert_respects_a_low_variable_limit(tmp_path: Path) -> None:
    exporter = SQLExporter(f"sqlite:///{tmp_path / 'a.db'}")
    exporter.export([span()])  # connected

    def low_limit(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # old SQLite's default

    from sqlalchemy import event

    exporter.engine.dispose()
    event.listen(exporter.engine, "connect", low_limit)
    batch = [span(span_id=f"{i:016x}") for i in range(1, 700)]
    exporter.export(batch)
    with exporter.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM alamos_spans").scalar() == 700
    exporter.close()


def test_a_span_through_the_public_api_takes_the_fast_path(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with alamos.new("server", db=url, console=False, spool_dir=tmp_path / "spool") as root:
        with root.sub("api").trace.prod("write") as s:
            s.set("bytes", 3)
        assert root.flush(30)
    with sqlite3.connect(tmp_path / "a.db") as conn:
        ((name, attrs_json, events_json),) = conn.execute(
            "SELECT name, attributes, events FROM alamos_spans"
        )
    assert (name, attrs_json, events_json) == ("write", '{"bytes":3}', "[]")
