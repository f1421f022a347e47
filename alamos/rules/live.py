"""Recording rules, live: series fed by every finished span, on the worker.

A :class:`RuleEngine` is a collector observer
(:class:`alamos.report.pipeline.collector.Observer`, wired by
:mod:`alamos.experiment.rules`): it sees each batch of records the worker
builds, off the instrumented threads, and adds every span to the series of
the rules it matches.  The series are:

* on ``/metrics``: the engine is a prometheus_client collector registered in
  the tree's registry (``root.registry``); each rule is one metric family
  named exactly as the rule says (no experiment prefix: a rule is not an
  experiment's metric), counters with ``_total``;
* in the database: :meth:`RuleEngine.changed` and :meth:`RuleEngine.full`
  give :class:`~alamos.core.records.MetricRecord` snapshots, taken with the
  metric snapshots (the changed series every ``metrics_interval``, every
  series at each flush and at close), stored in ``alamos_metrics`` with the
  tree's root path, service and node.

Values are cumulative from the tree's start, like a Prometheus counter.
Durations are added as integer nanoseconds and divided by 1e9 only when a
value is read, so the value does not depend on the order spans were added in
(which is what lets a backfill give the same value: see
:mod:`alamos.rules.backfill`).

Cardinality limit (the OpenTelemetry SDK's rule): a rule keeps at most
``max_series`` label sets; a span whose label set would be one more goes to
the rule's one overflow series, whose labels are the rule's constant
``labels`` plus ``overflow="true"`` (its group-by labels are dropped, as
OpenTelemetry drops every attribute and adds ``otel.metric.overflow=true``),
so totals stay right.  Each span sent there is counted in
``alamos_rule_overflow_total{rule="<metric>"}``, and the first one of a rule
logs a warning.  (``alamos.metrics`` marks its overflow series by setting
every label to ``"__overflow__"`` instead, because a prometheus_client
metric's label names are fixed; a rule writes its own series, so it can use
OpenTelemetry's form.)

After a fork the child starts from zero (its spans are its own; the parent
keeps exporting its own counts).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from time import time_ns
from types import MappingProxyType
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from alamos.core import process
from alamos.core.ids import new_record_id
from alamos.core.level import Level
from alamos.core.records import MetricRecord, Record, SpanRecord
from alamos.rules.names import OVERFLOW_METRIC, family_name
from alamos.rules.rule import Rule, RuleSet, bucket_index
from alamos.rules.values import numeric

__all__ = ["OVERFLOW_LABELS", "RuleEngine", "Series", "series_values"]

log = logging.getLogger("alamos")

#: The label the overflow series carries (with the rule's constant labels).
OVERFLOW_LABELS = (("overflow", "true"),)

_LEVEL_NAMES = {lvl: str(lvl) for lvl in Level}


class Series:
    """One series' running totals: ``count`` spans, ``total`` (duration in
    integer ns, or the attribute's sum), per-bucket counts (histograms; not
    cumulative, the last one is ``+Inf``), and whether it changed since the
    last snapshot."""

    __slots__ = ("buckets", "count", "dirty", "total")

    def __init__(self, buckets: int) -> None:
        self.count = 0
        self.total: int | float = 0
        self.buckets: list[int] | None = [0] * (buckets + 1) if buckets else None
        self.dirty = True


Values = tuple[float, float | None, float | None, dict[str, float] | None]


def series_values(rule: Rule, s: Series) -> Values:
    """``(value, sum, count, buckets)`` of a series as a metric row stores them
    (``buckets`` cumulative ``{"le": count}``, as prometheus_client names them)."""
    agg = rule.aggregation
    if agg == "count":
        return float(s.count), None, None, None
    if agg == "duration_sum":
        return s.total / 1e9, None, None, None
    if agg == "duration_histogram":
        seconds = s.total / 1e9
        cumulative: dict[str, float] = {}
        running = 0
        counts = s.buckets or []
        for bound, n in zip((*rule.bucket_bounds, math.inf), counts, strict=True):
            running += n
            cumulative[_le(bound)] = float(running)
        return seconds, seconds, float(s.count), cumulative
    return float(s.total), None, None, None


def _le(bound: float) -> str:
    """A bucket's ``le`` label as prometheus_client writes it."""
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return text


class _Live:
    """One rule's live state; ``add(record, level name)`` is built per rule
    so that a span pays only for what its rule does."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.label_names = rule.label_names
        self.extra = tuple(rule.labels)
        self.nbuckets = len(rule.bucket_bounds) if rule.kind == "histogram" else 0
        self.series: dict[tuple[str, ...], Series] = {}
        self.overflow: Series | None = None
        self.overflowed = 0
        self.overflow_exported = 0
        self.add = self._make_add()

    def reset(self) -> None:
        self.series.clear()  # the same dict: add() holds it
        self.overflow = None
        self.overflowed = self.overflow_exported = 0

    def _make_add(self) -> Callable[[SpanRecord, str], None]:
        rule = self.rule
        match, key_of = rule.compiled()
        series = self.series
        limit = rule.max_series
        nbuckets = self.nbuckets
        bounds_ns = rule.bucket_ns()
        duration = rule.aggregation in ("duration_sum", "duration_histogram")
        attribute = rule.sum_attribute
        new = self._new

        def add(r: SpanRecord, level: str) -> None:
            a = r.attributes
            if match is not None and not match(r.path, r.name, level, r.status, a):
                return
            key = key_of(r.path, r.name, level, r.status, a)
            s = series.get(key)
            if s is None:
                s = new(key) if len(series) < limit else self._to_overflow()
            s.dirty = True
            s.count += 1
            if duration:
                d = r.end_ns - r.start_ns
                s.total += d
                if nbuckets:
                    s.buckets[bucket_index(bounds_ns, d)] += 1  # type: ignore[index]
            elif attribute is not None:
                v = numeric(a.get(attribute))
                if v is not None:
                    s.total += v

        return add

    def _new(self, key: tuple[str, ...]) -> Series:
        s = self.series[key] = Series(self.nbuckets)
        return s

    def _to_overflow(self) -> Series:
        self.overflowed += 1
        if self.overflow is None:
            self.overflow = Series(self.nbuckets)
            log.warning(
                "alamos: recording rule %s reached its limit of %d series; new label sets go "
                'to its overflow series {overflow="true"} from now on (counted in %s_total): '
                "drop the unbounded group_by label or raise max_series",
                self.rule.metric,
                self.rule.max_series,
                OVERFLOW_METRIC,
            )
        return self.overflow

    def labels_of(self, key: tuple[str, ...] | None) -> dict[str, str]:
        if key is None:
            return {**dict(self.extra), **dict(OVERFLOW_LABELS)}
        return {**dict(zip(self.label_names, key, strict=True)), **dict(self.extra)}

    def items(self) -> Iterator[tuple[dict[str, str], Series]]:
        """Every series with its labels, the overflow series last."""
        for key, s in list(self.series.items()):
            yield self.labels_of(key), s
        if self.overflow is not None:
            yield self.labels_of(None), self.overflow


class RuleEngine:
    """The live series of a :class:`~alamos.rules.rule.RuleSet` for one tree
    (see the module docstring).  Thread-safe: the worker adds spans and
    takes snapshots, ``/metrics`` collects from its own thread."""

    def __init__(self, rules: RuleSet, *, path: str) -> None:
        self.rules = rules
        #: The ``path`` of the snapshot rows: the tree's root path.
        self.path = path
        self._live = [_Live(rule) for rule in rules]
        self._lock = threading.Lock()
        process.track(self, process.Hooks(after_fork_in_child=RuleEngine._after_fork))

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        for live in self._live:
            live.reset()

    # -- the observer ---------------------------------------------------------------

    def observe(self, records: Sequence[Record]) -> None:
        """Add every finished span of ``records`` (other records are ignored)."""
        adds = [live.add for live in self._live]
        names = _LEVEL_NAMES
        with self._lock:  # once per batch
            for r in records:
                if type(r) is SpanRecord:
                    level = names.get(r.level) or str(r.level)
                    for add in adds:
                        add(r, level)

    # -- reading ----------------------------------------------------------------------

    def value(self, metric: str, **labels: str) -> float | None:
        """The value of ``metric``'s series with exactly ``labels`` (a
        histogram's sum), or None."""
        with self._lock:
            for live in self._live:
                if live.rule.metric != metric:
                    continue
                for got, s in live.items():
                    if got == labels:
                        return series_values(live.rule, s)[0]
        return None

    def overflows(self, metric: str) -> int:
        """Spans sent to ``metric``'s overflow series so far."""
        return sum(live.overflowed for live in self._live if live.rule.metric == metric)

    def changed(self, service: str, node: str) -> list[MetricRecord]:
        """Snapshot rows of the series changed since the last snapshot."""
        return self._records(service, node, full=False)

    def full(self, service: str, node: str) -> list[MetricRecord]:
        """Snapshot rows of every series."""
        return self._records(service, node, full=True)

    def _records(self, service: str, node: str, *, full: bool) -> list[MetricRecord]:
        ts = time_ns()
        out: list[MetricRecord] = []

        def row(name: str, kind: str, labels: dict[str, str], values: tuple[Any, ...]) -> None:
            value, total, count, buckets = values
            out.append(
                MetricRecord(
                    new_record_id(),
                    ts,
                    self.path,
                    name,
                    kind,
                    MappingProxyType(labels),
                    value,
                    total,
                    count,
                    None if buckets is None else MappingProxyType(buckets),
                    service,
                    node,
                    Level.PROD,
                )
            )

        with self._lock:
            for live in self._live:
                rule = live.rule
                for labels, s in live.items():
                    if full or s.dirty:
                        row(rule.metric, rule.kind, labels, series_values(rule, s))
                    s.dirty = False
                if live.overflowed and (full or live.overflowed != live.overflow_exported):
                    row(
                        OVERFLOW_METRIC,
                        "counter",
                        {"rule": rule.metric},
                        (float(live.overflowed), None, None, None),
                    )
                live.overflow_exported = live.overflowed
        return out

    # -- prometheus_client collector (root.registry) --------------------------------

    def describe(self) -> list[Metric]:
        """The families, without samples (the registry checks names with it)."""
        out = [_family(live.rule) for live in self._live]
        out.append(Metric(OVERFLOW_METRIC, _OVERFLOW_HELP, "counter"))
        return out

    def collect(self) -> list[Metric]:
        """The current value of every series (``/metrics``)."""
        out: list[Metric] = []
        overflow = Metric(OVERFLOW_METRIC, _OVERFLOW_HELP, "counter")
        with self._lock:
            for live in self._live:
                rule = live.rule
                family = _family(rule)
                for labels, s in live.items():
                    value, total, count, buckets = series_values(rule, s)
                    if buckets is None:
                        family.add_sample(family.name + "_total", labels, value)
                        continue
                    for le, n in buckets.items():
                        family.add_sample(rule.metric + "_bucket", {**labels, "le": le}, n)
                    family.add_sample(rule.metric + "_count", labels, float(count or 0))
                    family.add_sample(rule.metric + "_sum", labels, float(total or 0))
                out.append(family)
                if live.overflowed:
                    overflow.add_sample(
                        OVERFLOW_METRIC + "_total", {"rule": rule.metric}, float(live.overflowed)
                    )
        if overflow.samples:
            out.append(overflow)
        return out


_OVERFLOW_HELP = "Spans a recording rule sent to its overflow series (cardinality limit)"


def _family(rule: Rule) -> Metric:
    doc = rule.help or f"alamos recording rule: {rule.aggregation} of matching spans"
    if rule.kind == "histogram":
        return Metric(rule.metric, doc, "histogram")
    return Metric(family_name(rule.metric), doc, "counter")
