"""Durations written as text: ``500ms``, ``30s``, ``10m``, ``2h``, ``1.5d``, ``1w``.

The one parser behind the CLI's ``--since``/``--until``/``--step`` options
and the retention policy's TTLs, so that they all accept the same forms.
"""

from __future__ import annotations

import re

__all__ = ["duration_seconds"]

_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")


def duration_seconds(text: str, what: str = "duration") -> float:
    """``text`` (a number and a unit, e.g. ``"10m"``) in seconds, at least 0.

    Raises :class:`ValueError` naming ``what`` and the accepted forms.
    """
    match = _DURATION_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"invalid {what} {text!r}: expected a number and a unit, "
            "e.g. 30s, 10m, 2h, 1d, 1w or 500ms"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]
