"""Probes for scripts/retention_bench.py: where an exporter's long calls go.

* :data:`EXPORTER`: the exporter process.  A real :class:`SQLExporter` with
  one pooled connection stores 512 spans every 20 ms and records, per
  ``export`` call, its start and duration and, from ``/proc/<pid>/schedstat``,
  the CPU time and the **run-queue delay** (time runnable but waiting for a
  core) of itself and of its PostgreSQL backend during the call.  Run-queue
  delay is CPU contention, measured, not guessed.
* :class:`Monitor`: a thread sampling ``pg_stat_activity`` every 10 ms (the
  exporter's and gc's backends: state, wait event, query) and the CPU of
  gc's backends.
* :class:`Burner`: a control load, processes that only burn CPU.
* :func:`report`: the calls before and during a window, the longest ones
  explained (run-queue delay, wait events seen, what gc's backend ran).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from typing import Any

EXPORTER = textwrap.dedent(
    """
    import json, os, sys, time, random
    from sqlalchemy import event
    from alamos.core.level import Level
    from alamos.core.records import SpanRecord
    from alamos.report.sql import SQLExporter
    url, stop, out = sys.argv[1], sys.argv[2], sys.argv[3]
    pg = url.startswith("postgres")
    exp = SQLExporter(url, engine_kwargs={"pool_size": 1, "max_overflow": 0} if pg else {})
    backend = [None]
    if pg:
        @event.listens_for(exp.engine, "connect")
        def _pid(dbapi_conn, record):
            backend[0] = dbapi_conn.info.backend_pid

    def sched(pid):
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                cpu, delay, _ = f.read().split()
            return int(cpu), int(delay)
        except (OSError, ValueError):
            return 0, 0

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
        s0, b0 = sched("self"), sched(backend[0]) if backend[0] else (0, 0)
        t0 = time.monotonic()
        exp.export(batch)
        t1 = time.monotonic()
        s1, b1 = sched("self"), sched(backend[0]) if backend[0] else (0, 0)
        if b0 == (0, 0):
            b1 = (0, 0)
        calls.append((t0, t1 - t0, (s1[0] - s0[0]) / 1e9, (s1[1] - s0[1]) / 1e9,
                      (b1[0] - b0[0]) / 1e9, (b1[1] - b0[1]) / 1e9))
        n += len(batch)
        time.sleep(max(0.0, 0.02 - (t1 - t0)))
    exp.close()
    json.dump({"calls": calls, "spans": n}, open(out, "w"))
    """
)

BURN = textwrap.dedent(
    """
    import sys, time
    end = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < end:
        pass
    """
)


def sched(pid: int | str) -> tuple[int, int]:
    """(CPU ns, run-queue delay ns) of a process, from /proc (0, 0 if gone)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            cpu, delay, _ = f.read().split()
        return int(cpu), int(delay)
    except (OSError, ValueError):
        return 0, 0


def cpu_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class Burner:
    """``n`` processes burning CPU for ``seconds`` (the control load)."""

    def __init__(self, n: int, seconds: float) -> None:
        self.procs = [
            subprocess.Popen([sys.executable, "-c", BURN, str(seconds)]) for _ in range(n)
        ]

    def wait(self) -> None:
        for p in self.procs:
            p.wait()


class Monitor(threading.Thread):
    """Samples ``pg_stat_activity`` every ``interval`` s until stopped."""

    def __init__(self, dsn: str, interval: float = 0.01) -> None:
        super().__init__(daemon=True, name="pg-monitor")
        self.dsn = dsn
        self.interval = interval
        self.samples: list[tuple[float, list[tuple[Any, ...]]]] = []
        self.gc_cpu: dict[int, tuple[int, int]] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop_event.is_set():
                rows = conn.execute(
                    "SELECT pid, application_name, state, wait_event_type, wait_event, "
                    "left(query, 60) FROM pg_stat_activity WHERE application_name IN "
                    "('alamos', 'alamos-gc') AND pid <> pg_backend_pid()"
                ).fetchall()
                now = time.monotonic()
                self.samples.append((now, rows))
                for r in rows:
                    if r[1] == "alamos-gc":
                        got = sched(r[0])
                        if got != (0, 0):
                            self.gc_cpu[r[0]] = got
                time.sleep(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)

    def gc_backend_seconds(self) -> tuple[float, float]:
        """CPU and run-queue delay of gc's backends (s, as last sampled)."""
        return (
            sum(c for c, _ in self.gc_cpu.values()) / 1e9,
            sum(d for _, d in self.gc_cpu.values()) / 1e9,
        )

    def during(self, t0: float, t1: float) -> tuple[Counter[str], Counter[str]]:
        """Wait events of the exporter's backend, and what gc's backends did,
        in the samples taken in ``[t0, t1]``."""
        exp: Counter[str] = Counter()
        gc: Counter[str] = Counter()
        for t, rows in self.samples:
            if t0 <= t <= t1:
                for _pid, app, state, wtype, wevent, query in rows:
                    what = f"{wtype}:{wevent}" if wtype else "cpu"
                    if state != "active":
                        what = state or "?"
                    if app == "alamos":
                        exp[what] += 1
                    else:
                        q = " ".join(str(query).split())[:40] if state == "active" else ""
                        gc[f"{what} {q}".strip()] += 1
        return exp, gc


def _pct(lat: list[float], q: float) -> float:
    return lat[min(len(lat) - 1, int(len(lat) * q))]


def stats(calls: list[list[float]]) -> dict[str, float]:
    if not calls:
        return {"n": 0}
    lat = sorted(c[1] for c in calls)
    return {
        "n": len(lat),
        "max_ms": round(lat[-1] * 1e3, 1),
        "p99_ms": round(_pct(lat, 0.99) * 1e3, 1),
        "p50_ms": round(_pct(lat, 0.5) * 1e3, 1),
        # The share of the call time spent waiting for a core (exporter
        # process and its backend): CPU contention.
        "runq_share": round(
            sum(c[3] + c[5] for c in calls) / max(1e-9, sum(c[1] for c in calls)), 3
        ),
    }


def report(
    label: str,
    calls: list[list[float]],
    t0: float,
    t1: float,
    monitor: Monitor | None,
    top: int = 5,
) -> dict[str, Any]:
    """Print and return the exporter's calls before ``t0`` and during ``[t0, t1]``."""
    before = [c for c in calls if c[0] + c[1] < t0]
    during = [c for c in calls if c[0] < t1 and c[0] + c[1] > t0]
    out = {"label": label, "before": stats(before), "during": stats(during), "longest": []}
    print(f"  [{label}] exporter before: {out['before']}", flush=True)
    print(f"  [{label}] exporter during: {out['during']}", flush=True)
    for c in sorted(during, key=lambda c: -c[1])[:top]:
        row: dict[str, Any] = {
            "ms": round(c[1] * 1e3, 1),
            "runq_self_ms": round(c[3] * 1e3, 1),
            "runq_backend_ms": round(c[5] * 1e3, 1),
            "cpu_self_ms": round(c[2] * 1e3, 1),
            "cpu_backend_ms": round(c[4] * 1e3, 1),
        }
        if monitor is not None:
            exp, gc = monitor.during(c[0], c[0] + c[1])
            row["exporter_backend"] = dict(exp.most_common(4))
            row["gc_backend"] = dict(gc.most_common(3))
        out["longest"].append(row)
        print(f"    {row}", flush=True)
    return out
