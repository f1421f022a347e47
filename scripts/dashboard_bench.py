"""How long each dashboard page takes on a big SQLite database (issue 13).

    python scripts/dashboard_bench.py [--db /tmp/alamos-dash-bench.db] [--spans 1000000]
                                      [--logs 1000000] [--rounds 5] [--json out.json]
                                      [--backend sqlite|postgresql] [--url postgresql://...]

Builds (once; kept for the next run) a database of ``--spans`` spans and
``--logs`` logs spread over the 24 hours before now: 12 layers in 3
services, traces of 5 spans (api -> cesium -> storage -> wal, and a cache
lookup), 1% of the requests in error, 0.1% in a debug session, metric
snapshots every 10 s, and the statistics a real tree would have written
for those spans and logs (``alamos_span_stats``, its hourly tier
``alamos_span_stats_1h`` and the log counts ``alamos_log_stats``: the spans,
in start order, and the logs, in time order, interleaved by time, are run
through the tree's own observer, :class:`alamos.stats.live.LiveStats`, one
per service, in batches of 512, each window and hour emitted once it has
ended, the last hour at close).  The tables and indexes are alamos' own (``ensure_schema``).
Then it requests each page through the real app
(Starlette's test client: queries *and* rendering) ``--rounds`` times and
prints the first (the app's cache of summed statistics sketches is empty
then), the median and the worst, in ms.  The issue's target: under 500 ms
per page.  The tree and layer pages are measured at 15 min, 1 h, 24 h and
7 d (the database holds one day: 7 d reads that day through the statistics).

``--backend postgresql`` measures the same pages on PostgreSQL: a throwaway
cluster is started as the tests start theirs (``tests/pg.py``), or the empty
database of ``--url`` is used, and every alamos table of the SQLite file is
copied into it (``COPY``: the spans, logs, metrics *and* statistics rows, so
both backends answer from the same data), then ``VACUUM ANALYZE``.  The
SQLite file is built first if it is not there.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine

from alamos.report.sql.migrate import ensure_schema

LAYERS = [
    ("bench", "api"),
    ("bench.api", "api"),
    ("bench.api.auth", "api"),
    ("bench.api.router", "api"),
    ("bench.cesium", "cesium"),
    ("bench.cesium.cache", "cesium"),
    ("bench.cesium.index", "cesium"),
    ("bench.cesium.compact", "cesium"),
    ("bench.storage", "storage"),
    ("bench.storage.wal", "storage"),
    ("bench.storage.pages", "storage"),
    ("bench.storage.gc", "storage"),
]
# The spans of one trace: (name, path, parent index, offset us, duration us)
TRACE = [
    ("GET /kv", "bench.api", None, 0, 900),
    ("read", "bench.cesium", 0, 50, 800),
    ("cache.get", "bench.cesium.cache", 1, 60, 40),
    ("read_page", "bench.storage", 1, 120, 700),
    ("fsync", "bench.storage.wal", 3, 150, 600),
]
LOG_LEVELS = ["DEBUG"] * 5 + ["INFO"] * 4 + ["WARNING", "ERROR"]
DAY_NS = 86_400 * 10**9


def build(path: Path, n_spans: int, n_logs: int, stats: bool = True) -> int:
    """Write the database; return the ``now`` its times end at."""
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)  # an interrupted build leaves its WAL behind
    engine = create_engine(f"sqlite:///{path}")
    ensure_schema(engine)
    engine.dispose()
    rnd = random.Random(13)
    now = time.time_ns()
    start = now - DAY_NS
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.executemany(
        "INSERT INTO alamos_experiments VALUES (?, ?, ?, ?, ?, ?)",
        [
            (p, p.rsplit(".", 1)[0] if "." in p else None, p.rsplit(".", 1)[-1], s, "node-1", start)
            for p, s in LAYERS
        ],
    )
    service = dict(LAYERS)
    traces = n_spans // len(TRACE)
    step = DAY_NS // traces
    rows: list[tuple[Any, ...]] = []
    roots: list[tuple[str, str]] = []
    for t in range(traces):
        tid = f"{rnd.getrandbits(128):032x}"
        t0 = start + t * step + rnd.randrange(step)
        scale = rnd.lognormvariate(0, 0.6)
        failed = rnd.random() < 0.01
        session = f"5e5510{t // 1000:010x}" if rnd.random() < 0.001 else None
        ids = [f"{rnd.getrandbits(64):016x}" for _ in TRACE]
        roots.append((tid, ids[0]))
        for i, (name, p, parent, off, dur) in enumerate(TRACE):
            s = t0 + int(off * 1000 * scale)
            e = s + int(dur * 1000 * scale)
            bad = failed and i == len(TRACE) - 1
            rows.append(
                (
                    ids[i],
                    tid,
                    None if parent is None else ids[parent],
                    p,
                    name,
                    "debug" if i == 2 else "prod",
                    s,
                    e,
                    e - s,
                    "error" if bad else "ok",
                    "OSError: disk" if bad else None,
                    json.dumps({"key": f"k{t % 1000}"}),
                    "[]",
                    service[p],
                    "node-1",
                    session,
                    None,
                )
            )
        if len(rows) >= 100_000:
            conn.executemany(f"INSERT INTO alamos_spans VALUES ({','.join('?' * 17)})", rows)
            rows.clear()
    if rows:
        conn.executemany(f"INSERT INTO alamos_spans VALUES ({','.join('?' * 17)})", rows)
    step = DAY_NS // max(n_logs, 1)
    logs: list[tuple[Any, ...]] = []
    for i in range(n_logs):
        p, s = LAYERS[rnd.randrange(len(LAYERS))]
        logs.append(
            (
                f"l{i:09d}",
                start + i * step,
                p,
                rnd.choice(LOG_LEVELS),
                f"message {i} of {p}",
                None,
                None,
                "{}",
                None,
                s,
                "node-1",
                None,
            )
        )
        if len(logs) >= 100_000:
            conn.executemany(f"INSERT INTO alamos_logs VALUES ({','.join('?' * 12)})", logs)
            logs.clear()
    if logs:
        conn.executemany(f"INSERT INTO alamos_logs VALUES ({','.join('?' * 12)})", logs)
    metrics = []
    for k in range(0, DAY_NS, 10 * 10**9):
        metrics.append(
            (
                f"m{k}",
                start + k,
                "bench.api",
                "requests",
                "counter",
                "{}",
                k / 1e8,
                None,
                None,
                None,
                "api",
                "node-1",
                "prod",
            )
        )
    conn.executemany(f"INSERT INTO alamos_metrics VALUES ({','.join('?' * 13)})", metrics)
    conn.commit()
    conn.close()
    if stats:
        write_stats(path)
    conn = sqlite3.connect(path)
    conn.execute("ANALYZE")
    conn.close()
    path.with_suffix(".now").write_text(str(now))
    return now


def write_stats(path: Path, batch: int = 512) -> int:
    """The statistics rows the trees would have written for the stored spans
    and logs (see the module docstring); prints how many of each table and
    returns how many in all."""
    import heapq
    from collections import Counter

    from alamos.core.level import parse_level
    from alamos.core.records import LogRecord, Record, SpanRecord
    from alamos.report.sql import SQLExporter
    from alamos.stats.live import DEFAULT_INTERVAL, LiveStats, StatsRow

    window = int(DEFAULT_INTERVAL * 1e9)
    live: dict[str, LiveStats] = {}
    out: list[StatsRow] = []
    written: Counter[str] = Counter()
    exporter = SQLExporter(f"sqlite:///{path}")
    conn = sqlite3.connect(path)

    def spans() -> Any:
        cur = conn.execute(
            "SELECT trace_id, span_id, parent_span_id, path, name, level, start_ns, end_ns, "
            "status, service FROM alamos_spans ORDER BY start_ns"
        )
        while rows := cur.fetchmany(batch):
            for t, s, parent, p, name, level, start, end, status, service in rows:
                yield SpanRecord(
                    t, s, parent, p, name, parse_level(level), start, end, status, None, {}, (),
                    service, "node-1",
                )  # fmt: skip

    def logs() -> Any:
        cur = conn.execute(
            "SELECT id, ts_ns, path, level, service, node FROM alamos_logs ORDER BY ts_ns"
        )
        while rows := cur.fetchmany(batch):
            for i, ts, p, level, service, node in rows:
                yield LogRecord(i, ts, p, level, "", None, None, {}, None, service, node)

    def at(r: Record) -> int:
        return r.start_ns if isinstance(r, SpanRecord) else r.ts_ns  # type: ignore[union-attr]

    def flush_rows() -> None:
        exporter.export(out)
        written.update(type(r).table for r in out)
        out.clear()

    # Spans (by start) and logs (by time) interleaved, as one worker per
    # service would see them, in batches of ``batch``.
    records = heapq.merge(spans(), logs(), key=at)
    while part := list(itertools.islice(records, batch)):
        by_service: dict[str, list[Record]] = {}
        for r in part:
            by_service.setdefault(r.service, []).append(r)  # type: ignore[union-attr]
        now = at(part[-1])
        for service, records_of in by_service.items():
            stats = live.get(service)
            if stats is None:
                stats = live[service] = LiveStats(window, lambda s=service: (s, "node-1"))
            stats.observe(records_of)
            out += stats.emit(now)
        if len(out) >= 5000:
            flush_rows()
    conn.close()
    for stats in live.values():
        out += stats.close()
    flush_rows()
    exporter.close()
    print(", ".join(f"{n:,} rows of {t}" for t, n in sorted(written.items())), flush=True)
    return sum(written.values())


def fill_postgresql(path: Path, url: str) -> None:
    """Copy every alamos table of the SQLite file ``path`` into the empty
    PostgreSQL database of ``url`` (schema by ``ensure_schema``, rows by
    ``COPY``), then ``VACUUM ANALYZE``."""
    import psycopg
    from sqlalchemy import make_url

    from alamos.report.sql import normalize_url
    from alamos.report.sql.schema import metadata, schema_version

    engine = create_engine(normalize_url(url))
    ensure_schema(engine)
    engine.dispose()
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    src = sqlite3.connect(path)
    held = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        for table in metadata.sorted_tables:
            if table is schema_version or table.name not in held:
                continue
            cols = ", ".join(f'"{c.name}"' for c in table.columns)
            rows = src.execute(f'SELECT {cols} FROM "{table.name}"')
            with cur.copy(f'COPY "{table.name}" ({cols}) FROM STDIN') as copy:
                while batch := rows.fetchmany(10_000):
                    for row in batch:
                        copy.write_row(row)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    src.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="/tmp/alamos-dash-bench.db", type=Path)
    ap.add_argument("--spans", default=1_000_000, type=int)
    ap.add_argument("--logs", default=1_000_000, type=int)
    ap.add_argument("--rounds", default=5, type=int)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument(
        "--no-stats",
        action="store_true",
        help="build without alamos_span_stats rows (the pages' fallback to raw spans)",
    )
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--backend",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="postgresql: copy the SQLite file into PostgreSQL and measure there",
    )
    ap.add_argument(
        "--url",
        help="an empty PostgreSQL database for --backend postgresql "
        "(default: a throwaway cluster, as the tests start one)",
    )
    args = ap.parse_args()
    if args.url and args.backend != "postgresql":
        ap.error("--url is for --backend postgresql")
    marker = args.db.with_suffix(".now")
    if args.rebuild or not args.db.exists() or not marker.exists():
        t = time.monotonic()
        build(args.db, args.spans, args.logs, stats=not args.no_stats)
        print(f"built {args.db} in {time.monotonic() - t:.0f} s", flush=True)
    from starlette.testclient import TestClient

    from alamos.dashboard import create_app
    from alamos.rules import Rule, RuleSet

    db = f"sqlite:///{args.db}"
    server = None
    if args.backend == "postgresql":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from pg import PgServer

        if args.url:
            db = args.url
        else:
            server = PgServer.launch()
            db = server.create_database("alamos_dash_bench")
        t = time.monotonic()
        fill_postgresql(args.db, db)
        print(f"copied {args.db} into PostgreSQL in {time.monotonic() - t:.0f} s", flush=True)
    conn = sqlite3.connect(args.db)
    spans, logs = (
        conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("alamos_spans", "alamos_logs")
    )
    tid = conn.execute(
        "SELECT trace_id FROM alamos_spans ORDER BY start_ns DESC LIMIT 1"
    ).fetchone()[0]
    session = conn.execute(
        "SELECT session_id FROM alamos_spans WHERE session_id IS NOT NULL LIMIT 1"
    ).fetchone()[0]
    conn.close()
    print(f"{spans:,} spans, {logs:,} logs")
    pages = [
        ("tree 15m", "/?w=15m"),
        ("tree 1h", "/?w=1h"),
        ("tree 24h", "/?w=24h"),
        ("tree 7d", "/?w=7d"),
        ("tree 1h level=prod", "/?w=1h&level=prod&service=cesium"),
        ("layer 1h", "/layer/bench.api?w=1h"),
        ("layer 24h", "/layer/bench.api?w=24h"),
        ("layer 7d", "/layer/bench.api?w=7d"),
        ("layer 1h logs filtered", "/layer/bench.cesium?w=1h&log_level=WARNING&q=message+1"),
        ("trace", f"/trace/{tid}"),
        ("search 1h", "/search?w=1h"),
        ("search 24h", "/search?w=24h"),
        ("search 24h page 40", "/search?w=24h&page=40"),
        ("search 24h errors >=1ms", "/search?w=24h&status=error&min_ms=1"),
        ("search 24h name", "/search?w=24h&name=fsync&path=bench.storage"),
        ("search 24h attribute", "/search?w=24h&attr=key%3Dk7"),
        ("analysis 1h", "/analysis?w=1h&frame=GET+/kv"),
        ("analysis 1h all frames", "/analysis?w=1h&frame=GET+/kv&frames=all"),
        ("sessions 24h", "/sessions?w=24h"),
        ("session", f"/session/{session}"),
    ]
    results = {}
    # The analysis page's recording rules section reads the series of a rule
    # named like the bench's counter (its snapshots stand in for a rule's).
    app = create_app(db, rules=RuleSet([Rule("requests")]), rules_file="bench")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for name, url in pages:
            times = []
            for _ in range(args.rounds):
                t = time.perf_counter()
                r = client.get(url)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, (url, r.status_code, r.text[:500])
            results[name] = {
                "first_ms": times[0],
                "median_ms": statistics.median(times),
                "max_ms": max(times),
            }
            flag = "" if max(times) < 500 else "  OVER 500 ms"
            # The first request of a page is also the first of its summed
            # sketches (the app keeps them: alamos/dashboard/sketch_cache.py).
            print(
                f"{name:28} first {times[0]:8.1f} ms   median {statistics.median(times):8.1f} ms"
                f"   worst {max(times):8.1f} ms{flag}",
                flush=True,
            )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"backend": args.backend, "spans": spans, "logs": logs, "pages": results},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
