"""How long garbage collection stalls a concurrent exporter, and the space it returns.

    .venv/bin/python scripts/retention_bench.py                  # SQLite and PostgreSQL, 1M spans
    .venv/bin/python scripts/retention_bench.py --backend sqlite --spans 200000

Not part of the test suite (it takes minutes).  The database is filled
directly (``executemany`` on SQLite, ``COPY`` on PostgreSQL) with traces of
10 spans (a root in ``api``, children in ``api`` and ``storage``) and one log
each, over 20 handlers: 90 % of the traces 8 to 30 days old, 10 % younger
than a day, 1 % with an error.  The SQLite file is made as the exporter makes
a new one (WAL, incremental auto-vacuum).

Then an exporter in **another process** (a real :class:`SQLExporter`, so the
GIL of the gc process plays no part) stores a batch of 512 new spans every
20 ms, timing each ``export`` call, while this process runs ``gc`` with the
default batch size (policy: 7 d, keep the last 10 and the 5 slowest per
handler, errors 30 d).  Reported: the longest and the 99th-percentile export
call before and during gc (the stall gc causes is the difference), gc's time
and what it deleted, and the file size before gc, after gc (incremental
vacuum) and after a full ``VACUUM`` (``alamos gc --vacuum``; the exporter's
longest call during that VACUUM is reported too: it locks the file).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

D = 86_400 * 10**9
COLUMNS = [
    "span_id", "trace_id", "parent_span_id", "path", "name", "level", "start_ns", "end_ns",
    "duration_ns", "status", "error", "attributes", "events", "service", "node", "session_id",
    "location",
]  # fmt: skip
LOG_COLUMNS = [
    "id", "ts_ns", "path", "level", "message", "trace_id", "span_id", "attributes", "location",
    "service", "node", "session_id",
]  # fmt: skip

EXPORTER = textwrap.dedent(
    """
    import json, os, sys, time, random
    from alamos.core.level import Level
    from alamos.core.records import SpanRecord
    from alamos.report.sql import SQLExporter
    url, stop, out = sys.argv[1], sys.argv[2], sys.argv[3]
    exp = SQLExporter(url)
    rnd = random.Random(7)
    calls = []
    n = 0
    while not os.path.exists(stop):
        now = time.time_ns()
        batch = []
        for i in range(256):
            tid = f"{rnd.getrandbits(128):032x}"
            batch.append(SpanRecord(tid, "0000000000000001", None, "live", "GET /live",
                Level.PROD, now - 1000, now, "ok", None, {}, (), "live", "live-1"))
            batch.append(SpanRecord(tid, "0000000000000002", "0000000000000001", "live", "db",
                Level.PROD, now - 900, now - 100, "ok", None, {}, (), "live", "live-1"))
        t0 = time.monotonic()
        exp.export(batch)
        t1 = time.monotonic()
        calls.append((t0, t1 - t0))
        n += len(batch)
        time.sleep(max(0.0, 0.02 - (t1 - t0)))
    exp.close()
    json.dump({"calls": calls, "spans": n}, open(out, "w"))
    """
)


def _traces(
    n_spans: int, now: int
) -> Iterator[tuple[list[tuple[object, ...]], tuple[object, ...]]]:
    rnd = random.Random(12)
    for t in range(n_spans // 10):
        trace = f"{t + 1:032x}"
        young = t % 10 == 0
        end = now - (rnd.randint(0, D - 1) if young else rnd.randint(8 * D, 30 * D))
        handler = f"GET /h{t % 20}"
        error = t % 100 == 7
        spans = []
        for k in range(10):
            dur = rnd.randint(10_000, 5_000_000)
            parent = None if k == 0 else f"{1:016x}"
            service = "storage" if k >= 6 else "api"
            status = "error" if error and k == 0 else "ok"
            spans.append(
                (
                    f"{k + 1:016x}", trace, parent, service, handler if k == 0 else f"step{k}",
                    "prod", end - dur, end, dur, status, None, None, None, service,
                    f"{service}-1", None, None,
                )
            )  # fmt: skip
        log = (
            f"{t + 1:032x}", end, "api", "INFO", "handled", trace, f"{1:016x}", None, None, "api",
            "api-1", None,
        )  # fmt: skip
        yield spans, log


def fill_sqlite(path: Path, n_spans: int, now: int) -> None:
    import sqlite3

    from sqlalchemy import create_engine

    from alamos.report.sql.migrate import ensure_schema

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # as the exporter makes a new file
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    engine = create_engine(f"sqlite:///{path}")
    ensure_schema(engine)
    engine.dispose()
    conn = sqlite3.connect(path)
    span_sql = f"INSERT INTO alamos_spans ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * 17)})"
    log_sql = f"INSERT INTO alamos_logs ({', '.join(LOG_COLUMNS)}) VALUES ({', '.join('?' * 12)})"
    with conn:
        spans: list[tuple[object, ...]] = []
        logs: list[tuple[object, ...]] = []
        for s, lg in _traces(n_spans, now):
            spans.extend(s)
            logs.append(lg)
            if len(spans) >= 50_000:
                conn.executemany(span_sql, spans)
                conn.executemany(log_sql, logs)
                spans, logs = [], []
        conn.executemany(span_sql, spans)
        conn.executemany(log_sql, logs)
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def fill_postgresql(url: str, n_spans: int, now: int) -> None:
    import psycopg
    from sqlalchemy import create_engine, make_url

    from alamos.report.sql import normalize_url
    from alamos.report.sql.migrate import ensure_schema

    engine = create_engine(normalize_url(url))
    ensure_schema(engine)
    engine.dispose()
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            logs = []
            with cur.copy(f"COPY alamos_spans ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for spans, lg in _traces(n_spans, now):
                    for row in spans:
                        copy.write_row(row)
                    logs.append(lg)
            with cur.copy(f"COPY alamos_logs ({', '.join(LOG_COLUMNS)}) FROM STDIN") as copy:
                for row in logs:
                    copy.write_row(row)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def _stats(calls: list[tuple[float, float]]) -> str:
    if not calls:
        return "no export call"
    lat = sorted(d for _, d in calls)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return f"{len(lat)} calls, max {lat[-1] * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms"


def measure(backend: str, url: str, path: Path | None, tmp: Path) -> dict[str, object]:
    from alamos.retention import Policy, gc

    policy = Policy(ttl="7d", keep_last=10, keep_errors="30d", keep_slowest=5)
    stop = tmp / f"stop-{backend}"
    out = tmp / f"calls-{backend}.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", EXPORTER, url, str(stop), str(out)], env=env)
    try:
        time.sleep(5)  # the exporter's own pace first (and its schema check)
        size0 = _size(path) if path else None
        t0 = time.monotonic()
        summary = gc(url, policy)
        t1 = time.monotonic()
        time.sleep(2)
        size1 = _size(path) if path else None
        t2 = time.monotonic()
        full = gc(url, policy, vacuum=True) if path else None
        t3 = time.monotonic()
        time.sleep(1)
    finally:
        stop.touch()
        proc.wait(60)
    calls = json.loads(out.read_text())["calls"]
    before = [c for c in calls if c[0] + c[1] < t0]
    during = [c for c in calls if c[0] < t1 and c[0] + c[1] > t0]
    vac = [c for c in calls if c[0] < t3 and c[0] + c[1] > t2]
    print(f"{backend}: gc took {t1 - t0:.1f} s in {summary.batches} batches", flush=True)
    print(f"  deleted: {summary.deleted:,} traces, rows {dict(summary.rows)}")
    print(f"  kept: {summary.kept:,} traces {dict(summary.traces)}")
    print(f"  exporter before gc: {_stats(before)}")
    print(f"  exporter during gc: {_stats(during)}")
    if path is not None and full is not None:
        mib = 2**20
        print(
            f"  file: {size0 / mib:,.1f} MiB before gc (with the exporter's new rows), "  # type: ignore[operator]
            f"{size1 / mib:,.1f} MiB after gc ({summary.space.method if summary.space else '-'}), "  # type: ignore[operator]
            f"{_size(path) / mib:,.1f} MiB after a full VACUUM ({t3 - t2:.1f} s)"
        )
        print(f"  exporter during the full VACUUM: {_stats(vac)}")
    else:
        sp = summary.space
        if sp is not None:
            print(f"  database: {sp.before / 2**20:,.1f} MiB before, {sp.after / 2**20:,.1f} after")
    return {"before": before, "during": during}


def space(path: Path, n_spans: int, now: int) -> None:
    """The file size alone: gc with no exporter running, then a full VACUUM."""
    from alamos.retention import Policy, gc

    fill_sqlite(path, n_spans, now)
    mib = 2**20
    size0 = _size(path)
    policy = Policy(ttl="7d", keep_last=10, keep_errors="30d", keep_slowest=5)
    t0 = time.monotonic()
    summary = gc(f"sqlite:///{path}", policy)
    t1 = time.monotonic()
    size1 = _size(path)
    gc(f"sqlite:///{path}", policy, vacuum=True)
    t2 = time.monotonic()
    print(
        f"sqlite, no exporter: {size0 / mib:,.1f} MiB before, {size1 / mib:,.1f} MiB after gc "
        f"({summary.deleted:,} traces, {summary.rows['spans']:,} spans deleted in {t1 - t0:.1f} s; "
        f"{summary.space.method if summary.space else '-'}), {_size(path) / mib:,.1f} MiB after "
        f"a full VACUUM ({t2 - t1:.1f} s)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--space", action="store_true", help="only the SQLite file size, without an exporter"
    )
    args = parser.parse_args()
    now = time.time_ns()
    print(f"{args.spans:,} spans in traces of 10, one log per trace", flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.space:
            space(tmp / "space.db", args.spans, now)
            return
        if args.backend in ("sqlite", "both"):
            path = tmp / "bench.db"
            t0 = time.perf_counter()
            fill_sqlite(path, args.spans, now)
            print(f"sqlite: filled in {time.perf_counter() - t0:.1f} s", flush=True)
            measure("sqlite", f"sqlite:///{path}", path, tmp)
        if args.backend in ("postgresql", "both"):
            from pg import PgServer

            external = os.environ.get("ALAMOS_BENCH_PG_URL")
            server = PgServer.external(external) if external else PgServer.launch()
            try:
                url = server.create_database("alamos_retention_bench")
                t0 = time.perf_counter()
                fill_postgresql(url, args.spans, now)
                print(f"postgresql: filled in {time.perf_counter() - t0:.1f} s", flush=True)
                measure("postgresql", url, None, tmp)
                server.drop_database(url)
            finally:
                server.close()


if __name__ == "__main__":
    main()
