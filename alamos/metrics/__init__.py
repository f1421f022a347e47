"""alamos.metrics: level-filtered prometheus_client metrics (``exp.metrics``),
:func:`serve` to expose a tree's metrics over HTTP, and :func:`asgi_app` to
mount them in an ASGI application (the multi-worker way, with
``PROMETHEUS_MULTIPROC_DIR``: see :mod:`alamos.metrics.exposition`)."""

from alamos.metrics.exposition import asgi_app, multiprocess_dir
from alamos.metrics.metric import Counter, Gauge, Histogram, Metric
from alamos.metrics.serve import MetricsServer, serve

__all__ = [
    "Counter",
    "Gauge",
    "Histogram",
    "Metric",
    "MetricsServer",
    "asgi_app",
    "multiprocess_dir",
    "serve",
]
