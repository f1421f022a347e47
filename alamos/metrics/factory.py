"""``exp.metrics``: the metric factories of one experiment.

The Prometheus name is the experiment path joined with ``_`` plus the
metric name (``server.cesium`` + ``writes`` → ``server_cesium_writes``;
prometheus_client adds ``_total`` to counters).  The whole tree shares one
:class:`prometheus_client.CollectorRegistry` (``root.registry``), so several
roots in one process never clash, and nothing touches the global registry.
Only enabled metrics are registered there (a filtered-out metric is not
exposed); a second registry, private to the tree, holds every metric so that
name clashes are caught whatever the levels.  Both are given to
:class:`Metrics` when it is built, with the experiment's
:class:`~alamos.core.scope.LiveScope`.

A metric with labels accepts at most ``cardinality_limit`` label sets
(default 2,000; see :mod:`alamos.metrics.metric`); the calls sent to its
overflow series are counted by ``<path>_alamos_label_overflows_total``
``{metric="<name>"}``, created in the same experiment on the first overflow.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from alamos.core.level import Level, LevelLike, parse_level
from alamos.core.scope import LiveScope, Scope
from alamos.metrics.metric import (
    DEFAULT_CARDINALITY_LIMIT,
    KINDS,
    Counter,
    Gauge,
    Histogram,
    Metric,
)

#: Registers a function to call when the tree closes; False if already closed.
OnClose = Callable[[Callable[[], None]], bool]

__all__ = ["Metrics"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

log = logging.getLogger("alamos")

#: The counter of calls sent to overflow series, one per experiment.
OVERFLOW_COUNTER = "alamos_label_overflows"


def _check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(
            f"invalid cardinality_limit {limit!r}: use an int >= 1 (label sets per metric; "
            f"the default is {DEFAULT_CARDINALITY_LIMIT})"
        )
    return limit


class Metrics:
    """Create (or get back) the metrics of one experiment."""

    __slots__ = (
        "_lock",
        "_metrics",
        "_names",
        "_on_close",
        "_overflow_counter",
        "_scope",
        "cardinality_limit",
        "path",
        "registry",
    )

    def __init__(
        self,
        scope: LiveScope,
        registry: CollectorRegistry,
        names: CollectorRegistry,
        on_close: OnClose | None = None,
        cardinality_limit: int = DEFAULT_CARDINALITY_LIMIT,
    ) -> None:
        self.path = scope.scope.path
        #: The registry of the enabled metrics (``root.registry``).
        self.registry = registry
        #: The limit of a metric made here without ``cardinality_limit=``.
        self.cardinality_limit = _check_limit(cardinality_limit)
        self._names = names
        self._on_close = on_close
        self._metrics: dict[str, Metric] = {}
        self._overflow_counter: Metric | None = None
        self._lock = threading.Lock()
        scope.watch(self._update)

    def counter(
        self,
        name: str,
        documentation: str = "",
        *,
        level: LevelLike = "prod",
        labelnames: Sequence[str] = (),
        unit: str = "",
        cardinality_limit: int | None = None,
    ) -> Counter:
        """A counter; ``counter.inc()``.  Same name twice gives the same metric.

        ``cardinality_limit``: label sets kept before new ones go to the
        overflow series (None: this tree's default, 2,000)."""
        return self._get(  # type: ignore[return-value]
            "counter", name, documentation, level, labelnames, cardinality_limit, unit=unit
        )

    def gauge(
        self,
        name: str,
        documentation: str = "",
        *,
        level: LevelLike = "prod",
        labelnames: Sequence[str] = (),
        unit: str = "",
        cardinality_limit: int | None = None,
        multiprocess_mode: str = "all",
    ) -> Gauge:
        """A gauge; ``gauge.set(v)``.  ``cardinality_limit`` as for :meth:`counter`.

        ``multiprocess_mode``: how prometheus_client's multiprocess mode
        (``PROMETHEUS_MULTIPROC_DIR``) combines the workers' values: ``"all"``
        (one series per process, a ``pid`` label), ``"livesum"``, ``"sum"``,
        ``"max"``, ``"min"``, ``"mostrecent"`` (and ``"live*"`` forms)."""
        return self._get(  # type: ignore[return-value]
            "gauge",
            name,
            documentation,
            level,
            labelnames,
            cardinality_limit,
            unit=unit,
            multiprocess_mode=multiprocess_mode,
        )

    def histogram(
        self,
        name: str,
        documentation: str = "",
        *,
        level: LevelLike = "prod",
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
        unit: str = "",
        cardinality_limit: int | None = None,
    ) -> Histogram:
        """A histogram; ``histogram.observe(v)`` or ``with histogram.time():``.
        ``cardinality_limit`` as for :meth:`counter`."""
        extra: dict[str, Any] = {}
        if buckets is not None:
            extra["buckets"] = tuple(buckets)
        return self._get(  # type: ignore[return-value]
            "histogram",
            name,
            documentation,
            level,
            labelnames,
            cardinality_limit,
            unit=unit,
            **extra,
        )

    def _get(
        self,
        kind: str,
        name: str,
        documentation: str,
        level: LevelLike,
        labelnames: Sequence[str],
        cardinality_limit: int | None,
        *,
        count_overflows: bool = True,
        **extra: Any,
    ) -> Metric:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"invalid metric name {name!r}: use letters, digits and '_' "
                "(regex [A-Za-z_][A-Za-z0-9_]*); the experiment path is prefixed for you"
            )
        lvl = parse_level(level)
        limit = self.cardinality_limit if cardinality_limit is None else cardinality_limit
        _check_limit(limit)
        with self._lock:
            existing = self._metrics.get(name)
            if existing is not None:
                if existing.kind != kind:
                    raise ValueError(
                        f"metric {name!r} of {self.path!r} is already a {existing.kind}; "
                        f"it cannot also be a {kind}: pick another name"
                    )
                if tuple(labelnames) and tuple(labelnames) != existing.labelnames:
                    raise ValueError(
                        f"metric {name!r} of {self.path!r} already has labelnames "
                        f"{list(existing.labelnames)}, not {list(labelnames)}: "
                        "pick another name"
                    )
                if cardinality_limit is not None and limit != existing.cardinality_limit:
                    raise ValueError(
                        f"metric {name!r} of {self.path!r} already has cardinality_limit "
                        f"{existing.cardinality_limit}, not {limit}: pick another name"
                    )
                return existing
            path = self.path
            full = path.replace(".", "_").replace("-", "_") + "_" + name
            wrapper_cls, prom_cls = KINDS[kind]
            try:
                prom_obj = prom_cls(
                    full,
                    documentation or name,
                    labelnames=tuple(labelnames),
                    registry=self._names,
                    **extra,
                )
            except ValueError as exc:
                raise ValueError(
                    f"cannot create {kind} {name!r} at {path!r} (Prometheus name "
                    f"{full!r}): {exc}. Two experiment paths can map to the same "
                    "Prometheus name ('a.b_c' and 'a_b.c'); rename one of them"
                ) from None
            metric = wrapper_cls(
                path,
                name,
                full,
                prom_obj,
                lvl,
                labelnames,
                self.registry,
                cardinality_limit=limit,
                on_overflow=self._overflowed if count_overflows else None,
            )
            metric._bind(self._scope.enabled(lvl))
            self._metrics[name] = metric
            return metric

    def _overflowed(self, metric: Metric) -> None:
        """Count one call sent to ``metric``'s overflow series (exported, so
        an operator sees it on ``/metrics`` and in the database)."""
        counter = self._overflow_counter
        if counter is None:
            try:
                # Its own label values are this experiment's metric names: few,
                # and never overflowing (no limit, and no overflow hook of its own).
                counter = self._get(
                    "counter",
                    OVERFLOW_COUNTER,
                    "Calls of labels(...) sent to a metric's overflow series (cardinality limit)",
                    "prod",
                    ["metric"],
                    sys.maxsize,
                    count_overflows=False,
                )
            except ValueError as exc:  # the user took the name: count on the metric only
                log.warning("alamos: cannot count overflows in %s: %s", self.path, exc)
                counter = _noop_metric(Counter, OVERFLOW_COUNTER, ["metric"])
            self._overflow_counter = counter
        counter.labels(metric.name).inc()

    def get(self, name: str) -> Metric | None:
        """The metric called ``name`` in this experiment, or ``None``."""
        return self._metrics.get(name)

    def __iter__(self) -> Iterator[Metric]:
        return iter(list(self._metrics.values()))

    def __len__(self) -> int:
        return len(self._metrics)

    def _update(self, scope: Scope) -> None:
        self._scope = scope
        for metric in list(self._metrics.values()):
            metric._bind(scope.enabled(metric.level))


class NoopMetrics:
    """``NOOP.metrics``: hands out metrics that are never enabled."""

    __slots__ = ()

    _on_close: OnClose | None = None

    def counter(self, name: str, documentation: str = "", **kw: Any) -> Counter:
        return _noop_metric(Counter, name, kw.get("labelnames", ()))  # type: ignore[return-value]

    def gauge(self, name: str, documentation: str = "", **kw: Any) -> Gauge:
        return _noop_metric(Gauge, name, kw.get("labelnames", ()))  # type: ignore[return-value]

    def histogram(self, name: str, documentation: str = "", **kw: Any) -> Histogram:
        return _noop_metric(Histogram, name, kw.get("labelnames", ()))  # type: ignore[return-value]

    def get(self, name: str) -> Metric | None:
        return None

    def __iter__(self) -> Iterator[Metric]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _noop_metric(cls: type[Metric], name: str, labelnames: Sequence[str]) -> Metric:
    return cls("", name, name, None, Level.PROD, labelnames)
