"""Levels order what is recorded: ``bench < debug < prod``.

A level is an :class:`int` enum so that comparisons on the hot path are plain
integer comparisons.  Everywhere alamos takes a level it also accepts the
strings ``"bench"``, ``"debug"`` and ``"prod"`` (any case).
"""

from __future__ import annotations

import enum

__all__ = ["Level", "LevelLike", "parse_level"]


class Level(enum.IntEnum):
    """How important a piece of instrumentation is.

    ``BENCH`` is for measurements only worth their cost in a benchmark,
    ``DEBUG`` for a debugging session, ``PROD`` for what stays on in production.
    """

    BENCH = 10
    DEBUG = 20
    PROD = 30

    def __str__(self) -> str:
        return self.name.lower()


LevelLike = Level | str

_BY_NAME = {lvl.name.lower(): lvl for lvl in Level}


def parse_level(value: LevelLike | int) -> Level:
    """Turn ``"debug"``, ``Level.DEBUG`` (or its int value) into a :class:`Level`."""
    if isinstance(value, Level):
        return value
    if isinstance(value, str):
        lvl = _BY_NAME.get(value.strip().lower())
        if lvl is not None:
            return lvl
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            return Level(value)
        except ValueError:
            pass
    raise ValueError(
        f"invalid level {value!r}: use alamos.Level.BENCH, DEBUG or PROD, "
        'or one of the strings "bench", "debug", "prod"'
    )
