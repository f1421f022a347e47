"""The records alamos collects and exports.

Every record is a small frozen attrs class with slots.  They are built off
the hot path: a span queues itself when it ends and the collector's worker
turns it into a :class:`SpanRecord`, so the instrumented thread never pays
for the record (see ``alamos/report/pipeline/collector.py``).

Every record class names the table it goes to (``table``), its kind
(``record_kind``: ``"span"``, ``"log"``..., the tag of the spool codec and of
the testing dicts) and the level it is exported at (``export_level``), so
exporters can route "by level" without knowing each kind.  All times are
integer nanoseconds since the epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import attrs

from alamos.core.codegen import compile_function
from alamos.core.context import SpanContext
from alamos.core.level import Level, log_export_level

__all__ = [
    "EventRecord",
    "ExperimentRecord",
    "LogRecord",
    "LogStatsRecord",
    "MetricRecord",
    "Record",
    "ReportRecord",
    "SpanRecord",
    "SpanStatsBase",
    "SpanStatsHourRecord",
    "SpanStatsRecord",
    "new_log_record",
    "new_span_record",
]

AttrValue = str | bool | int | float | tuple[Any, ...]

R = TypeVar("R")


class _Built:
    """A record is already what a queued item becomes (see
    :class:`alamos.core.handoff.Item`): the collector takes records and
    finished spans or log items alike."""

    __slots__ = ()

    def to_record(self: R, service: str, node: str) -> R:
        return self


class _Leveled(_Built):
    """A record exported at its own ``level`` field."""

    __slots__ = ()

    level: Level

    @property
    def export_level(self) -> Level:
        return self.level


@attrs.frozen(slots=True)
class EventRecord:
    """A point in time inside a span (``span.event("flushed", pages=3)``)."""

    name: str
    ts_ns: int
    attributes: Mapping[str, AttrValue]


@attrs.frozen(slots=True)
class SpanRecord(_Leveled):
    """A finished span."""

    table: ClassVar[str] = "alamos_spans"
    record_kind: ClassVar[str] = "span"

    trace_id: str
    span_id: str
    parent_id: str | None
    path: str
    name: str
    level: Level
    start_ns: int
    end_ns: int
    status: str
    error_text: str | None
    attributes: Mapping[str, AttrValue]
    events: tuple[EventRecord, ...]
    service: str
    node: str
    session_id: str | None = None
    location: str | None = None

    @property
    def context(self) -> SpanContext:
        return SpanContext(self.trace_id, self.span_id)

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def id(self) -> str:
        return self.span_id


@attrs.frozen(slots=True)
class LogRecord(_Built):
    """One log call (``exp.log.info(...)``) or a captured loguru record."""

    table: ClassVar[str] = "alamos_logs"
    record_kind: ClassVar[str] = "log"

    id: str
    ts_ns: int
    path: str
    level: str
    """A loguru level name: TRACE, DEBUG, INFO, SUCCESS, WARNING, ERROR, CRITICAL."""
    message: str
    trace_id: str | None
    span_id: str | None
    attributes: Mapping[str, AttrValue]
    location: str | None
    service: str
    node: str
    session_id: str | None = None

    @property
    def export_level(self) -> Level:
        return log_export_level(self.level)


@attrs.frozen(slots=True)
class MetricRecord(_Leveled):
    """One sample of one metric (one label set) at ``ts_ns``.

    Counters and gauges fill ``value``; histograms fill ``sum``, ``count`` and
    ``buckets`` (cumulative ``{"le": count}``) and leave ``value`` as ``sum``.
    """

    table: ClassVar[str] = "alamos_metrics"
    record_kind: ClassVar[str] = "metric"

    id: str
    ts_ns: int
    path: str
    name: str
    kind: str
    labels: Mapping[str, str]
    value: float | None
    sum: float | None
    count: float | None
    buckets: Mapping[str, float] | None
    service: str
    node: str
    level: Level = Level.PROD


@attrs.frozen(slots=True)
class ReportRecord(_Leveled):
    """The output of one attached report provider at ``ts_ns``."""

    table: ClassVar[str] = "alamos_reports"
    record_kind: ClassVar[str] = "report"

    id: str
    ts_ns: int
    path: str
    key: str
    report: Mapping[str, Any]
    service: str
    node: str
    level: Level = Level.PROD


@attrs.frozen(slots=True)
class ExperimentRecord(_Built):
    """An experiment, recorded once when it is created."""

    table: ClassVar[str] = "alamos_experiments"
    record_kind: ClassVar[str] = "experiment"

    path: str
    parent_path: str | None
    key: str
    service: str
    node: str
    created_ns: int

    @property
    def export_level(self) -> Level:
        return Level.PROD

    @property
    def id(self) -> str:
        return self.path


@attrs.frozen(slots=True)
class SpanStatsBase(_Leveled):
    """Statistics of the spans of one ``(path, name, status, level)`` that
    started in one window (``[window_start_ns, window_start_ns + window_ns)``),
    as one process saw them between two emissions (see :mod:`alamos.stats`):
    the fields shared by the minute rows (:class:`SpanStatsRecord`) and the
    hour rows (:class:`SpanStatsHourRecord`).  Code that reads statistics of
    any tier (:func:`alamos.stats.merge`) takes this class; code that means
    one tier checks for that tier's class, so an hour row is never taken for
    a minute row (an attrs record is only equal to one of its own class).

    Durations are integer nanoseconds: ``sum_ns``, ``min_ns`` and ``max_ns``
    are exact; ``mean_ns`` and ``m2`` (the sum of squared deviations from
    the mean, "sqDiff") are floats.  ``sketch`` is a DDSketch of the
    durations (protobuf, base64).  ``attributes`` holds, for each numeric
    attribute named in ``stats_attributes``, ``{"count", "sum", "mean",
    "m2", "min", "max"}``.  ``id`` is fixed when the record is built, so a
    replay from the spool stores nothing twice.
    """

    id: str
    window_start_ns: int
    window_ns: int
    path: str
    name: str
    status: str
    level: Level
    count: int
    errors: int
    sum_ns: int
    mean_ns: float
    m2: float
    min_ns: int
    max_ns: int
    sketch: str
    attributes: Mapping[str, Any]
    service: str
    node: str


@attrs.frozen(slots=True)
class SpanStatsRecord(SpanStatsBase):
    """A row of the statistics window (``stats_interval``, a minute by
    default): see :class:`SpanStatsBase`."""

    table: ClassVar[str] = "alamos_span_stats"
    record_kind: ClassVar[str] = "span_stats"


@attrs.frozen(slots=True)
class SpanStatsHourRecord(SpanStatsBase):
    """A row of the hourly tier (``window_ns`` is an hour): the window rows
    of one group and hour summed by the live statistics when they are
    emitted, so that a long window reads 24 rows a day instead of 1,440
    (see docs/stats.md, "Tiers")."""

    table: ClassVar[str] = "alamos_span_stats_1h"
    record_kind: ClassVar[str] = "span_stats_1h"


@attrs.frozen(slots=True)
class LogStatsRecord(_Built):
    """How many logs of one ``(path, level)`` one process recorded in one
    statistics window (by their ``ts_ns``) between two emissions.  ``level``
    is the loguru level name, as in ``alamos_logs.level``; the row is
    exported at the level of the logs it counts, so a database gets the
    counts of the logs it stores.  ``id`` is fixed when the record is built."""

    table: ClassVar[str] = "alamos_log_stats"
    record_kind: ClassVar[str] = "log_stats"

    id: str
    window_start_ns: int
    window_ns: int
    path: str
    level: str
    count: int
    service: str
    node: str

    @property
    def export_level(self) -> Level:
        return log_export_level(self.level)


Record = (
    SpanRecord
    | LogRecord
    | MetricRecord
    | ReportRecord
    | ExperimentRecord
    | SpanStatsRecord
    | SpanStatsHourRecord
    | LogStatsRecord
)


T = TypeVar("T")


def _fast_constructor(cls: type[T]) -> Callable[..., T]:
    """A positional constructor for the frozen slots class ``cls``, taking
    every field in order (no defaults).

    The attrs ``__init__`` of a frozen class calls ``object.__setattr__`` per
    field (a plain ``self.x = x`` would raise); this sets each slot through its
    member descriptor instead, about a quarter faster.  The record is the same
    (equal, hashed and frozen alike): these classes have no validators,
    converters or post-init to skip.  Used by the collector's worker, which
    builds one record per span or log.
    """
    names = [a.name for a in attrs.fields(cls)]  # type: ignore[arg-type]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    body = ["    self = _new(_cls)"]
    for name in names:
        namespace[f"_set_{name}"] = cls.__dict__[name].__set__
        body.append(f"    _set_{name}(self, {name})")
    fname = f"new_{cls.__name__}"
    source = f"def {fname}({', '.join(names)}):\n" + "\n".join(body) + "\n    return self\n"
    return compile_function(fname, source, namespace, owner=__name__)


#: ``SpanRecord(...)`` with every field given, positionally, faster.
new_span_record: Callable[..., SpanRecord] = _fast_constructor(SpanRecord)
#: ``LogRecord(...)`` with every field given, positionally, faster.
new_log_record: Callable[..., LogRecord] = _fast_constructor(LogRecord)
