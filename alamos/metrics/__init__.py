"""alamos.metrics: level-filtered prometheus_client metrics (``exp.metrics``),
and :func:`serve` to expose a tree's metrics over HTTP."""

from alamos.metrics.metric import Counter, Gauge, Histogram, Metric
from alamos.metrics.serve import MetricsServer, serve

__all__ = ["Counter", "Gauge", "Histogram", "Metric", "MetricsServer", "serve"]
