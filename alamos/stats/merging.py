"""Merging statistics rows: any windows, processes and nodes into one.

Rows are statistics records of either tier
(:class:`~alamos.core.records.SpanStatsRecord`, live or read back by
:func:`alamos.stats.read_stats`, and
:class:`~alamos.core.records.SpanStatsHourRecord`) or mappings with the same
keys (a row of ``alamos_span_stats`` or ``alamos_span_stats_1h`` as a dict).  The merge is exact:

* ``count``, ``errors`` and ``sum_ns`` add; ``min_ns`` and ``max_ns`` are
  the least and greatest;
* ``mean_ns`` and ``m2`` merge by the parallel formula of Chan, Golub and
  LeVeque (1979), which is Welford's update applied to a whole row::

      n = na + nb;  d = mean_b - mean_a
      mean = mean_a + d * nb / n
      m2 = m2_a + m2_b + d * d * na * nb / n

* the DDSketches merge bin by bin (a quantile of the merge is within the
  sketch's relative error, 1%, of the true quantile of all the spans);
* the attribute statistics merge like the durations, name by name.

So five 60-second rows re-aggregate into the 5-minute figures, and those
equal the figures computed over the raw spans (to float rounding: see
``tests/stats``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from alamos.core.records import SpanStatsBase
from alamos.stats.sketch import BinSum, quantile

__all__ = ["AttributeStats", "Moments", "SpanStats", "combine", "group_by", "merge"]

Row = SpanStatsBase | Mapping[str, Any]
K = TypeVar("K", bound=Hashable)


def _get(row: Row, name: str) -> Any:
    if isinstance(row, SpanStatsBase):
        return getattr(row, name)
    return row[name]


def combine(
    na: float, mean_a: float, m2_a: float, nb: float, mean_b: float, m2_b: float
) -> tuple[float, float]:
    """The mean and m2 of two parts (Chan et al.'s parallel formula): the
    one merge of means and m2 of the package, rows and live groups alike."""
    n = na + nb
    if nb == 0:
        return mean_a, m2_a
    if na == 0:
        return mean_b, m2_b
    delta = mean_b - mean_a
    return mean_a + delta * nb / n, m2_a + m2_b + delta * delta * na * nb / n


class Moments:
    """count, sum, mean, m2, min, max of float values, merged part by part:
    a live group's attribute (:mod:`alamos.stats.groups`) and the merge of
    rows' attributes (:func:`merge`)."""

    __slots__ = ("count", "m2", "max", "mean", "min", "sum")

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0.0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf

    @classmethod
    def of(cls, stored: Mapping[str, Any]) -> Moments:
        """The moments a row stores (``{"count", "sum", "mean", "m2", "min", "max"}``)."""
        out = cls()
        out.count = int(stored["count"])
        out.sum = float(stored["sum"])
        out.mean = float(stored["mean"])
        out.m2 = float(stored["m2"])
        out.min = float(stored["min"])
        out.max = float(stored["max"])
        return out

    def add_all(self, values: Sequence[float]) -> None:
        n = len(values)
        total = math.fsum(values)
        mean = total / n
        m2 = math.fsum([(v - mean) ** 2 for v in values])
        self._combine(n, total, mean, m2)
        self.min = min(self.min, min(values))
        self.max = max(self.max, max(values))

    def _combine(self, n: int, total: float, mean: float, m2: float) -> None:
        self.mean, self.m2 = combine(self.count, self.mean, self.m2, n, mean, m2)
        self.count += n
        self.sum += total

    def merge(self, other: Moments) -> None:
        self._combine(other.count, other.sum, other.mean, other.m2)
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def as_dict(self) -> dict[str, float]:
        return {
            "count": self.count,
            "sum": self.sum,
            "mean": self.mean,
            "m2": self.m2,
            "min": self.min,
            "max": self.max,
        }


@attrs.frozen
class AttributeStats:
    """count, sum, mean, m2, min and max of one numeric span attribute."""

    count: int
    sum: float
    mean: float
    m2: float
    min: float
    max: float

    @property
    def stddev(self) -> float:
        """The population standard deviation, ``sqrt(m2 / count)``."""
        return math.sqrt(self.m2 / self.count) if self.count else math.nan


@attrs.frozen
class SpanStats:
    """The statistics of some spans: what :func:`merge` returns."""

    count: int
    errors: int
    sum_ns: int
    mean_ns: float
    m2: float
    min_ns: int | None
    max_ns: int | None
    sketch: Any = attrs.field(eq=False, repr=False)
    """A ``ddsketch`` sketch of the durations (ns)."""
    attributes: Mapping[str, AttributeStats]
    rows: int
    """How many rows were merged."""

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0

    @property
    def variance(self) -> float:
        """The population variance of the durations, ``m2 / count`` (ns²)."""
        return self.m2 / self.count if self.count else math.nan

    @property
    def stddev_ns(self) -> float:
        """``sqrt(variance)``: the population standard deviation (ns)."""
        return math.sqrt(self.variance) if self.count else math.nan

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile of the durations (ns), within 1% (relative)."""
        return quantile(self.sketch, q)


def merge(rows: Iterable[Row]) -> SpanStats:
    """All of ``rows`` as one :class:`SpanStats` (see the module docstring).
    Rows of any groups may be merged: the result is the statistics of all
    their spans.  No rows give a count of 0."""
    count = errors = total = n_rows = 0
    mean = m2 = 0.0
    low: int | None = None
    high: int | None = None
    # Summed as bin counts (BinSum), not decoded and merged by ddsketch: the
    # same bins, so the same quantiles (tests/stats/test_binsum.py); 350 rows
    # (1 h of scripts/dashboard_bench.py) summarised in 67 -> 9 ms.
    sketches = BinSum()
    attrs_acc: dict[str, Moments] = {}
    for row in rows:
        n = int(_get(row, "count"))
        if n <= 0:
            continue
        n_rows += 1
        mean, m2 = combine(count, mean, m2, n, float(_get(row, "mean_ns")), float(_get(row, "m2")))
        count += n
        errors += int(_get(row, "errors"))
        total += int(_get(row, "sum_ns"))
        lo, hi = int(_get(row, "min_ns")), int(_get(row, "max_ns"))
        low = lo if low is None else min(low, lo)
        high = hi if high is None else max(high, hi)
        sketches.add_text(_get(row, "sketch"))
        for name, a in (_get(row, "attributes") or {}).items():
            _merge_attribute(attrs_acc, name, a)
    return SpanStats(
        count=count,
        errors=errors,
        sum_ns=total,
        mean_ns=mean,
        m2=m2,
        min_ns=low,
        max_ns=high,
        sketch=sketches.sketch(),
        attributes={
            name: AttributeStats(m.count, m.sum, m.mean, m.m2, m.min, m.max)
            for name, m in sorted(attrs_acc.items())
        },
        rows=n_rows,
    )


def _merge_attribute(acc: dict[str, Moments], name: str, a: Mapping[str, Any]) -> None:
    if float(a["count"]) <= 0:
        return
    part = Moments.of(a)
    held = acc.get(name)
    if held is None:
        acc[name] = part
    else:
        held.merge(part)


def group_by(rows: Iterable[Row], key: Callable[[Row], K]) -> dict[K, SpanStats]:
    """``rows`` merged per ``key(row)`` (for example ``lambda r: (r.path, r.name)``),
    in the order the keys first appear."""
    parts: dict[K, list[Row]] = {}
    for row in rows:
        parts.setdefault(key(row), []).append(row)
    return {k: merge(v) for k, v in parts.items()}
