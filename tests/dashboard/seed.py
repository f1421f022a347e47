"""A known database for the dashboard tests, written through the real SQLExporter.

Everything starts ``AGO`` before now, so the default window (1 h) holds it.

* ``shop`` (service web, node n1) with ``shop.api`` (web, n1), ``shop.cart``
  (cart, n2), ``shop.db`` (store, n3) and ``shop.evil`` (web, n1).
* The 3-service trace :data:`CHECKOUT` (times in ms from its start)::

      A  GET /checkout   shop.api  web    0..100  user=alice
      B  cart.total      shop.cart cart  10..60
      E  cache.get       shop.cart cart  12..30   (level debug)
      C  SELECT items    shop.db   store 20..50   error, with a stack trace
      D  render          shop.api  web   65..95
      F  audit           shop.api  web   70..80

  Waterfall order A B E C D F, depths 0 1 2 2 1 1; critical path A D B C E
  (F runs while D, which ends later, does).
* 100 traces of one ``GET /item`` span in shop.api lasting 1..100 ms, those
  of 20, 40, 60, 80 and 100 ms in error.  So shop.api has 103 spans
  (1..100, 100, 30, 10 ms): p50 (the 52nd smallest) is 50 ms and p99 (the
  102nd) 100 ms, with 5 errors.
* Logs of shop.api: 3 INFO, 1 WARNING, 2 ERROR; of shop.cart: 4 DEBUG (in
  the debug session) and 1 INFO.
* A debug session :data:`SESSION` over shop.cart: span B's twin in a trace
  of its own, and the 4 DEBUG logs.
* An orphan trace :data:`ORPHAN`: one span whose parent is not stored.
* shop.evil: the injection payloads as a span name, an attribute, a log
  message and a report value; shop.api: a counter, a gauge, a histogram and
  a report.
"""

from __future__ import annotations

import time
from typing import Any

from alamos.core.level import Level
from alamos.core.records import (
    EventRecord,
    ExperimentRecord,
    LogRecord,
    MetricRecord,
    ReportRecord,
    SpanRecord,
)
from alamos.report.sql import SQLExporter

MS = 1_000_000
AGO = 600 * 1_000_000_000
CHECKOUT = "c0ffee00000000000000000000000001"
ORPHAN = "0badbeef000000000000000000000002"
EVIL = "e0e0e0e0000000000000000000000003"
SESSION = "5e55105e55105e55"
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "</script><script>alert(1)</script>"
# span ids of the checkout trace, by letter
IDS = {k: f"{i + 1:016x}" for i, k in enumerate("ABCDEF")}
CHECKOUT_ORDER = ["A", "B", "E", "C", "D", "F"]
CHECKOUT_DEPTH = [0, 1, 2, 2, 1, 1]
CHECKOUT_CRITICAL = {"A", "B", "C", "D", "E"}

SERVICES = {"shop": "web", "shop.api": "web", "shop.cart": "cart", "shop.db": "store"}
NODES = {"web": "n1", "cart": "n2", "store": "n3"}


def _span(
    trace: str,
    span_id: str,
    parent: str | None,
    path: str,
    name: str,
    start: int,
    end: int,
    *,
    status: str = "ok",
    error: str | None = None,
    attributes: dict[str, Any] | None = None,
    events: tuple[EventRecord, ...] = (),
    level: Level = Level.PROD,
    session: str | None = None,
) -> SpanRecord:
    service = SERVICES.get(path, "web")
    return SpanRecord(
        trace_id=trace,
        span_id=span_id,
        parent_id=parent,
        path=path,
        name=name,
        level=level,
        start_ns=start,
        end_ns=end,
        status=status,
        error_text=error,
        attributes=attributes or {},
        events=events,
        service=service,
        node=NODES[service],
        session_id=session,
    )


def _log(n: int, ts: int, path: str, level: str, message: str, **kw: Any) -> LogRecord:
    service = SERVICES.get(path, "web")
    return LogRecord(
        id=f"log{n:05d}",
        ts_ns=ts,
        path=path,
        level=level,
        message=message,
        trace_id=kw.get("trace"),
        span_id=kw.get("span"),
        attributes={},
        location=None,
        service=service,
        node=NODES[service],
        session_id=kw.get("session"),
    )


def records(now_ns: int) -> list[Any]:
    t0 = now_ns - AGO
    out: list[Any] = []
    for path in ("shop", "shop.api", "shop.cart", "shop.db", "shop.evil"):
        parent = path.rsplit(".", 1)[0] if "." in path else None
        service = SERVICES.get(path, "web")
        out.append(
            ExperimentRecord(path, parent, path.rsplit(".", 1)[-1], service, NODES[service], t0)
        )
    a, b, c, d, e, f = (IDS[k] for k in "ABCDEF")
    stack = 'Traceback (most recent call last):\n  File "db.py", line 7\nRuntimeError: boom'
    out += [
        _span(
            CHECKOUT,
            a,
            None,
            "shop.api",
            "GET /checkout",
            t0,
            t0 + 100 * MS,
            attributes={"user": "alice", "items": 3},
        ),
        _span(CHECKOUT, b, a, "shop.cart", "cart.total", t0 + 10 * MS, t0 + 60 * MS),
        _span(
            CHECKOUT, e, b, "shop.cart", "cache.get", t0 + 12 * MS, t0 + 30 * MS, level=Level.DEBUG
        ),
        _span(
            CHECKOUT,
            c,
            b,
            "shop.db",
            "SELECT items",
            t0 + 20 * MS,
            t0 + 50 * MS,
            status="error",
            error=stack,
            events=(EventRecord("retry", t0 + 30 * MS, {"attempt": 2}),),
        ),
        _span(CHECKOUT, d, a, "shop.api", "render", t0 + 65 * MS, t0 + 95 * MS),
        _span(CHECKOUT, f, a, "shop.api", "audit", t0 + 70 * MS, t0 + 80 * MS),
    ]
    for i in range(1, 101):
        start = t0 + (i + 1) * 1_000_000_000  # one a second, after the checkout
        failed = i % 20 == 0
        out.append(
            _span(
                f"{i:032x}",
                f"{i:016x}",
                None,
                "shop.api",
                "GET /item",
                start,
                start + i * MS,
                status="error" if failed else "ok",
                error="not found" if failed else None,
                attributes={"item": i},
            )
        )
    out.append(
        _span(
            f"{0x5E55:032x}",
            "5e55000000000001",
            None,
            "shop.cart",
            "cart.total",
            t0 + 200 * 1_000_000_000,
            t0 + 200 * 1_000_000_000 + 7 * MS,
            session=SESSION,
        )
    )
    out.append(
        _span(
            ORPHAN,
            "00000000000000aa",
            "00000000000000ff",
            "shop.db",
            "lonely",
            t0 + 300 * 1_000_000_000,
            t0 + 300 * 1_000_000_000 + 3 * MS,
        )
    )
    out.append(
        _span(
            EVIL,
            "00000000000000ee",
            None,
            "shop.evil",
            IMG,
            t0 + 400 * 1_000_000_000,
            t0 + 400 * 1_000_000_000 + 2 * MS,
            attributes={"note": SCRIPT, IMG: IMG},
        )
    )
    n = 0
    for level, count in (("INFO", 3), ("WARNING", 1), ("ERROR", 2)):
        for _ in range(count):
            n += 1
            out.append(
                _log(
                    n,
                    t0 + n * MS,
                    "shop.api",
                    level,
                    f"api {level.lower()} {n}",
                    trace=CHECKOUT,
                    span=a,
                )
            )
    for _ in range(4):
        n += 1
        out.append(
            _log(
                n,
                t0 + 200 * 1_000_000_000 + n,
                "shop.cart",
                "DEBUG",
                f"cart debug {n}",
                session=SESSION,
            )
        )
    n += 1
    out.append(_log(n, t0 + 5 * MS, "shop.cart", "INFO", "cart info", trace=CHECKOUT, span=b))
    n += 1
    out.append(
        _log(
            n,
            t0 + 400 * 1_000_000_000,
            "shop.evil",
            "WARNING",
            IMG + " " + SCRIPT,
            trace=EVIL,
            span="00000000000000ee",
        )
    )
    # Metrics of shop.api: snapshots 10 s apart.
    for k, (count, queue, le) in enumerate(
        ((0, 4, (0, 0, 0)), (100, 9, (50, 90, 100)), (300, 2, (100, 250, 300)))
    ):
        ts = t0 + k * 10_000_000_000
        base = dict(ts_ns=ts, path="shop.api", service="web", node="n1", labels={})
        out.append(
            MetricRecord(
                id=f"m{k}c",
                name="requests",
                kind="counter",
                value=count,
                sum=None,
                count=None,
                buckets=None,
                **base,
            )
        )
        out.append(
            MetricRecord(
                id=f"m{k}g",
                name="queue",
                kind="gauge",
                value=queue,
                sum=None,
                count=None,
                buckets=None,
                **base,
            )
        )
        buckets = {"0.01": le[0], "0.1": le[1], "+Inf": le[2]}
        out.append(
            MetricRecord(
                id=f"m{k}h",
                name="latency_seconds",
                kind="histogram",
                value=0.0,
                sum=0.0,
                count=le[2],
                buckets=buckets,
                **base,
            )
        )
    out.append(
        ReportRecord(
            "r1",
            t0,
            "shop.api",
            "status",
            {"version": "1.2", "pools": {"db": 5, "cache": [1, 2]}},
            "web",
            "n1",
        )
    )
    out.append(
        ReportRecord("r2", t0, "shop.evil", "evil", {"payload": IMG, SCRIPT: [SCRIPT]}, "web", "n1")
    )
    return out


def seed(url: str, now_ns: int | None = None) -> int:
    """Write the records into ``url``; return the ``now`` they are relative to."""
    now = time.time_ns() if now_ns is None else now_ns
    exporter = SQLExporter(url)
    try:
        exporter.export(records(now))
    finally:
        exporter.close()
    return now
