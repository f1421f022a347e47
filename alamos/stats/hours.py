"""The hourly tier of the live statistics (``alamos_span_stats_1h``).

A page over a day or a week would merge 1,440 or 10,080 window rows per
series; a time-series database answers that from coarser, downsampled data,
and so does alamos: :class:`HourTier` sums the window groups of each hour as
:class:`~alamos.stats.live.LiveStats` emits them (:meth:`HourTier.add`,
once per group and window: no work per span, so the worker's cost per span,
which is the application's, does not change), and gives a
:class:`~alamos.core.records.SpanStatsHourRecord` per group for each hour
that has ended (:meth:`HourTier.ended`), and at close for the part of the
hour it saw (:meth:`HourTier.take_all`).

A window group emitted after its hour's row (a span longer than the rest of
its hour, or a flush's late rows) starts a new row of that hour, as window
rows do: rows of one hour merge exactly.  A process killed mid-hour writes
no row for that hour; readers recognise a complete hour by its rows' counts
adding up to the window rows' counts (docs/stats.md, "Tiers").

Only when the window divides an hour (:func:`hour_tier_fits`): a window of
7 minutes would straddle hours, and its rows could not be split between
them.
"""

from __future__ import annotations

from collections.abc import Callable

from alamos.core.records import SpanStatsHourRecord
from alamos.stats.groups import Group, GroupKey, group_order

__all__ = ["HOUR_NS", "HourTier", "hour_tier_fits"]

HOUR_NS = 3_600_000_000_000


def hour_tier_fits(window_ns: int) -> bool:
    """Whether windows of ``window_ns`` tile hours (there is an hour tier)."""
    return 0 < window_ns <= HOUR_NS and HOUR_NS % window_ns == 0


class HourTier:
    """The hour groups of one tree (see the module docstring); ``next_id()``
    gives each row's id (fixed when the row is built, as for window rows)."""

    def __init__(self, next_id: Callable[[], str]) -> None:
        self._next_id = next_id
        self._groups: dict[tuple[int, GroupKey], Group] = {}

    def __len__(self) -> int:
        return len(self._groups)

    def add(self, window_start_ns: int, key: GroupKey, group: Group) -> None:
        """Sum the emitted window group ``group`` into its hour.  The first
        group of an hour is kept as the hour's own (it was emitted and is no
        longer changed by its window): no copy."""
        hk = (window_start_ns - window_start_ns % HOUR_NS, key)
        held = self._groups.get(hk)
        if held is None:
            self._groups[hk] = group
        else:
            held.merge(group)

    def ended(self, now_ns: int, service: str, node: str) -> list[SpanStatsHourRecord]:
        """Rows of the hours that ended by ``now_ns``, which are forgotten."""
        done = [hk for hk in self._groups if hk[0] + HOUR_NS <= now_ns]
        return self._rows(done, service, node)

    def take_all(self, service: str, node: str) -> list[SpanStatsHourRecord]:
        """Rows of every hour held, ended or not (at close)."""
        return self._rows(list(self._groups), service, node)

    def clear(self) -> None:
        self._groups = {}

    def _rows(
        self, done: list[tuple[int, GroupKey]], service: str, node: str
    ) -> list[SpanStatsHourRecord]:
        out: list[SpanStatsHourRecord] = []
        for hk in sorted(done, key=group_order):
            hour, key = hk
            group = self._groups.pop(hk)
            out.append(
                group.row(SpanStatsHourRecord, self._next_id(), hour, HOUR_NS, key, service, node)
            )
        return out
