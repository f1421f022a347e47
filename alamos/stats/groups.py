"""What the live statistics keep per group and window, and the row built from it.

:class:`Group` holds, exactly, the count and the sum and sum of squares of
the integer durations (Python integers do not round), the minimum and
maximum, the DDSketch bin counts, and for each attribute named in
``stats_attributes`` a :class:`~alamos.stats.merging.Moments`.  :meth:`Group.merge` adds another
group of the same key into it: that is how the hourly tier
(:mod:`alamos.stats.hours`) sums the window groups, once per group and
window, never per span.  Everything but the attribute moments adds exactly,
so an hour row's count, sum, minimum, maximum, m2 and bins are those of its
spans; the attribute moments merge by the parallel formula, with the
same :class:`~alamos.stats.merging.Moments` that :func:`alamos.stats.merge`
merges rows' attributes with.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TypeVar

from alamos.core.level import Level
from alamos.core.records import SpanRecord, SpanStatsBase
from alamos.stats.merging import Moments
from alamos.stats.sketch import Bins, encode, positive_keys

__all__ = ["Group", "GroupKey", "group_order"]

S = TypeVar("S", bound=SpanStatsBase)

#: ``(path, name, status, level)``: what a row's spans share besides the window.
GroupKey = tuple[str, str, str, Level]


def group_order(held: tuple[int, GroupKey]) -> tuple[object, ...]:
    """The sort key of a held ``(window or hour start, key)``: rows are
    emitted by start, path, name, status and level."""
    start, (path, name, status, level) = held
    return (start, path, name, status, int(level))


class Group:
    """What is kept for one group in one window (or hour)."""

    __slots__ = ("attrs", "count", "keys", "max", "min", "sum", "sumsq", "zero")

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0
        self.sumsq = 0
        self.min: int | None = None
        self.max: int | None = None
        self.keys: Counter[int] = Counter()
        self.zero = 0
        self.attrs: dict[str, Moments] = {}

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
                moments = self.attrs[name] = Moments()
            moments.add_all(vals)

    def merge(self, other: Group) -> None:
        """Add ``other`` (a group of the same key, emitted) into this one."""
        assert other.min is not None and other.max is not None  # an emitted group holds a span
        self.count += other.count
        self.sum += other.sum
        self.sumsq += other.sumsq
        self.min = other.min if self.min is None else min(self.min, other.min)
        self.max = other.max if self.max is None else max(self.max, other.max)
        self.keys.update(other.keys)
        self.zero += other.zero
        for name, moments in other.attrs.items():
            mine = self.attrs.get(name)
            if mine is None:
                self.attrs[name] = moments
            else:
                mine.merge(moments)

    def row(
        self,
        cls: type[S],
        row_id: str,
        window_start_ns: int,
        window_ns: int,
        key: GroupKey,
        service: str,
        node: str,
    ) -> S:
        """The row of class ``cls`` (a tier's record) holding this group."""
        path, name, status, level = key
        n, total = self.count, self.sum
        assert self.min is not None and self.max is not None  # a group holds a span
        return cls(
            id=row_id,
            window_start_ns=window_start_ns,
            window_ns=window_ns,
            path=path,
            name=name,
            status=status,
            level=level,
            count=n,
            errors=n if status == "error" else 0,
            sum_ns=total,
            mean_ns=total / n,
            # Exact integers, one rounding: the sum of squared deviations.
            m2=(n * self.sumsq - total * total) / n,
            min_ns=self.min,
            max_ns=self.max,
            sketch=encode(Bins(self.keys, self.zero).sketch()),
            attributes={k: m.as_dict() for k, m in sorted(self.attrs.items())},
            service=service,
            node=node,
        )
