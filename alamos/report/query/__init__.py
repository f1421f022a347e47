"""alamos.report.query: reading traces back out of the database.

``recent_traces`` lists traces, ``load_trace`` loads one trace's spans and
logs, and ``build_tree`` arranges them into a tree of :class:`TraceNode`
(``trace_tree``).  ``budget_report`` and its companions (``budgets``) analyse
frames in the database: time per budget, top offenders, spikes; the spike
flags are stored and read back by ``store_spikes``, ``spike_traces`` and
``stored_spikes`` (``spikes``).  It sits on
the storage side (:mod:`alamos.report.sql`).
"""

from alamos.core.errors import TraceQueryError
from alamos.report.query.budget_map import BudgetMap
from alamos.report.query.budget_rows import (
    DEFAULT_TOP,
    BudgetReport,
    BudgetStats,
    FrameBudget,
    FrameRow,
    FrameStats,
    Offender,
    merge_offenders,
)
from alamos.report.query.budgets import budget_report, frame_budgets
from alamos.report.query.spikes import (
    DEFAULT_SPIKE_FACTOR,
    DEFAULT_SPIKE_WINDOW,
    StoredSpike,
    frames_of,
    spike_traces,
    store_spikes,
    stored_spikes,
)
from alamos.report.query.trace_tree import TraceNode, build_tree, unattached_logs
from alamos.report.query.traces import (
    TraceSummary,
    load_trace,
    recent_traces,
    valid_trace_id,
)

__all__ = [
    "DEFAULT_SPIKE_FACTOR",
    "DEFAULT_SPIKE_WINDOW",
    "DEFAULT_TOP",
    "BudgetMap",
    "BudgetReport",
    "BudgetStats",
    "FrameBudget",
    "FrameRow",
    "FrameStats",
    "Offender",
    "StoredSpike",
    "TraceNode",
    "TraceQueryError",
    "TraceSummary",
    "budget_report",
    "build_tree",
    "frame_budgets",
    "frames_of",
    "load_trace",
    "merge_offenders",
    "recent_traces",
    "spike_traces",
    "store_spikes",
    "stored_spikes",
    "unattached_logs",
    "valid_trace_id",
]
