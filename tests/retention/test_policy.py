"""The retention Policy as a value: its durations, and evolving it."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from alamos.retention import Policy
from alamos.retention.policy import parse_duration

DAY = 86_400 * 10**9


def test_durations_are_nanoseconds_whatever_their_form() -> None:
    assert parse_duration("7d") == 7 * DAY
    assert parse_duration(timedelta(days=7)) == 7 * DAY
    assert parse_duration(7 * 86_400) == 7 * DAY  # a number is seconds
    assert parse_duration("500ms") == 500 * 10**6


def test_evolving_a_policy_keeps_its_durations() -> None:
    # attrs.evolve runs the converters again on the stored nanoseconds: they
    # must not be read as seconds (they were, 10**9 times too long).
    policy = Policy(ttl="7d", logs="1d", levels={"debug": "2h"}, keep_errors="30d")
    evolved = attrs.evolve(policy, keep_last=5)
    assert evolved == Policy(
        ttl="7d", logs="1d", levels={"debug": "2h"}, keep_errors="30d", keep_last=5
    )
    assert (evolved.ttl, evolved.logs, evolved.keep_errors) == (7 * DAY, DAY, 30 * DAY)
    assert [ns for _, ns in evolved.levels] == [2 * 3600 * 10**9]


def test_a_negative_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        Policy(ttl=-1)
