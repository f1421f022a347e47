"""Reading traces back: tree reconstruction by parent links (clock skew,
orphans, cycles) and the queries, against real SQLite files (and PostgreSQL
for the queries)."""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType

import pytest
from click.testing import CliRunner

from alamos.cli import main
from alamos.core.level import Level
from alamos.core.records import EventRecord, LogRecord, SpanRecord
from alamos.report.query import (
    TraceQueryError,
    build_tree,
    load_trace,
    recent_traces,
    unattached_logs,
)
from alamos.report.sql import SQLExporter

T1 = "11111111111111111111111111111111"
T2 = "22222222222222222222222222222222"
T3 = "33333333333333333333333333333333"
SECOND = 1_000_000_000
BASE = 1_700_000_000 * SECOND


def span(
    span_id: str,
    parent: str | None,
    start: int,
    *,
    trace: str = T1,
    node: str = "n1",
    service: str = "svc",
    name: str | None = None,
    path: str = "app",
    status: str = "unset",
    dur: int = 1_000_000,
) -> SpanRecord:
    return SpanRecord(
        trace_id=trace,
        span_id=span_id,
        parent_id=parent,
        path=path,
        name=name or f"op-{span_id[-2:]}",
        level=Level.PROD,
        start_ns=BASE + start,
        end_ns=BASE + start + dur,
        status=status,
        error_text="Boom: x" if status == "error" else None,
        attributes=MappingProxyType({"k": 1}),
        events=(EventRecord("e", BASE + start, MappingProxyType({"a": "b"})),),
        service=service,
        node=node,
    )


def log(log_id: str, span_id: str | None, ts: int, message: str, trace: str = T1) -> LogRecord:
    return LogRecord(
        id=log_id,
        ts_ns=BASE + ts,
        path="app",
        level="INFO",
        message=message,
        trace_id=trace,
        span_id=span_id,
        attributes=MappingProxyType({}),
        location="x.py:1",
        service="svc",
        node="n1",
    )


def sid(n: int) -> str:
    return f"{n:016x}"


# A trace over three nodes whose clocks disagree: every child "starts" before
# its parent, the grandchild before everyone.
SKEWED = [
    span(sid(1), None, 1_000_000, node="api-node", service="api", name="GET /write"),
    span(sid(2), sid(1), 400_000, node="cesium-node", service="cesium", name="write"),
    span(sid(3), sid(2), 100, node="storage-node", service="storage", name="fsync"),
    span(sid(4), sid(1), 300_000, node="cesium-node", service="cesium", name="index"),
    span(sid(5), sid(4), 200, node="storage-node", service="storage", name="seek"),
]
SKEWED_LOGS = [
    log("l1", sid(3), 50_100, "synced"),
    log("l2", sid(1), 1_050_000, "accepted"),
    log("l3", None, 5, "no span"),
]


def export(url: str, records: list[SpanRecord] | list[LogRecord] | list[object]) -> None:
    exporter = SQLExporter(url)
    try:
        exporter.export(records)  # type: ignore[arg-type]
    finally:
        exporter.close()


def outline(roots: list) -> list[tuple[int, str, bool]]:  # type: ignore[type-arg]
    return [(d, n.span.name, n.orphan) for r in roots for d, n in r.walk()]


def test_clock_skew_tree_follows_parent_links(sqlite_url: str) -> None:
    export(sqlite_url, [*reversed(SKEWED), *SKEWED_LOGS])
    spans, logs = load_trace(sqlite_url, T1)
    assert [s.name for s in spans] == ["fsync", "seek", "index", "write", "GET /write"]  # by time
    roots = build_tree(spans, logs)
    assert outline(roots) == [
        (0, "GET /write", False),
        (1, "index", False),  # siblings in start order...
        (2, "seek", False),  # ...but each under its own parent
        (1, "write", False),
        (2, "fsync", False),
    ]
    nodes = {n.span.name: n for _, n in roots[0].walk()}
    assert [lg.message for lg in nodes["fsync"].logs] == ["synced"]
    assert [lg.message for lg in nodes["GET /write"].logs] == ["accepted"]
    assert [lg.message for lg in unattached_logs(spans, logs)] == ["no span"]
    # The records read back are complete.
    fsync = nodes["fsync"].span
    assert (fsync.service, fsync.node, fsync.level) == ("storage", "storage-node", Level.PROD)
    assert dict(fsync.attributes) == {"k": 1}
    assert fsync.events[0].name == "e" and dict(fsync.events[0].attributes) == {"a": "b"}


def test_clock_skew_cli_output_is_in_tree_order(sqlite_url: str) -> None:
    export(sqlite_url, [*reversed(SKEWED), *SKEWED_LOGS])
    result = CliRunner().invoke(main, ["trace", T1, "--db", sqlite_url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"trace {T1}  spans=5  logs=3  services=api,cesium,storage")
    body = [line.split("  [")[0] for line in lines[1:-1]]
    # Each span's attributes (@ lines, since issue 14) under it, then its logs.
    assert body == [
        "GET /write",
        "  @ k=1",
        "  | INFO      +0.050 ms  accepted",
        "  index",
        "    @ k=1",
        "    seek",
        "      @ k=1",
        "  write",
        "    @ k=1",
        "    fsync",
        "      @ k=1",
        "      | INFO      +0.050 ms  synced",
        "logs of no span in this trace:",
    ]
    assert re.fullmatch(r"  \| INFO      \d{4}-\d\d-\d\dT[0-9:.]+Z  no span", lines[-1])
    assert "[storage@storage-node]" in lines[10]


def test_orphans_and_cycles_are_shown_once(sqlite_url: str) -> None:
    records = [
        span(sid(1), None, 0, name="root"),
        span(sid(2), sid(99), 10, name="orphan", node="other"),  # parent never exported
        span(sid(3), sid(2), 5, name="under-orphan", node="other"),
        span(sid(4), sid(5), 20, name="cycle-a"),
        span(sid(5), sid(4), 30, name="cycle-b"),
        span(sid(6), sid(6), 40, name="self-parent"),
    ]
    export(sqlite_url, records)
    spans, _ = load_trace(sqlite_url, T1)
    roots = build_tree(spans)
    assert outline(roots) == [
        (0, "root", False),
        (0, "orphan", True),
        (1, "under-orphan", False),
        (0, "self-parent", True),
        (0, "cycle-a", True),
        (1, "cycle-b", False),
    ]
    result = CliRunner().invoke(main, ["trace", T1, "--db", sqlite_url])
    assert result.exit_code == 0
    assert f"(orphan: parent {sid(99)} not in trace)" in result.output
    assert result.output.count("span=") == 6


def test_deep_trace_does_not_recurse() -> None:
    chain = [span(sid(1), None, 0)] + [span(sid(i), sid(i - 1), -i) for i in range(2, 5001)]
    (root,) = build_tree(chain)
    depths = [d for d, _ in root.walk()]
    assert depths == list(range(5000))


def test_recent_traces_filters(sqlite_url: str) -> None:
    export(
        sqlite_url,
        [
            *SKEWED,
            span(sid(10), None, 10 * SECOND, trace=T2, path="api", name="GET /a"),
            span(sid(11), sid(10), 10 * SECOND, trace=T2, path="api.db", status="error"),
            span(sid(20), sid(77), 20 * SECOND, trace=T3, path="api_x", name="late"),
        ],
    )
    everything = recent_traces(sqlite_url)
    assert [t.trace_id for t in everything] == [T3, T2, T1]  # newest first
    t3, t2, t1 = everything
    assert (t2.status, t2.error_count, t2.span_count) == ("error", 1, 2)
    assert t2.root is not None and t2.root.name == "GET /a" and t2.complete
    assert t3.root is not None and t3.root.name == "late" and not t3.complete
    assert t1.services == ("api", "cesium", "storage") and t1.span_count == 5
    assert t1.duration_ns == 1_000_000  # the root's own duration
    assert [t.trace_id for t in recent_traces(sqlite_url, errors_only=True)] == [T2]
    # A subtree: "api" and "api.db", not "api_x" (LIKE wildcards are escaped).
    assert [t.trace_id for t in recent_traces(sqlite_url, path="api")] == [T2]
    assert [t.trace_id for t in recent_traces(sqlite_url, path="api_x")] == [T3]
    assert [t.trace_id for t in recent_traces(sqlite_url, path="a%")] == []
    assert [t.trace_id for t in recent_traces(sqlite_url, since_ns=BASE + 15 * SECOND)] == [T3]
    assert [t.trace_id for t in recent_traces(sqlite_url, limit=1)] == [T3]
    with pytest.raises(ValueError, match="limit"):
        recent_traces(sqlite_url, limit=0)


@pytest.mark.postgres
def test_queries_on_postgresql(pg_url: str) -> None:
    export(pg_url, [*SKEWED, *SKEWED_LOGS, span(sid(10), None, SECOND, trace=T2, status="error")])
    spans, logs = load_trace(pg_url, T1)
    assert outline(build_tree(spans, logs))[0] == (0, "GET /write", False)
    assert len(logs) == 3
    assert [t.trace_id for t in recent_traces(pg_url)] == [T2, T1]
    assert [t.trace_id for t in recent_traces(pg_url, errors_only=True)] == [T2]
    assert load_trace(pg_url, T3) == ([], [])


def test_load_trace_errors(tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="32 lower-case hex"):
        load_trace(sqlite_url, "XYZ")
    with pytest.raises(TraceQueryError, match="no SQLite database"):
        load_trace(f"sqlite:///{tmp_path / 'missing.db'}", T1)
    assert not (tmp_path / "missing.db").exists()  # not created by reading
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(TraceQueryError, match="cannot read"):
        load_trace(f"sqlite:///{tmp_path / 'junk.db'}", T1)
    empty = tmp_path / "empty.db"
    import sqlite3

    sqlite3.connect(empty).close()
    with pytest.raises(TraceQueryError, match="no alamos tables"):
        load_trace(f"sqlite:///{empty}", T1)
    with pytest.raises(TraceQueryError, match="not supported"):
        load_trace("mysql://x/y", T1)
    with pytest.raises(TraceQueryError, match="cannot read"):
        load_trace("postgresql://user:hunter2@127.0.0.1:1/db", T1)
    try:
        load_trace("postgresql://user:hunter2@127.0.0.1:1/db", T1)
    except TraceQueryError as exc:
        assert "hunter2" not in str(exc)


def test_corrupt_json_does_not_hide_the_trace(sqlite_url: str) -> None:
    import sqlite3

    export(sqlite_url, SKEWED)
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE alamos_spans SET attributes = '{oops', events = '[1, {\"a\"'")
    spans, _ = load_trace(sqlite_url, T1)
    assert len(spans) == 5
    assert all(dict(s.attributes) == {} and s.events == () for s in spans)
