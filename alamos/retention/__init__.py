"""alamos.retention: a retention policy (TTLs, the last N traces per
handler, errors and slowest kept longer, holds) and the garbage collection
that applies it to an alamos database in short batches.

It sits beside the export side: it imports the ground floor
(:mod:`alamos.core`) and the storage side (:mod:`alamos.report.sql`); the
tree (:mod:`alamos.experiment`) can run it in the background.
"""

import importlib
from typing import TYPE_CHECKING, Any

from alamos.core.errors import GcRunning, NothingToCollect, RetentionError
from alamos.retention.policy import KINDS, Policy, parse_duration

if TYPE_CHECKING:
    from alamos.retention.background import Background
    from alamos.retention.collect import DEFAULT_BATCH_SIZE, gc
    from alamos.retention.db import check_database
    from alamos.retention.decide import FATES, KEPT
    from alamos.retention.holds import Hold, hold, list_holds, unhold
    from alamos.retention.summary import GcSummary, HandlerCounts, Space

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "FATES",
    "KEPT",
    "KINDS",
    "Background",
    "GcRunning",
    "GcSummary",
    "HandlerCounts",
    "Hold",
    "NothingToCollect",
    "Policy",
    "RetentionError",
    "Space",
    "check_database",
    "gc",
    "hold",
    "list_holds",
    "parse_duration",
    "unhold",
]

# The rest needs SQLAlchemy, imported on first use: `import alamos` imports
# the policy (alamos.new takes one), and SQLAlchemy doubles its time.
_LAZY = {
    "Background": "background",
    "FATES": "decide",
    "KEPT": "decide",
    "DEFAULT_BATCH_SIZE": "collect",
    "gc": "collect",
    "check_database": "db",
    "Hold": "holds",
    "hold": "holds",
    "list_holds": "holds",
    "unhold": "holds",
    "GcSummary": "summary",
    "HandlerCounts": "summary",
    "Space": "summary",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'alamos.retention' has no attribute {name!r}")
    return getattr(importlib.import_module(f"alamos.retention.{module}"), name)
