"""The retention policy: what garbage collection deletes and what it keeps.

A :class:`Policy` is a frozen value; :func:`alamos.retention.gc` applies it to
a database.  Durations are given as ``"7d"`` (also ``500ms``, ``30s``,
``10m``, ``2h``, ``1.5d``, ``1w``), a :class:`datetime.timedelta` or a number
of seconds, and stored as integer nanoseconds; ``None`` means "forever".

The unit of spans and logs is the **trace**: a trace is deleted whole, when
every one of its spans is older than its level's TTL and every one of its
logs older than the logs' TTL, and no rule keeps it.  So ``levels={"debug": "1d"}``
deletes the traces made only of debug spans and logs after a day, while a
prod trace keeps its debug children as long as it lives: a trace is never
cut in half.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs

from alamos.core.duration import duration_seconds
from alamos.core.level import Level, parse_level

__all__ = ["KINDS", "Duration", "Nanoseconds", "Policy", "parse_duration"]

#: What a duration may be given as.
Duration = str | timedelta | int | float

#: The kinds of data a policy gives a TTL, each with its own field.
KINDS = ("spans", "logs", "metrics", "reports", "statistics")

#: Durations are capped at 100 years: "forever" in all but name, and
#: ``now - ttl`` stays well inside a signed 64-bit integer (BIGINT).
_MAX_NS = 100 * 365 * 86400 * 10**9


class Nanoseconds(int):
    """A duration already converted to nanoseconds: what a :class:`Policy`
    stores.  Converting it again keeps it as it is, so that
    ``attrs.evolve(policy, ...)``, which runs every converter again on the
    stored values, does not read nanoseconds as seconds."""

    __slots__ = ()


def parse_duration(value: Duration, what: str = "duration") -> int:
    """``value`` as a whole number of nanoseconds, at least 0 (a
    :class:`Nanoseconds`, which passes through unchanged).

    Raises :class:`ValueError` naming ``what`` and the accepted forms.
    """
    if isinstance(value, Nanoseconds):
        return value
    if isinstance(value, bool):
        raise ValueError(f"invalid {what} {value!r}: expected e.g. '7d', a timedelta or seconds")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = duration_seconds(value, what)
    else:
        raise TypeError(f"{what} must be a str like '7d', a timedelta or seconds, not {value!r}")
    if not seconds >= 0:  # also NaN
        raise ValueError(f"invalid {what} {value!r}: a duration cannot be negative")
    return Nanoseconds(min(int(seconds * 1e9), _MAX_NS))


def _ns(value: Duration | None, what: str) -> int | None:
    return None if value is None else parse_duration(value, what)


def _to_ttl(value: Duration | None) -> int | None:
    return _ns(value, "ttl")


def _to_spans_ttl(value: Duration | None) -> int | None:
    return _ns(value, "spans TTL")


def _to_logs_ttl(value: Duration | None) -> int | None:
    return _ns(value, "logs TTL")


def _to_metrics_ttl(value: Duration | None) -> int | None:
    return _ns(value, "metrics TTL")


def _to_reports_ttl(value: Duration | None) -> int | None:
    return _ns(value, "reports TTL")


def _to_statistics_ttl(value: Duration | None) -> int | None:
    return _ns(value, "statistics TTL")


def _to_keep_errors(value: Duration | None) -> int | None:
    return _ns(value, "keep_errors")


def _to_keep_last(value: int) -> int:
    return _count(value, "keep_last")


def _to_keep_slowest(value: int) -> int:
    return _count(value, "keep_slowest")


def _levels(value: Mapping[Any, Duration | None] | None) -> tuple[tuple[Level, int | None], ...]:
    if not value:
        return ()
    if not isinstance(value, Mapping):
        try:
            value = dict(value)  # pairs, as the policy stores them
        except (TypeError, ValueError):
            raise TypeError(
                f"levels must be a mapping of level to duration, not {value!r}"
            ) from None
    out = {
        parse_level(level): None if ttl is None else parse_duration(ttl, f"{level} TTL")
        for level, ttl in value.items()
    }
    return tuple(sorted(out.items()))


def _count(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {value!r}")
    if value < 0:
        raise ValueError(f"{what} must be 0 or more (got {value})")
    return value


@attrs.frozen(slots=True)
class Policy:
    """What :func:`alamos.retention.gc` keeps.

    * ``ttl``: the time to live of every kind not given its own (``None``:
      kept forever);
    * ``spans``, ``logs``, ``metrics`` (metric samples), ``reports``,
      ``statistics`` (the analysis tables): a kind's own TTL;
    * ``levels``: a TTL per level, e.g. ``{"debug": "1d"}``, for the spans
      and the logs of that level (a log's level counts as the level it is
      exported at: TRACE as bench, DEBUG as debug, INFO and up as prod);
    * ``keep_last``: the last N traces of every handler are kept whatever
      their age (a handler is the ``(service, path, name)`` of a trace's root
      span; "last" by the root's start);
    * ``keep_errors``: a trace with a span in error lives this long (from its
      last span's end) if that is longer than its TTL;
    * ``keep_slowest``: the N slowest traces of every handler (by the root
      span's duration) are kept;
    * ``keep_spikes``: traces with a frame flagged as a spike (the
      ``alamos_spikes`` table, when present) are kept while the flag is.

    Holds (:func:`alamos.retention.hold`) always apply.  Negative counts and
    bad durations raise :class:`ValueError`.
    """

    ttl: int | None = attrs.field(default=None, converter=_to_ttl)
    spans: int | None = attrs.field(default=None, converter=_to_spans_ttl)
    logs: int | None = attrs.field(default=None, converter=_to_logs_ttl)
    metrics: int | None = attrs.field(default=None, converter=_to_metrics_ttl)
    reports: int | None = attrs.field(default=None, converter=_to_reports_ttl)
    statistics: int | None = attrs.field(default=None, converter=_to_statistics_ttl)
    levels: tuple[tuple[Level, int | None], ...] = attrs.field(default=(), converter=_levels)
    keep_last: int = attrs.field(default=0, converter=_to_keep_last)
    keep_errors: int | None = attrs.field(default=None, converter=_to_keep_errors)
    keep_slowest: int = attrs.field(default=0, converter=_to_keep_slowest)
    keep_spikes: bool = True

    def ttl_of(self, kind: str) -> int | None:
        """The TTL of ``kind`` (one of :data:`KINDS`) in ns; ``None``: forever."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
        own: int | None = getattr(self, kind)
        return own if own is not None else self.ttl

    def span_ttl(self, level: Level) -> int | None:
        """The TTL of a span of ``level``: its level's, else the spans'."""
        return self.level_ttl(level, "spans")

    def level_ttl(self, level: Level, kind: str) -> int | None:
        """The TTL of a span or log (``kind``) of ``level``: the level's if
        :attr:`levels` gives one, else the kind's."""
        for lv, ttl in self.levels:
            if lv is level:
                return ttl
        return self.ttl_of(kind)
