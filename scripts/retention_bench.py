"""How long garbage collection stalls a concurrent exporter, and the space it returns.

    .venv/bin/python scripts/retention_bench.py                  # SQLite and PostgreSQL, 1M spans
    .venv/bin/python scripts/retention_bench.py --backend sqlite --spans 200000
    .venv/bin/python scripts/retention_bench.py --backend postgresql --variants gc,control,idle

Not part of the test suite (it takes minutes).  The database is filled
directly (``executemany`` on SQLite, ``COPY`` on PostgreSQL) with traces of
10 spans (a root in ``api``, children in ``api`` and ``storage``) and one log
each, over 20 handlers: 90 % of the traces 8 to 30 days old, 10 % younger
than a day, 1 % with an error.  The SQLite file is made as the exporter makes
a new one (WAL, incremental auto-vacuum).

Then an exporter in **another process** (a real :class:`SQLExporter`, so the
GIL of the gc process plays no part) stores a batch of 512 new spans every
20 ms, timing each ``export`` call, while this process runs one variant
(``--variants``, each on a freshly filled database):

* ``gc``: gc with the default batch size and pause (policy: 7 d, keep the
  last 10 and the 5 slowest per handler, errors 30 d); ``gc:pause=0.05``,
  ``gc:batch=1000`` (or both, ``gc:pause=0.05+batch=1000``) change those;
* ``control``: no gc, ``--burners`` processes that only burn CPU for as long
  as the first gc took: what CPU contention alone does to the exporter;
* ``idle``: nothing, as long.

Reported: the export calls before and during (longest, p99, p50, and the
share of their time spent waiting for a core), for gc also split into the
decision and the deletes; the longest calls explained
(``retention_probe.py``: run-queue delay of the exporter and of its
PostgreSQL backend from ``/proc/<pid>/schedstat``, the wait events of its
backend and what gc's backend ran, sampled from ``pg_stat_activity`` every
10 ms); gc's time, CPU and what it deleted; on SQLite the file size before
gc, after gc (incremental vacuum) and after a full ``VACUUM`` (``alamos gc
--vacuum``; the exporter's longest call during it too: it locks the file).
The stall gc causes is the longest call during gc; what gc adds beyond CPU
contention is its excess over the control.
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

from retention_probe import EXPORTER, Burner, Monitor, cpu_busy, report, stats  # noqa: E402

from alamos.retention import DEFAULT_BATCH_SIZE  # noqa: E402

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


def _dsn(url: str) -> str:
    from sqlalchemy import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def measure(
    backend: str,
    url: str,
    path: Path | None,
    tmp: Path,
    variant: str,
    seconds: float = 0.0,
    burners: int = 1,
) -> dict[str, object]:
    """Run the exporter process, then one variant while it runs: ``gc``
    (defaults), ``gc:pause=0.05``, ``gc:batch=1000`` (both may be given,
    comma-separated), ``control`` (``burners`` CPU-burning processes for
    ``seconds``, no gc) or ``idle`` (nothing for ``seconds``)."""
    from alamos.retention import Policy, gc

    policy = Policy(ttl="7d", keep_last=10, keep_errors="30d", keep_slowest=5)
    tag = variant.replace(":", "-").replace("=", "").replace(",", "-")
    stop = tmp / f"stop-{backend}-{tag}"
    out = tmp / f"calls-{backend}-{tag}.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", EXPORTER, url, str(stop), str(out)], env=env)
    monitor = Monitor(_dsn(url)) if backend == "postgresql" else None
    if monitor is not None:
        monitor.start()
    result: dict[str, object] = {"backend": backend, "variant": variant}
    try:
        time.sleep(5)  # the exporter's own pace first (and its schema check)
        size0 = _size(path) if path else None
        busy0 = cpu_busy()
        thread0 = time.thread_time()
        t0 = time.monotonic()
        summary = None
        t_decided = None
        if variant.startswith("gc"):
            opts = dict(o.split("=") for o in variant.partition(":")[2].split(",") if o)
            phases: dict[str, float] = {}

            def progress(task: str, advance: int, total: int | None) -> None:
                phases.setdefault(task, time.monotonic())

            summary = gc(
                url,
                policy,
                batch_size=int(opts.get("batch", DEFAULT_BATCH_SIZE)),
                pause=float(opts["pause"]) if "pause" in opts else None,
                progress=progress,
            )
            # The decision ends when the deletes begin.
            t_decided = phases.get("traces")
        elif variant == "control":
            Burner(burners, seconds).wait()
        else:
            time.sleep(seconds)
        t1 = time.monotonic()
        busy1 = cpu_busy()
        result["seconds"] = round(t1 - t0, 1)
        result["machine_cpu_busy"] = round((busy1[0] - busy0[0]) / (busy1[1] - busy0[1]), 3)
        if summary is not None:
            result["gc_python_cpu_s"] = round(time.thread_time() - thread0, 1)
            if monitor is not None:
                cpu, runq = monitor.gc_backend_seconds()
                result["gc_backend_cpu_s"], result["gc_backend_runq_s"] = (
                    round(cpu, 1),
                    round(runq, 1),
                )
            result["batches"] = summary.batches
            result["deleted_traces"] = summary.deleted
            result["rows"] = dict(summary.rows)
        time.sleep(2)
        size1 = _size(path) if path else None
        t2 = time.monotonic()
        full = gc(url, policy, vacuum=True) if path and summary is not None else None
        t3 = time.monotonic()
        time.sleep(1)
    finally:
        stop.touch()
        proc.wait(60)
        if monitor is not None:
            monitor.stop()
    calls = json.loads(out.read_text())["calls"]
    print(f"{backend} {variant}: {result}", flush=True)
    result["report"] = report(variant, calls, t0, t1, monitor)
    if t_decided is not None:
        result["decide_s"] = round(t_decided - t0, 1)
        result["report_decide"] = report("gc: decide", calls, t0, t_decided, None, top=0)
        result["report_delete"] = report("gc: delete", calls, t_decided, t1, None, top=0)
    if path is not None and full is not None and summary is not None:
        mib = 2**20
        print(
            f"  file: {size0 / mib:,.1f} MiB before gc (with the exporter's new rows), "  # type: ignore[operator]
            f"{size1 / mib:,.1f} MiB after gc ({summary.space.method if summary.space else '-'}), "  # type: ignore[operator]
            f"{_size(path) / mib:,.1f} MiB after a full VACUUM ({t3 - t2:.1f} s)"
        )
        vac = [c for c in calls if c[0] < t3 and c[0] + c[1] > t2]
        print(f"  exporter during the full VACUUM: {stats(vac)}")
    return result


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
    parser.add_argument(
        "--variants",
        default="gc,control",
        help="comma-separated runs, each on a freshly filled database: gc, "
        "gc:pause=0.05+batch=1000, control (CPU burners for as long as the "
        "first gc took), idle",
    )
    parser.add_argument("--burners", type=int, default=1, help="processes of the control load")
    parser.add_argument("--seconds", type=float, default=0.0, help="control/idle length")
    parser.add_argument("--json", type=Path, help="append the results here (JSON lines)")
    args = parser.parse_args()
    now = time.time_ns()
    print(f"{args.spans:,} spans in traces of 10, one log per trace", flush=True)
    variants = [v.replace("+", ",") for v in args.variants.split(",")]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.space:
            space(tmp / "space.db", args.spans, now)
            return
        state = {"seconds": args.seconds}

        def run(backend: str, fill: Any, url: Any, path: Path | None) -> None:
            """Each variant on a freshly filled database; the control and idle
            runs last as long as the first gc unless --seconds says."""
            for variant in variants:
                t0 = time.perf_counter()
                fill()
                print(f"{backend}: filled in {time.perf_counter() - t0:.1f} s", flush=True)
                r = measure(
                    backend, url(), path, tmp, variant, state["seconds"] or 30.0, args.burners
                )
                if variant.startswith("gc") and not state["seconds"]:
                    state["seconds"] = float(r["seconds"])  # type: ignore[arg-type]
                if args.json:
                    with args.json.open("a") as f:
                        f.write(json.dumps(r) + "\n")

        if args.backend in ("sqlite", "both"):
            path = tmp / "bench.db"

            def fill_file() -> None:
                for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                    p.unlink(missing_ok=True)
                fill_sqlite(path, args.spans, now)

            run("sqlite", fill_file, lambda: f"sqlite:///{path}", path)
        if args.backend in ("postgresql", "both"):
            from pg import PgServer

            external = os.environ.get("ALAMOS_BENCH_PG_URL")
            server = PgServer.external(external) if external else PgServer.launch()
            state["seconds"] = args.seconds
            box: dict[str, str] = {}

            def fill_db() -> None:
                if "url" in box:
                    server.drop_database(box.pop("url"))
                box["url"] = server.create_database("alamos_retention_bench")
                fill_postgresql(box["url"], args.spans, now)

            try:
                run("postgresql", fill_db, lambda: box["url"], None)
                server.drop_database(box.pop("url"))
            finally:
                server.close()


if __name__ == "__main__":
    main()
