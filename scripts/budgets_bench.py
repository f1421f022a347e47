"""Time and peak memory of one frame-budgets query on 1,000,000 stored spans.

    .venv/bin/python scripts/budgets_bench.py                 # SQLite and PostgreSQL
    .venv/bin/python scripts/budgets_bench.py --backend sqlite --spans 200000
    .venv/bin/python scripts/budgets_bench.py --shape one-trace --spans 20000

Not part of the test suite (it takes minutes).  The spans are inserted
directly (``executemany`` on SQLite, ``COPY`` on PostgreSQL) into a SQLite
file in a temporary directory and into a fresh database of a throwaway
PostgreSQL cluster (``tests/pg.py``; or the server of ``ALAMOS_BENCH_PG_URL``,
where a database is created and dropped).  Each query runs in a fresh
subprocess, which reports its wall time and its peak RSS before and after the
query (``VmHWM`` of ``/proc/self/status``, and ``resource.getrusage``'s
``ru_maxrss``, which Linux carries over from the process that started the
subprocess, so it can hide a smaller peak): the work runs in the database, so
the client's peak must not grow with the number of spans.

Shapes:

* ``requests``: 10 spans per frame, each frame its own trace, one frame in
  ten served by two processes (the storage spans have another service and
  node); 1,000,000 spans are 100,000 frames.
* ``one-trace``: every frame (``tick``) under one long-lived root span, all in
  one trace: the worst case for the walk, which finds children through the
  ``trace_id`` index and filters on ``parent_span_id``.

The schema (version 4) has an index on ``(trace_id, parent_span_id)``, which
the walk reads children through; ``--no-index`` drops it from the temporary
database first, to measure without it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

BASE = 1_700_000_000 * 1_000_000_000
FRAME = {"requests": "GET /items/{id}", "one-trace": "tick"}
BUDGETS = {"db": ["sql.*"], "cache": "cache.get", "remote": "GET /storage", "ui": "render"}
COLUMNS = [
    "span_id", "trace_id", "parent_span_id", "path", "name", "level", "start_ns", "end_ns",
    "duration_ns", "status", "error", "attributes", "events", "service", "node", "session_id",
    "location",
]  # fmt: skip


def _rows_requests(n_spans: int, rnd: random.Random) -> Iterator[tuple[object, ...]]:
    """10 spans per frame: frame, sql.query > sql.fetch, cache.get, http.call >
    GET /storage > (sql.query, disk.read), render > sql.query."""
    for f in range(n_spans // 10):
        trace = f"{f + 1:032x}"
        start = BASE + f * 10_000_000
        remote = f % 10 == 0
        durations = [rnd.randint(1_000, 100_000) for _ in range(10)]
        spans = [
            ("1", None, "GET /items/{id}", "api", durations[0] * 5),
            ("2", "1", "sql.query", "api", durations[1]),
            ("3", "2", "sql.fetch", "api", durations[2] // 2),
            ("4", "1", "cache.get", "api", durations[3] // 10),
            ("5", "1", "http.call", "api", durations[4]),
            ("6", "5", "GET /storage", "storage" if remote else "api", durations[5] // 2),
            ("7", "6", "sql.query", "storage" if remote else "api", durations[6] // 4),
            ("8", "6", "disk.read", "storage" if remote else "api", durations[7] // 4),
            ("9", "1", "render", "api", durations[8]),
            ("a", "9", "sql.query", "api", durations[9] // 3),
        ]
        for sid, parent, name, service, dur in spans:
            yield _row(trace, sid, parent, name, service, start, dur)


def _rows_one_trace(n_spans: int, rnd: random.Random) -> Iterator[tuple[object, ...]]:
    """A root span, then ticks of 5 spans each under it: tick > (sql.query >
    sql.fetch, render, physics)."""
    trace = "f" * 32
    yield _row(trace, "r", None, "game", "game", BASE, 10**15)
    for t in range((n_spans - 1) // 5):
        start = BASE + t * 16_000_000
        base = f"{t:x}."
        yield _row(trace, base + "0", "r", "tick", "game", start, rnd.randint(10**6, 2 * 10**7))
        yield _row(trace, base + "1", base + "0", "sql.query", "game", start, 1000)
        yield _row(trace, base + "2", base + "1", "sql.fetch", "game", start, 500)
        yield _row(trace, base + "3", base + "0", "render", "game", start, 2000)
        yield _row(trace, base + "4", base + "0", "physics", "game", start, 3000)


def _row(
    trace: str, sid: str, parent: str | None, name: str, service: str, start: int, dur: int
) -> tuple[object, ...]:
    def span_id(s: str | None) -> str | None:
        return None if s is None else s.rjust(16, "0")

    return (
        span_id(sid), trace, span_id(parent), service, name, "prod", start, start + dur, dur,
        "unset", None, None, None, service, "n1" if service == "api" else "n2", None, None,
    )  # fmt: skip


def _rows(shape: str, n_spans: int) -> Iterator[tuple[object, ...]]:
    rnd = random.Random(42)
    return (_rows_requests if shape == "requests" else _rows_one_trace)(n_spans, rnd)


def _chunks(
    rows: Iterator[tuple[object, ...]], size: int = 50_000
) -> Iterator[list[tuple[object, ...]]]:
    chunk: list[tuple[object, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def fill_sqlite(path: Path, shape: str, n_spans: int, index: bool) -> None:
    import sqlite3

    from sqlalchemy import create_engine

    from alamos.report.sql.migrate import ensure_schema

    engine = create_engine(f"sqlite:///{path}")
    ensure_schema(engine)
    engine.dispose()
    conn = sqlite3.connect(path)
    sql = (
        f"INSERT INTO alamos_spans ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    )
    with conn:
        for chunk in _chunks(_rows(shape, n_spans)):
            conn.executemany(sql, chunk)
        if not index:
            conn.execute("DROP INDEX ix_alamos_spans_trace_parent")
    conn.execute("ANALYZE")
    conn.close()


def fill_postgresql(url: str, shape: str, n_spans: int, index: bool) -> None:
    import psycopg
    from sqlalchemy import create_engine, make_url

    from alamos.report.sql import normalize_url
    from alamos.report.sql.migrate import ensure_schema

    engine = create_engine(normalize_url(url))
    ensure_schema(engine)
    engine.dispose()
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY alamos_spans ({', '.join(COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in _rows(shape, n_spans):
                copy.write_row(row)
        if not index:
            conn.execute("DROP INDEX ix_alamos_spans_trace_parent")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE alamos_spans")


_CHILD = r"""
import json, resource, sys, time
from alamos.report.query import budget_report, frame_budgets

def hwm_kib():
    # The peak RSS of this process image (reset at exec, unlike ru_maxrss,
    # which Linux carries over from the process that started us).
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1

url, frame, which = sys.argv[1], sys.argv[2], sys.argv[3]
budgets = json.loads(sys.argv[4])
before, hwm_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, hwm_kib()
t0 = time.perf_counter()
if which == "report":
    r = budget_report(url, frame, budgets)
    out = {"frames": r.frame.frames, "budgets": len(r.budgets), "offenders": len(r.offenders)}
else:
    rows = frame_budgets(url, frame, budgets)
    out = {"rows": len(rows)}
out["seconds"] = time.perf_counter() - t0
out["rss_before_kib"] = before
out["rss_peak_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out["hwm_before_kib"] = hwm_before
out["hwm_peak_kib"] = hwm_kib()
print(json.dumps(out))
"""


def measure(url: str, frame: str, which: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, url, frame, which, json.dumps(BUDGETS)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def report(label: str, url: str, shape: str) -> None:
    for which in ("report", "frame_budgets"):
        m = measure(url, FRAME[shape], which)
        kib = {k: int(m.pop(k)) for k in [k for k in m if k.endswith("_kib")]}  # type: ignore[call-overload]
        seconds = float(m.pop("seconds"))  # type: ignore[arg-type]
        print(
            f"{label:<11} {which:<14} {seconds:6.2f} s"
            f"   peak RSS {kib['hwm_peak_kib'] / 1024:6.1f} MiB"
            f" (+{(kib['hwm_peak_kib'] - kib['hwm_before_kib']) / 1024:.1f} MiB in the query;"
            f" getrusage ru_maxrss {kib['rss_before_kib'] / 1024:.1f} -> "
            f"{kib['rss_peak_kib'] / 1024:.1f} MiB)   {m}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--shape", choices=tuple(FRAME), default="requests")
    parser.add_argument(
        "--no-index", action="store_true", help="drop the (trace_id, parent_span_id) index"
    )
    args = parser.parse_args()
    args.index = not args.no_index
    index = "with" if args.index else "without"
    print(f"{args.spans:,} spans, shape {args.shape}, {index} (trace_id, parent_span_id) index")
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.db"
            t0 = time.perf_counter()
            fill_sqlite(path, args.shape, args.spans, args.index)
            size = path.stat().st_size / 2**20
            print(
                f"sqlite: filled in {time.perf_counter() - t0:.1f} s ({size:.0f} MiB)", flush=True
            )
            report("sqlite", f"sqlite:///{path}", args.shape)
    if args.backend in ("postgresql", "both"):
        from pg import PgServer

        external = os.environ.get("ALAMOS_BENCH_PG_URL")
        server = PgServer.external(external) if external else PgServer.launch()
        try:
            url = server.create_database("alamos_bench")
            t0 = time.perf_counter()
            fill_postgresql(url, args.shape, args.spans, args.index)
            print(f"postgresql: filled in {time.perf_counter() - t0:.1f} s", flush=True)
            report("postgresql", url, args.shape)
            server.drop_database(url)
        finally:
            server.close()


if __name__ == "__main__":
    main()
