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
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from alamos.core.level import Level, LevelLike, parse_level
from alamos.core.scope import LiveScope, Scope
from alamos.metrics.metric import KINDS, Counter, Gauge, Histogram, Metric

#: Registers a function to call when the tree closes; False if already closed.
OnClose = Callable[[Callable[[], None]], bool]

__all__ = ["Metrics"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Metrics:
    """Create (or get back) the metrics of one experiment."""

    __slots__ = ("_lock", "_metrics", "_names", "_on_close", "_scope", "path", "registry")

    def __init__(
        self,
        scope: LiveScope,
        registry: CollectorRegistry,
        names: CollectorRegistry,
        on_close: OnClose | None = None,
    ) -> None:
        self.path = scope.scope.path
        #: The registry of the enabled metrics (``root.registry``).
        self.registry = registry
        self._names = names
        self._on_close = on_close
        self._metrics: dict[str, Metric] = {}
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
    ) -> Counter:
        """A counter; ``counter.inc()``.  Same name twice gives the same metric."""
        return self._get("counter", name, documentation, level, labelnames, unit=unit)  # type: ignore[return-value]

    def gauge(
        self,
        name: str,
        documentation: str = "",
        *,
        level: LevelLike = "prod",
        labelnames: Sequence[str] = (),
        unit: str = "",
    ) -> Gauge:
        """A gauge; ``gauge.set(v)``."""
        return self._get("gauge", name, documentation, level, labelnames, unit=unit)  # type: ignore[return-value]

    def histogram(
        self,
        name: str,
        documentation: str = "",
        *,
        level: LevelLike = "prod",
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
        unit: str = "",
    ) -> Histogram:
        """A histogram; ``histogram.observe(v)`` or ``with histogram.time():``."""
        extra: dict[str, Any] = {}
        if buckets is not None:
            extra["buckets"] = tuple(buckets)
        return self._get("histogram", name, documentation, level, labelnames, unit=unit, **extra)  # type: ignore[return-value]

    def _get(
        self,
        kind: str,
        name: str,
        documentation: str,
        level: LevelLike,
        labelnames: Sequence[str],
        **extra: Any,
    ) -> Metric:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"invalid metric name {name!r}: use letters, digits and '_' "
                "(regex [A-Za-z_][A-Za-z0-9_]*); the experiment path is prefixed for you"
            )
        lvl = parse_level(level)
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
            metric = wrapper_cls(path, name, full, prom_obj, lvl, labelnames, self.registry)
            metric._bind(self._scope.enabled(lvl))
            self._metrics[name] = metric
            return metric

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
