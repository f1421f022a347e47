"""What ``/metrics`` shows: one process's tree, or every worker's sum.

* :func:`asgi_app` is an ASGI app answering with the exposition text, to
  mount in the application itself (``app.mount("/metrics", asgi_app(root))``):
  no second port, so any number of workers can serve it.
* :func:`exposition_registry` is what both :func:`asgi_app` and
  :func:`alamos.metrics.serve` expose: the tree's own registry
  (``root.registry``), or, in prometheus_client's **multiprocess mode**, a
  registry aggregating the metric files of every process.

Multiprocess mode is prometheus_client's: set ``PROMETHEUS_MULTIPROC_DIR`` to
an empty directory *before* Python starts (prometheus_client reads it when
it is imported), and every process using the same directory writes its
values to files there; a scrape of any worker then sums (counters,
histograms) or combines (gauges, per their ``multiprocess_mode``) the
values of all of them.  :func:`multiprocess_dir` says whether it is on.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, GCCollector, ProcessCollector, make_asgi_app
from prometheus_client import values as prom_values

__all__ = [
    "ENV_MULTIPROC",
    "HasRegistry",
    "MetricsApp",
    "add_process_collectors",
    "asgi_app",
    "exposition_registry",
    "multiprocess_dir",
]

#: prometheus_client's switch for multiprocess mode (a directory).
ENV_MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"


class HasRegistry(Protocol):
    """What these functions need of an experiment: its tree's registry."""

    @property
    def registry(self) -> CollectorRegistry: ...


def multiprocess_dir() -> str | None:
    """The directory of prometheus_client's multiprocess mode, or ``None``
    when it is off.  Raises :class:`RuntimeError` when the variable is set but
    came too late (after prometheus_client was imported, so this process's
    values are not written there)."""
    path = os.environ.get(ENV_MULTIPROC) or os.environ.get(ENV_MULTIPROC.lower())
    active = prom_values.ValueClass is not prom_values.MutexValue
    if path and not active:
        raise RuntimeError(
            f"{ENV_MULTIPROC}={path} was set after prometheus_client was imported, so this "
            "process does not write its metrics there: set it in the environment before "
            f"Python starts (e.g. `{ENV_MULTIPROC}=/tmp/metrics uvicorn app:app --workers 4`)"
        )
    return path if active else None


def exposition_registry(root: HasRegistry) -> CollectorRegistry:
    """The registry ``/metrics`` exposes for ``root``'s tree: ``root.registry``,
    or in multiprocess mode a registry summing every process's metric files
    (the tree's process and GC collectors are per process, and left out)."""
    path = multiprocess_dir()
    if path is None:
        return root.registry
    from prometheus_client.multiprocess import MultiProcessCollector

    if not os.path.isdir(path):
        raise RuntimeError(
            f"{ENV_MULTIPROC}={path} is not a directory: create it (empty) before the workers start"
        )
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return registry


class MetricsApp:
    """The ASGI app of :func:`asgi_app`: an object, not a function, so that
    Starlette's ``Route`` and FastAPI's ``add_route`` treat it as an ASGI app
    (a plain function would be taken for a request handler)."""

    __slots__ = ("_app", "registry")

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._app = make_asgi_app(registry=registry)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)


def asgi_app(root: HasRegistry) -> MetricsApp:
    """An ASGI app serving the metrics of ``root``'s tree (every path answers
    with the exposition text, gzip if the client asks; prometheus_client's
    ``make_asgi_app``).  Route it in your application::

        app.add_route("/metrics", alamos.metrics.asgi_app(root))   # FastAPI, Starlette
        app.mount("/metrics", alamos.metrics.asgi_app(root))       # answers /metrics/

    In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), whichever worker
    answers shows the sum of all of them."""
    return MetricsApp(exposition_registry(root))


def add_process_collectors(registry: CollectorRegistry) -> None:
    """Add prometheus_client's process (CPU, memory, open files, start time:
    ``process_*``, Linux only) and garbage-collector (``python_gc_*``)
    collectors to ``registry``; ``alamos.new(..., process_metrics=False)``
    leaves them out.  A collector whose names are taken is skipped."""
    for make in (ProcessCollector, GCCollector):
        try:
            make(registry=registry)
        except ValueError:  # a clashing name in this registry already
            continue
