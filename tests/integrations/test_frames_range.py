"""The frames' running mean reads only what it needs (the range and the 32
frames before it), and gives what the mean over every frame of the name
gives: checked against a Python reference on SQLite and PostgreSQL, with
frames sharing a start time at the range's edge."""

from __future__ import annotations

import random

import pytest

from alamos.report.query import budget_report, frames_of

from .test_budgets import BASE, SECOND, export, span

WINDOW, FACTOR = 32, 1.3


def _frames() -> list[tuple[str, int, int]]:
    """``(trace, start offset, duration)``: 200 frames, one a second, the
    frames of seconds 60 and 120 doubled (two frames at one start)."""
    rnd = random.Random(7)
    out = []
    for k in range(200):
        for copy in range(2 if k in (60, 120) else 1):
            trace = f"{k * 2 + copy + 1:032x}"
            out.append((trace, k * SECOND, rnd.choice((100, 110, 120, 200, 90))))
    return out


def _reference(since: int, until: int) -> list[tuple[str, float | None, bool]]:
    frames = sorted(_frames(), key=lambda f: (f[1], f[0]))  # start, trace (span ids alike)
    out = []
    for i, (trace, start, duration) in enumerate(frames):
        before = [d for _, _, d in frames[max(0, i - WINDOW) : i]]
        mean = sum(before) / len(before) if before else None
        spike = len(before) >= WINDOW and mean is not None and duration > mean * FACTOR
        if since <= start < until:
            out.append((trace, mean, spike))
    return out


@pytest.mark.parametrize("since_s", [0, 10, 33, 60, 61, 120, 150])
def test_frames_of_a_range_equal_the_mean_over_every_frame(db_url: str, since_s: int) -> None:
    export(db_url, [span(t, "1", None, "tick", start, d) for t, start, d in _frames()])
    since, until = BASE + since_s * SECOND, BASE + (since_s + 40) * SECOND
    got = frames_of(db_url, "tick", since_ns=since, until_ns=until)
    want = _reference(since - BASE, until - BASE)
    assert len(got) == len(want) == (41 if since_s in (33, 60, 120) else 40)
    assert [(r.trace_id, r.spike) for r in got] == [(t, s) for t, _, s in want]
    for row, (_, mean, _) in zip(got, want, strict=True):
        assert row.previous_mean_ns == (None if mean is None else pytest.approx(mean))
    report = budget_report(db_url, "tick", since_ns=since, until_ns=until)
    assert report.frame.frames == len(want)
    assert report.frame.spikes == sum(s for _, _, s in want)
