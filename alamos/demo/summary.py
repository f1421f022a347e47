"""The demo's summaries, read back from the database with SQL.

Per layer: percentiles use window functions (``ROW_NUMBER`` / ``COUNT`` over
a partition) so the same query runs on SQLite and PostgreSQL.  Every value
is a bound parameter.

Frame budgets: the api server's request spans (``GET /kv/{key}``, ``PUT
/kv/{key}``, the middleware's) are the frames, and :data:`DEMO_BUDGETS`
charges what runs below them to the layers, through
:func:`~alamos.report.query.budget_report` (SQL in the database, so storage
processes' spans count too: they are found by trace/parent links).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from alamos.report.query import BudgetMap, BudgetReport, budget_report
from alamos.stats import Summary, read_stats, summarize

__all__ = [
    "DEMO_BUDGETS",
    "DEMO_FRAMES",
    "DEMO_STATS_ATTRIBUTES",
    "LAYER_SQL",
    "LOGS_SQL",
    "frame_budgets",
    "span_statistics",
    "summarise",
]

#: The span attributes the demo keeps statistics of (``Cesium.write`` sets it).
DEMO_STATS_ATTRIBUTES = ("bytes",)

#: The api server's request spans (``AlamosMiddleware`` on ``demo.api``, named
#: after the route template): one frame per request.
DEMO_FRAMES = ("GET /kv/{key}", "PUT /kv/{key}")

#: The demo's layers as budgets, by the span names each records
#: (:mod:`alamos.demo.layers`).  ``* storage`` is the HTTP call to a storage
#: process (``--workers``); the httpx client span and the storage server's
#: ``GET /page/{key}`` inside it are the same budget, so they are not counted
#: again (outermost only).  The budgets
#: nest (cesium calls storage, storage calls the wal), so shares add up to
#: more than 100%.
DEMO_BUDGETS = BudgetMap.from_mapping(
    {
        "cesium": ["read", "write"],
        "storage": ["read_page", "write_page", "* storage", "* /page/{key}"],
        "wal": "fsync",
    }
)

LAYER_SQL = sa.text(
    """
    WITH ranked AS (
        SELECT path, duration_ns, status,
               ROW_NUMBER() OVER (PARTITION BY path ORDER BY duration_ns) AS rn,
               COUNT(*) OVER (PARTITION BY path) AS cnt
        FROM alamos_spans
        WHERE start_ns >= :since AND service LIKE :service
    )
    SELECT path,
           MAX(cnt) AS spans,
           MIN(CASE WHEN rn >= 0.50 * cnt THEN duration_ns END) AS p50_ns,
           MIN(CASE WHEN rn >= 0.99 * cnt THEN duration_ns END) AS p99_ns,
           SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors
    FROM ranked
    GROUP BY path
    ORDER BY path
    """
)

LOGS_SQL = sa.text(
    """
    SELECT path, level, COUNT(*) AS n
    FROM alamos_logs
    WHERE ts_ns >= :since AND service LIKE :service
    GROUP BY path, level
    ORDER BY path, level
    """
)


def summarise(url: str, since_ns: int, service_like: str = "%") -> dict[str, Any]:
    """``{"layers": [...], "logs": {path: {level: n}}}`` for records since ``since_ns``."""
    from alamos.report.sql import normalize_url

    engine = sa.create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            params = {"since": since_ns, "service": service_like}
            layers = [dict(row._mapping) for row in conn.execute(LAYER_SQL, params)]
            logs: dict[str, dict[str, int]] = {}
            for path, level, n in conn.execute(LOGS_SQL, params):
                logs.setdefault(path, {})[level] = int(n)
    finally:
        engine.dispose()
    return {"layers": layers, "logs": logs}


def frame_budgets(url: str, since_ns: int) -> list[BudgetReport]:
    """One :class:`~alamos.report.query.BudgetReport` per frame in
    :data:`DEMO_FRAMES`, over the frames started since ``since_ns`` (this
    run's), with :data:`DEMO_BUDGETS`; a frame nobody recorded has
    ``frame.frames == 0``.  No top offenders are printed, so one is asked for."""
    return [budget_report(url, f, DEMO_BUDGETS, since_ns=since_ns, top=1) for f in DEMO_FRAMES]


def span_statistics(url: str, since_ns: int) -> list[Summary]:
    """The live statistics the demo's processes stored (``alamos_span_stats``),
    merged per path and span name over the windows since ``since_ns``."""
    rows = [r for r in read_stats(url, since_ns=since_ns) if r.service.startswith("demo")]
    return summarize(rows, by="name")
