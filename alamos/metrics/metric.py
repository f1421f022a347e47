"""Level-filtered wrappers around prometheus_client metrics.

An enabled metric must cost no more than prometheus_client itself.  So the
wrapper does not check its level on every call: when the filter changes, the
experiment *rebinds* the wrapper's methods, either to the prometheus
object's own bound methods (``writes.inc`` *is* ``Counter.inc``) or to a
no-op.  A call is then one instance-dict lookup plus the real call.

Cardinality limit
-----------------
A label with unbounded values (a user id, a URL) would make a metric grow
without bound: one prometheus_client child per label set, all of it walked
by every snapshot.  So a metric with labels accepts at most
``cardinality_limit`` label sets (default :data:`DEFAULT_CARDINALITY_LIMIT`,
2,000, the OpenTelemetry SDK's default); further label sets go to one
*overflow series*, whose every label is :data:`OVERFLOW_LABEL_VALUE`
(OpenTelemetry marks it ``otel.metric.overflow=true``; prometheus_client's
label names are fixed, so the value carries the mark).  As in the
OpenTelemetry SDK, the overflow series comes in addition to the limit, and
the total stays right.  Each redirected ``labels(...)`` call is counted
(``metric.overflows``, and a counter the factory exports), and the first
one logs a warning on the ``alamos`` logger.

Only ``labels(...)`` pays for it: ``counter.inc()`` stays prometheus_client's
own bound method.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import prometheus_client as prom

from alamos.core.json import REPORT_JSON
from alamos.core.level import Level

__all__ = [
    "DEFAULT_CARDINALITY_LIMIT",
    "OVERFLOW_LABEL_VALUE",
    "Counter",
    "Gauge",
    "Histogram",
    "Metric",
    "Sample",
]

Sample = dict[str, Any]

#: Label sets a metric accepts before sending new ones to its overflow series
#: (the OpenTelemetry SDK's default ``aggregation_cardinality_limit``).
DEFAULT_CARDINALITY_LIMIT = 2000

#: The value of every label of the overflow series.
OVERFLOW_LABEL_VALUE = "__overflow__"

log = logging.getLogger("alamos")


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


class _NoopTimer:
    """What ``.time()`` and ``.track_inprogress()`` give while filtered out:
    a context manager and decorator that does nothing."""

    __slots__ = ()

    def __enter__(self) -> _NoopTimer:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return fn


_NOOP_TIMER = _NoopTimer()


def _noop_timer(*args: Any, **kwargs: Any) -> _NoopTimer:
    return _NOOP_TIMER


class _NoopChild:
    """A filtered-out metric's ``.labels(...)``: every method is a no-op."""

    __slots__ = ()

    def labels(self, *args: Any, **kwargs: Any) -> _NoopChild:
        return self

    inc = dec = set = observe = set_to_current_time = staticmethod(_noop)
    time = track_inprogress = staticmethod(_noop_timer)


_NOOP_CHILD = _NoopChild()


def _noop_labels(*args: Any, **kwargs: Any) -> _NoopChild:
    return _NOOP_CHILD


class Metric:
    """Base of the wrappers.  ``metric.prometheus`` is the wrapped object."""

    kind = ""
    _methods: tuple[str, ...] = ()
    _timers: tuple[str, ...] = ()

    def __init__(
        self,
        path: str,
        name: str,
        full_name: str,
        prometheus: Any,
        level: Level,
        labelnames: Sequence[str],
        registry: Any = None,
        *,
        cardinality_limit: int = DEFAULT_CARDINALITY_LIMIT,
        on_overflow: Callable[[Metric], None] | None = None,
    ) -> None:
        self._registry = registry
        self._registered = False
        self.path = path
        self.name = name
        self.full_name = full_name
        self.prometheus = prometheus
        self.level = level
        self.labelnames = tuple(labelnames)
        #: At most this many label sets, plus the overflow series.
        self.cardinality_limit = cardinality_limit
        #: Calls of ``labels(...)`` sent to the overflow series so far.
        self.overflows = 0
        self._on_overflow = on_overflow
        self._limit_lock = threading.Lock()
        self._limited_labels = (
            self._make_labels() if self.labelnames and prometheus is not None else None
        )
        self.enabled = False
        self._bind(False)

    def _bind(self, on: bool) -> None:
        self.enabled = on
        p = self.prometheus
        for method in self._methods:
            setattr(self, method, getattr(p, method) if on else _noop)
        for method in self._timers:
            setattr(self, method, getattr(p, method) if on else _noop_timer)
        if not on:
            self.labels = _noop_labels
        else:
            # Without labelnames, prometheus_client's own labels() says why it cannot.
            limited = self._limited_labels
            self.labels = limited if limited is not None else p.labels
        # Only enabled metrics are in the tree's registry, so a filtered-out
        # metric is not exposed either (the factory keeps a second registry
        # for name clashes, whatever the level).
        registry = self._registry
        if registry is not None and on != self._registered:
            try:
                if on:
                    registry.register(p)
                else:
                    registry.unregister(p)
            except (KeyError, ValueError):  # the user put a clashing collector there
                return
            self._registered = on

    def _make_labels(self) -> Callable[..., Any]:
        """``labels(...)`` with the cardinality limit.

        The label sets already made are prometheus_client's own dict of
        children, keyed by the tuple of str values: a known label set given
        as str values costs one dict lookup, which is cheaper than
        prometheus_client's ``labels`` itself (it converts every value with
        a generator and takes a lock).  The dict is read at each call, not
        kept, because ``prometheus.clear()`` replaces it.  (A value equal to
        a str, such as a str subclass, finds that str's series.)  Anything else
        (new label set, keyword or non-str values, a wrong count) takes
        :meth:`_labels_slow`.
        """
        p = self.prometheus
        slow = self._labels_slow

        def labels(*values: object, **kw: object) -> Any:
            try:  # zero-cost when nothing is raised (3.11)
                child = p._metrics.get(values)
            except TypeError:  # an unhashable value: prometheus_client takes its str()
                child = None
            if child is not None and not kw:
                return child
            return slow(values, kw)

        return labels

    def _labels_slow(self, values: tuple[object, ...], kw: dict[str, object]) -> Any:
        p = self.prometheus
        with self._limit_lock:  # one check-then-create at a time: the limit is exact
            if len(p._metrics) < self.cardinality_limit:
                return p.labels(*values, **kw)  # validates (its own errors) and creates
            key = self._label_key(values, kw)
            if key is None:  # invalid: prometheus_client raises its own error
                return p.labels(*values, **kw)
            child = p._metrics.get(key)
            if child is not None:
                return child
            self.overflows += 1
            first = self.overflows == 1
            overflow = (OVERFLOW_LABEL_VALUE,) * len(self.labelnames)
            child = p._metrics.get(overflow) or p.labels(*overflow)
        if first:
            log.warning(
                "alamos: metric %s reached its cardinality limit of %d label sets; "
                "new label sets go to the overflow series (every label %r) from now on: "
                "drop the unbounded label or raise cardinality_limit",
                self.full_name,
                self.cardinality_limit,
                OVERFLOW_LABEL_VALUE,
            )
        hook = self._on_overflow
        if hook is not None:
            hook(self)
        return child

    def _label_key(
        self, values: tuple[object, ...], kw: dict[str, object]
    ) -> tuple[str, ...] | None:
        """prometheus_client's key for these label values, or None if it would reject them."""
        names = self.labelnames
        if kw:
            if values or sorted(kw) != sorted(names):
                return None
            return tuple(str(kw[n]) for n in names)
        if len(values) != len(names):
            return None
        return tuple(map(str, values))

    def samples(self) -> list[Sample]:
        """Current values, one dict per label set:
        ``{"labels", "value", "sum", "count", "buckets"}``."""
        if self.prometheus is None:  # a NOOP metric
            return []
        groups: dict[tuple[tuple[str, str], ...], Sample] = {}
        base = self.full_name
        for family in self.prometheus.collect():
            for s in family.samples:
                labels = {k: v for k, v in s.labels.items() if k != "le"}
                key = tuple(sorted(labels.items()))
                entry = groups.setdefault(
                    key,
                    {"labels": labels, "value": None, "sum": None, "count": None, "buckets": None},
                )
                suffix = s.name[len(base) :]
                if suffix == "_created":
                    continue
                if suffix == "_bucket":
                    if entry["buckets"] is None:
                        entry["buckets"] = {}
                    entry["buckets"][s.labels["le"]] = s.value
                elif suffix == "_sum":
                    entry["sum"] = s.value
                elif suffix == "_count":
                    entry["count"] = s.value
                else:
                    entry["value"] = s.value
        out = list(groups.values())
        for entry in out:
            if entry["value"] is None and entry["sum"] is not None:
                entry["value"] = entry["sum"]
        return out

    def summary(self) -> Any:
        """The current value for a report: a number for an unlabelled counter
        or gauge, ``{"sum", "count"}`` for a histogram, and a list of
        ``{"labels", "value"}`` entries when the metric has labels.  Values
        are JSON numbers: NaN and infinities give None (see
        :mod:`alamos.core.json`)."""
        samples = self.samples()

        def one(s: Sample) -> Any:
            if self.kind == "histogram":
                return {"sum": REPORT_JSON(s["sum"]), "count": REPORT_JSON(s["count"])}
            return REPORT_JSON(s["value"])

        if not self.labelnames:
            return one(samples[0]) if samples else None
        return [{"labels": dict(s["labels"]), "value": one(s)} for s in samples]

    def value(self, **labels: str) -> float | None:
        """The current value for ``labels`` (the sum for a histogram), or ``None``."""
        want = {k: str(v) for k, v in labels.items()}
        for s in self.samples():
            if s["labels"] == want:
                v = s["value"]
                return None if v is None or (isinstance(v, float) and math.isnan(v)) else v
        return None

    def __repr__(self) -> str:
        state = "on" if self.enabled else "off"
        return f"<{type(self).__name__} {self.full_name} {self.level} {state}>"


class Counter(Metric):
    """``counter.inc(amount=1)``; ``counter.labels(...).inc()``."""

    kind = "counter"
    _methods = ("inc",)
    _timers = ("count_exceptions",)
    inc: Callable[..., None]
    count_exceptions: Callable[..., Any]
    labels: Callable[..., Any]


class Gauge(Metric):
    """``gauge.set(v)``, ``inc``, ``dec``, ``set_to_current_time``,
    ``track_inprogress()`` and ``time()``."""

    kind = "gauge"
    _methods = ("inc", "dec", "set", "set_to_current_time")
    _timers = ("track_inprogress", "time")
    inc: Callable[..., None]
    dec: Callable[..., None]
    set: Callable[..., None]
    set_to_current_time: Callable[..., None]
    track_inprogress: Callable[..., Any]
    time: Callable[..., Any]
    labels: Callable[..., Any]


class Histogram(Metric):
    """``histogram.observe(v)`` and ``with histogram.time():``."""

    kind = "histogram"
    _methods = ("observe",)
    _timers = ("time",)
    observe: Callable[..., None]
    time: Callable[..., Any]
    labels: Callable[..., Any]


KINDS: dict[str, tuple[type[Metric], Any]] = {
    "counter": (Counter, prom.Counter),
    "gauge": (Gauge, prom.Gauge),
    "histogram": (Histogram, prom.Histogram),
}
