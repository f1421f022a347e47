"""A constructed history for the retention tests: traces across 3 services,
each with a known fate under :data:`POLICY`.

Every span-trace has a root span in its handler's service (api or auth, node
``<service>-1``) and a child span in ``storage`` (node ``storage-1``), plus
one log written by storage: a kept trace must keep all three, from both
services.  Ages are of the trace's last span end, counted back from ``now``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import attrs
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from alamos.core.level import Level
from alamos.core.records import LogRecord, MetricRecord, Record, ReportRecord, SpanRecord
from alamos.report.sql import SQLExporter
from alamos.retention import Policy

D = 86_400 * 10**9
H = 3_600 * 10**9
MS = 10**6

#: keep the last 2 and the slowest 1 of every handler, errors 30 d, 7 d for
#: everything, debug spans 1 d.
POLICY = Policy(ttl="7d", levels={"debug": "1d"}, keep_last=2, keep_errors="30d", keep_slowest=1)

GET = ("api", "api", "GET /kv")
PUT = ("api", "api", "PUT /kv")
LOGIN = ("auth", "auth", "login")
NO_SPAN = (None, None, None)


@attrs.frozen
class T:
    """One trace of the history."""

    name: str
    handler: tuple[Any, Any, Any]
    age: int
    fate: str
    dur: int = 1 * MS
    error: bool = False
    level: Level = Level.PROD
    child_level: Level = Level.PROD
    logs_only: int = 0  # a trace of logs only: this many logs, no span

    @property
    def trace_id(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()[:32]


TRACES: tuple[T, ...] = (
    # GET /kv: the last 2 are young; t4 is the slowest; t7 is held for good,
    # t8's hold has expired.
    T("t1", GET, 1 * D, "ttl"),
    T("t2", GET, 3 * D, "ttl"),
    T("t3", GET, 10 * D, "delete", dur=5 * MS),
    T("t4", GET, 12 * D, "slowest", dur=50 * MS),
    T("t5", GET, 15 * D, "errors", error=True),
    T("t6", GET, 40 * D, "delete", error=True),
    T("t7", GET, 20 * D, "hold"),
    T("t8", GET, 20 * D, "delete"),
    # PUT /kv: all old; the last 2 and the slowest are kept.
    T("u1", PUT, 8 * D, "last"),
    T("u2", PUT, 9 * D, "last"),
    T("u3", PUT, 10 * D, "slowest", dur=100 * MS),
    T("u4", PUT, 11 * D, "delete"),
    # login: debug traces (debug spans, a DEBUG log) live 1 d; d4 has a prod
    # root and a debug child, so the whole trace lives 7 d.
    T("d1", LOGIN, 12 * H, "ttl", dur=9 * MS, level=Level.DEBUG, child_level=Level.DEBUG),
    T("d2", LOGIN, 2 * D, "last", level=Level.DEBUG, child_level=Level.DEBUG),
    T("d3", LOGIN, 3 * D, "delete", level=Level.DEBUG, child_level=Level.DEBUG),
    T("d4", LOGIN, 4 * D, "ttl", child_level=Level.DEBUG),
    # Logs of a trace whose spans were never stored.
    T("l1", NO_SPAN, 1 * D, "ttl", logs_only=1),
    T("l2", NO_SPAN, 10 * D, "delete", logs_only=2),
)

HOLDS = {"t7": None, "t8": -1 * H}  # name -> until, relative to now (None: no end)


def expected_fates() -> dict[str, int]:
    out = dict.fromkeys(("hold", "ttl", "last", "errors", "slowest", "spike", "delete"), 0)
    for t in TRACES:
        out[t.fate] += 1
    return out


def _sid(t: T, k: int) -> str:
    return hashlib.sha256(f"{t.name}/{k}".encode()).hexdigest()[:16]


def records_of(t: T, now: int) -> list[Record]:
    end = now - t.age
    start = end - t.dur
    service, path, name = t.handler
    out: list[Record] = []
    if t.logs_only:
        for k in range(t.logs_only):
            out.append(_log(f"{t.name}/log{k}", end - k, t.trace_id, None, "storage"))
        return out
    root = _sid(t, 0)
    child = _sid(t, 1)
    out.append(
        SpanRecord(
            t.trace_id, root, None, path, name, t.level, start, end,
            "error" if t.error else "ok", "ValueError: bad" if t.error else None,
            {}, (), service, f"{service}-1",
        )
    )  # fmt: skip
    out.append(
        SpanRecord(
            t.trace_id, child, root, "storage", "read", t.child_level, start + 1, end - 1,
            "ok", None, {}, (), "storage", "storage-1",
        )
    )  # fmt: skip
    level = "DEBUG" if t.child_level is Level.DEBUG and t.level is Level.DEBUG else "INFO"
    out.append(_log(f"{t.name}/log", end - 2, t.trace_id, child, "storage", level))
    return out


def _log(
    key: str,
    ts: int,
    trace_id: str | None,
    span_id: str | None,
    service: str,
    level: str = "INFO",
) -> LogRecord:
    return LogRecord(
        hashlib.sha256(key.encode()).hexdigest()[:32], ts, service, level, key, trace_id,
        span_id, {}, None, service, f"{service}-1",
    )  # fmt: skip


def untraced(now: int) -> list[Record]:
    """Logs outside traces, metric samples and reports: 2, 3 and 1 of them
    older than 7 d (deleted), 1, 2 and 1 younger."""
    out: list[Record] = []
    for k, age in enumerate((10 * D, 8 * D, 1 * D)):
        out.append(_log(f"free/{k}", now - age, None, None, "api"))
    for k, age in enumerate((10 * D, 9 * D, 8 * D, 2 * D, 1 * H)):
        out.append(
            MetricRecord(
                f"m{k:031d}", now - age, "api", "requests", "counter", {}, float(k),
                None, None, None, "api", "api-1",
            )
        )  # fmt: skip
    for k, age in enumerate((30 * D, 1 * D)):
        out.append(ReportRecord(f"r{k:031d}", now - age, "api", "report", {"k": k}, "api", "api-1"))
    return out


def write_history(url: str, now: int) -> None:
    """Store the history (through the real exporter) and its holds."""
    records: list[Record] = []
    for t in TRACES:
        records.extend(records_of(t, now))
    records.extend(untraced(now))
    exporter = SQLExporter(url)
    try:
        exporter.export(records)
    finally:
        exporter.close()
    from alamos.retention import hold

    by_name = {t.name: t for t in TRACES}
    for name, until in HOLDS.items():
        hold(
            url,
            by_name[name].trace_id,
            reason=f"keep {name}",
            until_ns=None if until is None else now + until,
            now_ns=now - 2 * H,
        )


def snapshot(url: str, tables: Sequence[str] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every alamos table (sorted), to compare a database before
    and after."""
    engine = create_engine(url, poolclass=NullPool)
    out: dict[str, list[tuple[Any, ...]]] = {}
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                names = conn.execute(
                    text("SELECT name FROM sqlite_master WHERE name LIKE 'alamos%' ORDER BY name")
                ).scalars()
            else:
                names = conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                        "AND tablename LIKE 'alamos%' ORDER BY tablename"
                    )
                ).scalars()
            for name in tables if tables else list(names):
                if name.startswith("ix_") or name.startswith("sqlite_"):
                    continue
                rows = conn.execute(text(f'SELECT * FROM "{name}"')).all()
                out[name] = sorted(tuple(str(v) for v in r) for r in rows)
    finally:
        engine.dispose()
    return out


def trace_ids(url: str, table: str = "alamos_spans") -> dict[str, int]:
    """trace id -> rows in ``table``."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    f"SELECT trace_id, COUNT(*) FROM {table} "
                    "WHERE trace_id IS NOT NULL GROUP BY trace_id"
                )
            ).all()
    finally:
        engine.dispose()
    return {r[0]: int(r[1]) for r in rows}


def count(url: str, table: str, where: str = "") -> int:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT COUNT(*) FROM {table} {where}")).scalar() or 0)
    finally:
        engine.dispose()
