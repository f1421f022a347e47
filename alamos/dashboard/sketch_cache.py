"""Summed sketches kept between requests: a statistics window's rows are
read and decoded once, not at every page load.

A *unit* is the rows of one path, statistics window, service, node and
level (the finest grain the pages filter or group by).  The dashboard keeps
each unit's summed bins (compact: ``array('d')``), keyed by the unit and
checked against the rows the database has for it now (how many, and how
many spans): a row written since (a late span, another process) makes the
unit stale, and it is read again.  So a page over 24 h reads the sketches of
the minutes it has not seen, and sums the units it has (a few us each).

Measured with scripts/dashboard_bench.py (1,000,000 spans, 8,289 statistics
rows over 24 h): see docs/dashboard.md for the first and the following loads.

The cache belongs to one :class:`~alamos.dashboard.db.Database` (no
process-wide state); it holds at most :data:`MAX_UNITS` units (least
recently used dropped first: about 0.5 KB each, so 40 MB at most).
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from collections.abc import Hashable

import attrs

__all__ = ["MAX_UNITS", "SketchCache", "Summed"]

#: Units kept (7 days of one path, service, node and level is 10,080).
MAX_UNITS = 100_000


@attrs.frozen
class Summed:
    """A unit's summed bins: counts of keys ``low``, ``low + 1``...; the
    zero count; ``check`` what the database held when it was read."""

    check: tuple[int, int]
    low: int
    counts: array  # type: ignore[type-arg]
    zero: float


class SketchCache:
    """Units' summed bins, least recently used dropped past ``max_units``."""

    def __init__(self, max_units: int = MAX_UNITS) -> None:
        self.max_units = max_units
        self._units: OrderedDict[Hashable, Summed] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, unit: Hashable, check: tuple[int, int]) -> Summed | None:
        with self._lock:
            held = self._units.get(unit)
            if held is None or held.check != check:
                self.misses += 1
                return None
            self._units.move_to_end(unit)
            self.hits += 1
            return held

    def put(self, unit: Hashable, summed: Summed) -> None:
        with self._lock:
            self._units[unit] = summed
            self._units.move_to_end(unit)
            while len(self._units) > self.max_units:
                self._units.popitem(last=False)

    def __len__(self) -> int:
        return len(self._units)

    def clear(self) -> None:
        with self._lock:
            self._units.clear()
