"""``exp.metrics``: the metric factories of one experiment.

The Prometheus name is the experiment path joined with ``_`` plus the
metric name (``server.cesium`` + ``writes`` → ``server_cesium_writes``;
prometheus_client adds ``_total`` to counters).  The whole tree shares one
:class:`prometheus_client.CollectorRegistry` (``root.registry``), so several
roots in one process never clash, and nothing touches the global registry.
Only enabled metrics are registered there (a filtered-out metric is not
exposed); a second, private registry (``RootState.metric_names``) holds every
metric of the tree so that name clashes are caught whatever the levels.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from alamos.core.level import LevelLike, parse_level
from alamos.metrics.metric import KINDS, Counter, Gauge, Histogram, Metric

if TYPE_CHECKING:
    from alamos.experiment.experiment import Experiment

__all__ = ["Metrics"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Metrics:
    """Create (or get back) the metrics of one experiment."""

    __slots__ = ("_exp", "_lock", "_metrics")

    def __init__(self, exp: Experiment) -> None:
        self._exp = exp
        self._metrics: dict[str, Metric] = {}
        self._lock = threading.Lock()

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
                        f"metric {name!r} of {self._exp.path!r} is already a {existing.kind}; "
                        f"it cannot also be a {kind}: pick another name"
                    )
                if tuple(labelnames) and tuple(labelnames) != existing.labelnames:
                    raise ValueError(
                        f"metric {name!r} of {self._exp.path!r} already has labelnames "
                        f"{list(existing.labelnames)}, not {list(labelnames)}: "
                        "pick another name"
                    )
                return existing
            exp = self._exp
            full = exp.path.replace(".", "_").replace("-", "_") + "_" + name
            wrapper_cls, prom_cls = KINDS[kind]
            try:
                prom_obj = prom_cls(
                    full,
                    documentation or name,
                    labelnames=tuple(labelnames),
                    registry=exp._root_state.metric_names,
                    **extra,
                )
            except ValueError as exc:
                raise ValueError(
                    f"cannot create {kind} {name!r} at {exp.path!r} (Prometheus name "
                    f"{full!r}): {exc}. Two experiment paths can map to the same "
                    "Prometheus name ('a.b_c' and 'a_b.c'); rename one of them"
                ) from None
            metric = wrapper_cls(
                exp.path, name, full, prom_obj, lvl, labelnames, exp._root_state.registry
            )
            metric._bind(exp._enabled(lvl))
            self._metrics[name] = metric
            return metric

    def get(self, name: str) -> Metric | None:
        """The metric called ``name`` in this experiment, or ``None``."""
        return self._metrics.get(name)

    def __iter__(self) -> Iterator[Metric]:
        return iter(list(self._metrics.values()))

    def __len__(self) -> int:
        return len(self._metrics)

    def _refresh(self) -> None:
        exp = self._exp
        for metric in list(self._metrics.values()):
            metric._bind(exp._enabled(metric.level))


class NoopMetrics:
    """``NOOP.metrics``: hands out metrics that are never enabled."""

    __slots__ = ()

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

    def _refresh(self) -> None:
        return None


def _noop_metric(cls: type[Metric], name: str, labelnames: Sequence[str]) -> Metric:
    from alamos.core.level import Level

    return cls("", name, name, None, Level.PROD, labelnames)
