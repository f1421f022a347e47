"""Levels order what is recorded: ``bench < debug < prod``; and the log levels.

A level is an :class:`int` enum so that comparisons on the hot path are plain
integer comparisons.  Everywhere alamos takes a level it also accepts the
strings ``"bench"``, ``"debug"`` and ``"prod"`` (any case).

:data:`LOG_LEVELS` is the one list of log level names (loguru's), with the
number loguru gives each and the alamos level a log record of that level is
filtered and exported at.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "LOG_LEVELS",
    "LOG_NUMBERS",
    "Level",
    "LevelLike",
    "log_export_level",
    "log_level_name",
    "nearest_log_level",
    "parse_level",
]


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


# name: (loguru's number, the alamos level it is filtered and exported at)
_LOG_TABLE = (
    ("TRACE", 5, Level.BENCH),
    ("DEBUG", 10, Level.DEBUG),
    ("INFO", 20, Level.PROD),
    ("SUCCESS", 25, Level.PROD),
    ("WARNING", 30, Level.PROD),
    ("ERROR", 40, Level.PROD),
    ("CRITICAL", 50, Level.PROD),
)

#: Log level names in order, with the alamos level each is filtered and exported at.
LOG_LEVELS: Mapping[str, Level] = MappingProxyType({n: lvl for n, _, lvl in _LOG_TABLE})
#: loguru's number for each log level name.
LOG_NUMBERS: Mapping[str, int] = MappingProxyType({n: no for n, no, _ in _LOG_TABLE})


def log_export_level(name: str) -> Level:
    """The alamos level a log record of level ``name`` is exported at."""
    return LOG_LEVELS.get(name, Level.PROD)


def log_level_name(level: object) -> str:
    """``level`` (a log level name, any case) as its upper-case name, or a
    ``ValueError`` that lists the names."""
    name = level.upper() if isinstance(level, str) else None
    if name is None or name not in LOG_LEVELS:
        raise ValueError(f"invalid log level {level!r}: use {', '.join(LOG_LEVELS)}")
    return name


def nearest_log_level(name: str, number: int) -> str:
    """A standard log level name for a loguru level: ``name`` itself if it is
    one, else the highest standard level at or below ``number`` (a custom
    loguru level)."""
    if name in LOG_LEVELS:
        return name
    out = "TRACE"
    for std, std_no, _ in _LOG_TABLE:
        if number >= std_no:
            out = std
    return out
