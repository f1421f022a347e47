"""The rows the frame budgets return (:mod:`alamos.report.query.budgets`),
and merging top-offender lists from separate runs or nodes."""

from __future__ import annotations

import heapq
from collections.abc import Iterable

import attrs

__all__ = [
    "DEFAULT_TOP",
    "BudgetReport",
    "BudgetStats",
    "FrameBudget",
    "FrameRow",
    "FrameStats",
    "Offender",
    "check_top",
    "merge_offenders",
    "offender_key",
]

#: Frames kept per budget in the top offenders.
DEFAULT_TOP = 100


def check_top(top: int) -> None:
    if not isinstance(top, int) or isinstance(top, bool) or top < 1:
        raise ValueError(f"top must be an integer of at least 1, not {top!r}")


@attrs.frozen
class FrameRow:
    """One frame: its span, its time, and whether it is a spike.

    ``previous_mean_ns`` is the mean duration of up to ``window`` previous
    frames of the same name (by start time, then trace and span id), ``None``
    for the first; ``spike`` is true when the window was full and the frame
    lasted more than ``factor`` times that mean.
    """

    trace_id: str
    span_id: str
    start_ns: int
    duration_ns: int
    previous_mean_ns: float | None
    spike: bool


@attrs.frozen
class FrameBudget:
    """What one frame spent in one budget: ``count`` outermost spans of the
    budget below it, ``duration_ns`` in all (see the module docstring)."""

    trace_id: str
    span_id: str
    start_ns: int
    frame_ns: int
    budget: str
    count: int
    duration_ns: int
    spike: bool

    @property
    def share(self) -> float | None:
        """``duration_ns`` as a fraction of the frame's time."""
        return self.duration_ns / self.frame_ns if self.frame_ns > 0 else None


#: A top offender is a frame's line in one budget.
Offender = FrameBudget


@attrs.frozen
class FrameStats:
    """The frames analysed: how many, their time, how many are spikes."""

    name: str
    frames: int
    total_ns: int
    min_ns: int | None
    max_ns: int | None
    spikes: int

    @property
    def mean_ns(self) -> float | None:
        return self.total_ns / self.frames if self.frames else None


@attrs.frozen
class BudgetStats:
    """One budget across the frames.

    ``frames`` is the number of frames with at least one span of the budget;
    ``min_ns``, ``mean_ns`` and ``max_ns`` are per frame over those frames;
    ``count`` and ``total_ns`` add up the (outermost) spans; ``share`` is
    ``total_ns`` over the time of *all* the frames analysed.
    """

    budget: str
    frames: int
    count: int
    total_ns: int
    min_ns: int
    max_ns: int
    share: float | None

    @property
    def mean_ns(self) -> float:
        return self.total_ns / self.frames


@attrs.frozen
class BudgetReport:
    """:func:`budget_report`'s answer: the frames, each budget (largest
    total first), and each budget's top offenders (largest first)."""

    frame: FrameStats
    budgets: tuple[BudgetStats, ...]
    offenders: tuple[Offender, ...]
    top: int
    stored_spikes: int | None = None
    """Spikes newly flagged in ``alamos_spikes`` (``store_spikes=True``), else None."""

    def offenders_of(self, budget: str) -> tuple[Offender, ...]:
        return tuple(o for o in self.offenders if o.budget == budget)


def offender_key(o: Offender) -> tuple[int, int, str, str]:
    # The SQL's order: most time first, then earliest, then by ids.
    return (-o.duration_ns, o.start_ns, o.trace_id, o.span_id)


def merge_offenders(
    lists: Iterable[Iterable[Offender]], top: int = DEFAULT_TOP
) -> tuple[Offender, ...]:
    """Top-offender lists from separate runs or nodes as one: their union
    (a frame in several lists once, with its largest time), then the ``top``
    of each budget again, in the order :func:`budget_report` gives.

    Each offender keeps the spike flag its run gave it: a run compares a
    frame with the frames *it* saw before it.
    """
    check_top(top)
    best: dict[tuple[str, str, str], Offender] = {}
    for listed in lists:
        for o in listed:
            key = (o.budget, o.trace_id, o.span_id)
            held = best.get(key)
            if held is None or offender_key(o) < offender_key(held):
                best[key] = o
    by_budget: dict[str, list[Offender]] = {}
    for o in best.values():
        by_budget.setdefault(o.budget, []).append(o)
    out: list[Offender] = []
    for budget in sorted(by_budget):
        out.extend(heapq.nsmallest(top, by_budget[budget], key=offender_key))
    return tuple(out)
