"""alamos: instrumentation as a tree of experiments.

::

    import alamos

    root = alamos.new("server", db="sqlite:///alamos.db")
    cesium = root.sub("cesium")
    with cesium.trace.prod("write") as span:
        span.set("bytes", 1024)
        cesium.log.info("wrote {n} bytes", n=1024)
"""

from alamos.experiment.experiment import Experiment
from alamos.experiment.filter import Filter
from alamos.experiment.level import Level
from alamos.experiment.lifecycle import UnendedSpansError, new
from alamos.experiment.noop import NOOP
from alamos.experiment.session import DebugSession
from alamos.report.exporter import Exporter
from alamos.report.records import (
    EventRecord,
    ExperimentRecord,
    LogRecord,
    MetricRecord,
    ReportRecord,
    SpanContext,
    SpanRecord,
)
from alamos.trace import sampling
from alamos.trace.context import current_span
from alamos.trace.propagation import extract, inject
from alamos.trace.span import NoopSpan, Span

__all__ = [
    "NOOP",
    "DebugSession",
    "EventRecord",
    "Experiment",
    "ExperimentRecord",
    "Exporter",
    "Filter",
    "Level",
    "LogRecord",
    "MetricRecord",
    "NoopSpan",
    "ReportRecord",
    "Span",
    "SpanContext",
    "SpanRecord",
    "UnendedSpansError",
    "current_span",
    "extract",
    "inject",
    "new",
    "sampling",
]

__version__ = "0.1.0"
