"""Live span statistics, kept on the collector's worker.

:class:`LiveStats` is the tree's statistics observer: the worker shows it
every batch of records it builds (:meth:`LiveStats.observe`), and asks it
for rows at the end of each window, at every flush and at close
(:meth:`LiveStats.emit`).  It never runs on an instrumented thread.

Spans are grouped by ``(path, name, status, level)`` and by the window of
``window_ns`` their *start* falls in (windows are aligned on the epoch, so
rows of every process line up).  Each group keeps, exactly, the count and
the sum and sum of squares of the integer durations (Python integers do not
round), the minimum and maximum, the DDSketch bin counts, and for each
attribute named in ``attributes`` the count, sum, mean, m2, min and max of
its numeric values (Welford's method in its batch form: each batch's
two-pass mean and m2, merged into the running ones by the parallel formula).

A group is emitted as a :class:`~alamos.core.records.SpanStatsRecord` once
its window has ended (``emit(now)``), or at once at a flush or close
(``emit()``), and forgotten: a span of the same group that arrives later
starts a new row of the same window.  Rows of one window merge exactly
(:func:`alamos.stats.merge`), so splitting a window costs nothing but a row.

Why batch-wise: the whole-process cost of a recorded span is about 4 us, and
the statistics must add at most 15% to it.  ``DDSketch.add`` alone costs
1.3 us a value, a Python loop step with a dict lookup about 0.2 us; so the
work per span is done by C-level ``map``/``sum``/``min``/``max``/``Counter``
calls over each batch's lists, and only the grouping is a Python loop (none
when a batch holds one group; a loop over the distinct groups, each picked
with ``itertools.compress``, when it holds a few).
"""

from __future__ import annotations

import math
import operator
import os
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from itertools import compress, repeat
from typing import Any

from alamos.core.level import Level
from alamos.core.records import Record, SpanRecord, SpanStatsRecord
from alamos.stats.sketch import Bins, encode, positive_keys

__all__ = ["DEFAULT_INTERVAL", "LiveStats"]

#: ``stats_interval``'s default: one row per group a minute.
DEFAULT_INTERVAL = 60.0

_GroupKey = tuple[str, str, str, Level]
_key_of = operator.attrgetter("path", "name", "status", "level")
_start_of = operator.attrgetter("start_ns")
_end_of = operator.attrgetter("end_ns")
#: Above this many groups in one batch, spans are grouped by a dict loop
#: rather than one ``compress`` pass per group.
_FEW_GROUPS = 6


class _Moments:
    """count, sum, mean, m2, min, max of float values, merged batch by batch."""

    __slots__ = ("count", "m2", "max", "mean", "min", "sum")

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0.0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add_all(self, values: Sequence[float]) -> None:
        n = len(values)
        total = math.fsum(values)
        mean = total / n
        m2 = math.fsum([(v - mean) ** 2 for v in values])
        # Chan, Golub and LeVeque's parallel formula (Welford's update for a batch).
        count = self.count + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * n / count
        self.mean += delta * n / count
        self.count = count
        self.sum += total
        self.min = min(self.min, min(values))
        self.max = max(self.max, max(values))

    def as_dict(self) -> dict[str, float]:
        return {
            "count": self.count,
            "sum": self.sum,
            "mean": self.mean,
            "m2": self.m2,
            "min": self.min,
            "max": self.max,
        }


class _Group:
    """What is kept for one group in one window."""

    __slots__ = ("attrs", "count", "keys", "max", "min", "sum", "sumsq", "zero")

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0
        self.sumsq = 0
        self.min: int | None = None
        self.max: int | None = None
        self.keys: Counter[int] = Counter()
        self.zero = 0
        self.attrs: dict[str, _Moments] = {}

    def add_all(self, durations: list[int]) -> None:
        smallest, largest = min(durations), max(durations)
        self.count += len(durations)
        self.sum += sum(durations)
        self.sumsq += sum(map(operator.mul, durations, durations))
        self.min = smallest if self.min is None else min(self.min, smallest)
        self.max = largest if self.max is None else max(self.max, largest)
        if smallest <= 0:  # a clock stepped back, or a 0 ns span: bin 0
            self.zero += sum(1 for d in durations if d <= 0)
            durations = [d for d in durations if d > 0]
        self.keys.update(positive_keys(durations))

    def add_attributes(self, spans: Iterable[SpanRecord], names: Sequence[str]) -> None:
        values: dict[str, list[float]] = {}
        for span in spans:
            attributes = span.attributes
            for name in names:
                v = attributes.get(name)
                # bool is an int, and not a measure; NaN and infinities are not counted.
                if type(v) is int or (type(v) is float and math.isfinite(v)):
                    values.setdefault(name, []).append(v)
        for name, vals in values.items():
            moments = self.attrs.get(name)
            if moments is None:
                moments = self.attrs[name] = _Moments()
            moments.add_all(vals)


class LiveStats:
    """The statistics of one tree (see the module docstring).

    ``origin()`` gives the ``(service, node)`` to stamp on rows (the node
    changes in a forked child).  Every method runs on the collector's worker.
    """

    def __init__(
        self,
        window_ns: int,
        origin: Callable[[], tuple[str, str]],
        attributes: Sequence[str] = (),
    ) -> None:
        if window_ns <= 0:
            raise ValueError(f"the statistics window must be > 0 ns (got {window_ns})")
        self.window_ns = window_ns
        self.attribute_names = tuple(attributes)
        self._origin = origin
        self._groups: dict[tuple[int, _GroupKey], _Group] = {}
        self._new_run()

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
        self._new_run()

    def __len__(self) -> int:
        """Groups held now (not emitted yet)."""
        return len(self._groups)

    # -- observing -----------------------------------------------------------

    def observe(self, records: Sequence[Record]) -> None:
        """Count the finished spans of ``records`` (the rest is ignored)."""
        if os.getpid() != self._pid:
            self._after_fork()
        spans = [r for r in records if type(r) is SpanRecord]
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
        grouped: dict[tuple[int, _GroupKey], list[int]] = {}
        members: dict[tuple[int, _GroupKey], list[SpanRecord]] = {}
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
            group = self._group(window_start, key)
            group.add_all(durs)
            if keep_spans:
                group.add_attributes(members[(window_start, key)], self.attribute_names)

    def _group(self, window: int, key: _GroupKey) -> _Group:
        group = self._groups.get((window, key))
        if group is None:
            group = self._groups[(window, key)] = _Group()
        return group

    def _add(
        self,
        window: int,
        key: _GroupKey,
        durations: list[int],
        spans: list[SpanRecord],
        mask: list[bool] | None = None,
    ) -> None:
        group = self._group(window, key)
        group.add_all(durations)
        if self.attribute_names:
            chosen = spans if mask is None else compress(spans, mask)
            group.add_attributes(chosen, self.attribute_names)

    # -- emitting ------------------------------------------------------------

    def emit(self, now_ns: int | None = None) -> list[SpanStatsRecord]:
        """Rows for the groups whose window ended by ``now_ns`` (every group
        if ``None``: a flush or close), which are then forgotten."""
        if os.getpid() != self._pid:
            self._after_fork()
        w = self.window_ns
        if now_ns is None:
            done = list(self._groups)
        else:
            done = [gk for gk in self._groups if gk[0] + w <= now_ns]
        if not done:
            return []
        service, node = self._origin()
        out = []
        for gk in sorted(done, key=_order):
            group = self._groups.pop(gk)
            out.append(self._record(gk, group, service, node))
        return out

    def _record(
        self, gk: tuple[int, _GroupKey], group: _Group, service: str, node: str
    ) -> SpanStatsRecord:
        window_start, (path, name, status, level) = gk
        n, total = group.count, group.sum
        bins = Bins(group.keys, group.zero)
        self._seq += 1
        assert group.min is not None and group.max is not None  # a group holds a span
        return SpanStatsRecord(
            id=f"{self._run}{self._seq:016x}",
            window_start_ns=window_start,
            window_ns=self.window_ns,
            path=path,
            name=name,
            status=status,
            level=level,
            count=n,
            errors=n if status == "error" else 0,
            sum_ns=total,
            mean_ns=total / n,
            # Exact integers, one rounding: the sum of squared deviations.
            m2=(n * group.sumsq - total * total) / n,
            min_ns=group.min,
            max_ns=group.max,
            sketch=encode(bins.sketch()),
            attributes={k: m.as_dict() for k, m in sorted(group.attrs.items())},
            service=service,
            node=node,
        )


def _order(gk: tuple[int, _GroupKey]) -> tuple[Any, ...]:
    window, (path, name, status, level) = gk
    return (window, path, name, status, int(level))
