"""Live statistics of spans and logs, kept on the collector's worker.

:class:`LiveStats` is the tree's statistics observer: the worker shows it
every batch of records it builds (:meth:`LiveStats.observe`), and asks it
for rows at the end of each window, at every flush (:meth:`LiveStats.emit`)
and at close (:meth:`LiveStats.close`).  It never runs on an instrumented
thread.

Spans are grouped by ``(path, name, status, level)`` and by the window of
``window_ns`` their *start* falls in (windows are aligned on the epoch, so
rows of every process line up); what a group keeps is in
:mod:`alamos.stats.groups` (exact count, sum, sum of squares, extremes and
sketch bins, and the moments of the attributes named in ``attributes``).
Logs are counted by ``(path, level)`` and the window their ``ts_ns`` falls
in (the level as stored in ``alamos_logs.level``).

A group is emitted as a :class:`~alamos.core.records.SpanStatsRecord` once
its window has ended (``emit(now)``), or at once at a flush or close
(``emit()``), and forgotten: a span of the same group that arrives later
starts a new row of the same window.  Rows of one window merge exactly
(:func:`alamos.stats.merge`), so splitting a window costs nothing but a row.
Log counts are emitted at the same moments, as
:class:`~alamos.core.records.LogStatsRecord` rows (several rows of one
window and key add up).

The hourly tier (:mod:`alamos.stats.hours`): each emitted group is also
summed into its hour, and a
:class:`~alamos.core.records.SpanStatsHourRecord` is emitted per group once
its hour has ended (``emit(now)``; a flush emits none) and at close (the
part of the hour seen).  Only when the window divides an hour (60 s, the
default, does); otherwise there is no hour tier.

Why batch-wise: the whole-process cost of a recorded span is about 4 us, and
the statistics must add at most 15% to it.  ``DDSketch.add`` alone costs
1.3 us a value, a Python loop step with a dict lookup about 0.2 us; so the
work per span is done by C-level ``map``/``sum``/``min``/``max``/``Counter``
calls over each batch's lists, and only the grouping is a Python loop (none
when a batch holds one group; a loop over the distinct groups, each picked
with ``itertools.compress``, when it holds a few).  Logs are counted the
same way (one ``Counter.update`` over the batch's keys), and the hour tier
works per emitted group, never per span.
"""

from __future__ import annotations

import operator
import os
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from itertools import compress, repeat

from alamos.core.records import (
    LogRecord,
    LogStatsRecord,
    Record,
    SpanRecord,
    SpanStatsHourRecord,
    SpanStatsRecord,
)
from alamos.stats.groups import Group, GroupKey, group_order
from alamos.stats.hours import HourTier, hour_tier_fits

__all__ = ["DEFAULT_INTERVAL", "LiveStats", "StatsRow"]

#: What :class:`LiveStats` emits.
StatsRow = SpanStatsRecord | SpanStatsHourRecord | LogStatsRecord

#: ``stats_interval``'s default: one row per group a minute.
DEFAULT_INTERVAL = 60.0

_key_of = operator.attrgetter("path", "name", "status", "level")
_start_of = operator.attrgetter("start_ns")
_end_of = operator.attrgetter("end_ns")
_log_key_of = operator.attrgetter("path", "level")
_ts_of = operator.attrgetter("ts_ns")
_path_of = operator.attrgetter("path")
_level_of = operator.attrgetter("level")
#: Above this many groups in one batch, spans are grouped by a dict loop
#: rather than one ``compress`` pass per group.
_FEW_GROUPS = 6


class LiveStats:
    """The statistics of one tree (see the module docstring).

    ``origin()`` gives the ``(service, node)`` to stamp on rows (the node
    changes in a forked child).  ``hours``: keep the hourly tier if the
    window divides an hour (:func:`~alamos.stats.hours.hour_tier_fits`;
    ``hour_tier`` says whether it is kept).  Every method runs on the
    collector's worker.
    """

    def __init__(
        self,
        window_ns: int,
        origin: Callable[[], tuple[str, str]],
        attributes: Sequence[str] = (),
        *,
        hours: bool = True,
    ) -> None:
        if window_ns <= 0:
            raise ValueError(f"the statistics window must be > 0 ns (got {window_ns})")
        self.window_ns = window_ns
        self.attribute_names = tuple(attributes)
        self._origin = origin
        self._groups: dict[tuple[int, GroupKey], Group] = {}
        #: Logs counted by (window start, path, level).
        self._logs: Counter[tuple[int, str, str]] = Counter()
        self._hours = HourTier(self._next_id) if hours and hour_tier_fits(window_ns) else None
        self._new_run()

    @property
    def hour_tier(self) -> bool:
        """Whether hour rows are kept and emitted."""
        return self._hours is not None

    def _new_run(self) -> None:
        # Row ids: this run's random 64 bits, then the row's number in the run.
        self._run = f"{random.getrandbits(64):016x}"
        self._seq = 0
        self._pid = os.getpid()

    def _after_fork(self) -> None:
        """In a forked child: the parent emits what it holds, the child
        starts afresh.  Checked by pid once per batch and emission (not a
        fork hook: the tree's worker is the only caller, and is restarted in
        the child)."""
        self._groups = {}
        self._logs = Counter()
        if self._hours is not None:
            self._hours.clear()
        self._new_run()

    def _next_id(self) -> str:
        self._seq += 1
        return f"{self._run}{self._seq:016x}"

    def __len__(self) -> int:
        """Span groups held now in their windows (not emitted yet); log
        counts and hours are not counted."""
        return len(self._groups)

    # -- observing -----------------------------------------------------------

    def observe(self, records: Sequence[Record]) -> None:
        """Count the finished spans and the logs of ``records`` (the rest is ignored)."""
        if os.getpid() != self._pid:
            self._after_fork()
        spans = [r for r in records if type(r) is SpanRecord]
        if len(spans) != len(records):  # a second pass only for a batch not all spans
            logs = [r for r in records if type(r) is LogRecord]
            if logs:
                self._count_logs(logs)
        if not spans:
            return
        starts = list(map(_start_of, spans))
        durations = list(map(operator.sub, map(_end_of, spans), starts))
        keys = list(map(_key_of, spans))
        w = self.window_ns
        lo, hi = min(starts), max(starts)
        if lo // w == hi // w:  # the common case: the whole batch in one window
            window = lo - lo % w
            # list.count compares by identity first (a tree's path, name and
            # status strings and its levels are shared objects): cheaper than
            # hashing every key, 44 ns a span, when the batch is one group.
            if keys.count(keys[0]) == len(keys):
                self._add(window, keys[0], durations, spans)
                return
            distinct = dict.fromkeys(keys)
            if len(distinct) <= _FEW_GROUPS:
                for key in distinct:
                    mask = list(map(operator.eq, keys, repeat(key)))
                    self._add(window, key, list(compress(durations, mask)), spans, mask)
                return
            windows: Iterable[int] = repeat(window)
        else:
            windows = [s - s % w for s in starts]
        grouped: dict[tuple[int, GroupKey], list[int]] = {}
        members: dict[tuple[int, GroupKey], list[SpanRecord]] = {}
        keep_spans = bool(self.attribute_names)
        for window_start, key, duration, span in zip(windows, keys, durations, spans, strict=False):
            gk = (window_start, key)
            held = grouped.get(gk)
            if held is None:
                grouped[gk] = [duration]
                if keep_spans:
                    members[gk] = [span]
            else:
                held.append(duration)
                if keep_spans:
                    members[gk].append(span)
        for (window_start, key), durs in grouped.items():
            self._add(window_start, key, durs, members.get((window_start, key), []))

    def _add(
        self,
        window: int,
        key: GroupKey,
        durations: list[int],
        spans: list[SpanRecord],
        mask: list[bool] | None = None,
    ) -> None:
        """Count ``durations`` (and the attributes of ``spans``, of those
        ``mask`` picks if given) into the group of ``key`` in ``window``."""
        group = self._groups.get((window, key))
        if group is None:
            group = self._groups[(window, key)] = Group()
        group.add_all(durations)
        if self.attribute_names:
            chosen = spans if mask is None else compress(spans, mask)
            group.add_attributes(chosen, self.attribute_names)

    def _count_logs(self, logs: list[LogRecord]) -> None:
        # Per log: an attribute read, min/max and one Counter step over a
        # (path, level) tuple, all C-level.  Measured (timeit, batches of 512
        # logs, noisy 2-core VM): observe went from 20 to 205 ns a log, about
        # half of it the Counter of the tuples; a log costs the whole process
        # about 3.2 us end to end.
        w = self.window_ns
        stamps = list(map(_ts_of, logs))
        lo, hi = min(stamps), max(stamps)
        if lo // w == hi // w:  # the common case: one window, counted by (path, level)
            window = lo - lo % w
            counted = self._logs
            for (path, level), n in Counter(map(_log_key_of, logs)).items():
                counted[(window, path, level)] += n
        else:
            windows = [t - t % w for t in stamps]
            paths = map(_path_of, logs)
            self._logs.update(zip(windows, paths, map(_level_of, logs), strict=True))

    # -- emitting ------------------------------------------------------------

    def emit(self, now_ns: int | None = None) -> list[StatsRow]:
        """Rows for the span groups and log counts whose window ended by
        ``now_ns`` (every one if ``None``: a flush), which are then forgotten,
        and the hour rows of the hours that ended by ``now_ns`` (none at a
        flush: an hour's row is written once it has ended, or at close)."""
        if os.getpid() != self._pid:
            self._after_fork()
        w = self.window_ns
        if now_ns is None:
            done = list(self._groups)
            logs_done = list(self._logs)
        else:
            done = [gk for gk in self._groups if gk[0] + w <= now_ns]
            logs_done = [lk for lk in self._logs if lk[0] + w <= now_ns]
        hours = self._hours
        if not done and not logs_done and (now_ns is None or not hours):
            return []
        service, node = self._origin()
        out: list[StatsRow] = []
        for gk in sorted(done, key=group_order):
            group = self._groups.pop(gk)
            window, key = gk
            out.append(group.row(SpanStatsRecord, self._next_id(), window, w, key, service, node))
            if hours is not None:
                hours.add(window, key, group)
        logs = self._logs
        for window, path, level in sorted(logs_done):
            n = logs.pop((window, path, level))
            out.append(LogStatsRecord(self._next_id(), window, w, path, level, n, service, node))
        if hours is not None and now_ns is not None:
            out += hours.ended(now_ns, service, node)
        return out

    def close(self) -> list[StatsRow]:
        """Every row held, the part of the current hour included: what the
        worker asks for once at close, after its last drain."""
        out = self.emit()
        if self._hours is not None and len(self._hours):
            service, node = self._origin()
            out += self._hours.take_all(service, node)
        return out
