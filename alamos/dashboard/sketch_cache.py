"""Summed sketches kept between requests: a piece's rows are read and
decoded once, not at every page load.

A *piece* (:mod:`alamos.dashboard.tiers`) is the statistics rows of one
path, service, node and level in one hour (and, on a chart, one time
bucket): its hour rows (``("1h", ...)`` keys) where they add up to its
minute rows, else its minute rows (``("1m", ..., first, last window
start)``).  The dashboard keeps each piece's summed bins (compact:
``array('d')``), checked against the rows the database has for it now (how
many, and how many spans): a row written since (a late span, another
process) makes the piece stale, and it is read again.  So a page over 24 h
sums about 150 cached pieces and reads only the pieces that changed (the
hour being written, and the window's edges as it slides).

Per hour rather than per minute (the first version): a repeated tree page
over 24 h added 8,289 cached minute sums, 79 ms on the bench, where the
hour pieces take under 5 ms (cProfile on ``queries.tree_rows``); see
docs/dashboard.md for the pages' figures.

The cache belongs to one :class:`~alamos.dashboard.db.Database` (no
process-wide state); it holds at most :data:`MAX_UNITS` pieces (least
recently used dropped first: about 0.5 KB each, so 40 MB at most).
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from collections.abc import Hashable

import attrs

__all__ = ["MAX_UNITS", "SketchCache", "Summed"]

#: Pieces kept (7 days of one path, service, node and level is 168, or up
#: to 2 a bucket on a chart).
MAX_UNITS = 100_000


@attrs.frozen
class Summed:
    """A piece's summed bins: counts of keys ``low``, ``low + 1``...; the
    zero count; ``check`` what the database held when it was read."""

    check: tuple[int, int]
    low: int
    counts: array  # type: ignore[type-arg]
    zero: float


class SketchCache:
    """Pieces' summed bins, least recently used dropped past ``max_units``."""

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
