"""alamos: instrumentation as a tree of experiments.

::

    import alamos

    root = alamos.new("server", db="sqlite:///alamos.db")
    cesium = root.sub("cesium")
    with cesium.trace.prod("write") as span:
        span.set("bytes", 1024)
        cesium.log.info("wrote {n} bytes", n=1024)

The layering
------------
Data flows one way: instrument → record → collector → delivery → exporter →
database, and imports follow the same direction (import-linter contracts in
``pyproject.toml`` enforce it, ``lint-imports`` runs in CI):

1. ``alamos.core``, the ground floor, imports nothing else from alamos:
   levels, records, span context, ids, safe values, the exporter protocol,
   the hand-off queue, errors, process-wide state.
2. The instruments ``alamos.trace``, ``alamos.log`` and ``alamos.metrics``,
   and the export side ``alamos.report`` (``pipeline``: collector, delivery,
   spool; ``sql``: the SQL exporter; ``query``: reading traces back), import
   only the ground floor, and not each other (``report.query`` reads through
   ``report.sql``).  The analysis, ``alamos.stats`` and ``alamos.rules``, and
   ``alamos.retention`` sit on the same layer: they see records on the
   collector's worker as observers, and read or trim the database through
   ``report.sql``.  An instrument gets its scope when it is built (a
   :class:`~alamos.core.scope.Scope`, the hand-off's ``put``, callbacks), never
   the tree.
3. ``alamos.experiment``, the composition root, is the only package that
   imports all of the above: it reads the configuration, builds the pipeline
   and the tree.
4. ``alamos.testing``, ``alamos.asgi`` and ``alamos.httpx`` sit on top of
   it, then ``alamos.demo`` (which runs on the integrations), then
   ``alamos.cli``.
"""

from typing import TYPE_CHECKING, Any

from alamos.core.context import SpanContext
from alamos.core.errors import (
    AlamosError,
    MetricsPortInUse,
    RecordsRejected,
    RetentionError,
    RulesError,
    SchemaVersionError,
    TraceQueryError,
    UnendedSpansError,
)
from alamos.core.exporter import Exporter
from alamos.core.level import Level
from alamos.core.records import (
    EventRecord,
    ExperimentRecord,
    LogRecord,
    MetricRecord,
    ReportRecord,
    SpanRecord,
)
from alamos.experiment.experiment import Experiment
from alamos.experiment.filter import Filter
from alamos.experiment.lifecycle import new
from alamos.experiment.noop import NOOP
from alamos.experiment.session import DebugSession
from alamos.report.pipeline.stats import CloseResult
from alamos.trace import sampling
from alamos.trace.propagation import extract, inject
from alamos.trace.span import NoopSpan, Span, current_span

if TYPE_CHECKING:
    from alamos.report.sql import SQLExporter

__all__ = [
    "NOOP",
    "AlamosError",
    "CloseResult",
    "DebugSession",
    "EventRecord",
    "Experiment",
    "ExperimentRecord",
    "Exporter",
    "Filter",
    "Level",
    "LogRecord",
    "MetricRecord",
    "MetricsPortInUse",
    "NoopSpan",
    "RecordsRejected",
    "ReportRecord",
    "RetentionError",
    "RulesError",
    "SQLExporter",
    "SchemaVersionError",
    "Span",
    "SpanContext",
    "SpanRecord",
    "TraceQueryError",
    "UnendedSpansError",
    "current_span",
    "extract",
    "inject",
    "new",
    "sampling",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # alamos.SQLExporter is imported on first use: SQLAlchemy doubles the
    # time of `import alamos` (180 ms to 320 ms here), and a tree without a
    # database never needs it.
    if name == "SQLExporter":
        from alamos.report.sql import SQLExporter

        return SQLExporter
    raise AttributeError(f"module 'alamos' has no attribute {name!r}")
