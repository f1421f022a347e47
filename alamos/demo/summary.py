"""The demo's per-layer summary, read back from the database with SQL.

Percentiles use window functions (``ROW_NUMBER`` / ``COUNT`` over a
partition) so the same query runs on SQLite and PostgreSQL.  Every value is
a bound parameter.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["LAYER_SQL", "LOGS_SQL", "summarise"]

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
