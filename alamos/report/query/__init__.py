"""alamos.report.query: reading traces back out of the database.

``recent_traces`` lists traces, ``load_trace`` loads one trace's spans and
logs, and ``build_tree`` arranges them into a tree of :class:`TraceNode`
(``trace_tree``).  It sits on the storage side (:mod:`alamos.report.sql`).
"""

from alamos.core.errors import TraceQueryError
from alamos.report.query.trace_tree import TraceNode, build_tree, unattached_logs
from alamos.report.query.traces import (
    TraceSummary,
    load_trace,
    recent_traces,
    valid_trace_id,
)

__all__ = [
    "TraceNode",
    "TraceQueryError",
    "TraceSummary",
    "build_tree",
    "load_trace",
    "recent_traces",
    "unattached_logs",
    "valid_trace_id",
]
