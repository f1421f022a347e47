"""Experiment keys and dotted paths.

A key is one segment of a path: ``server.cesium`` is the key ``cesium``
under the key ``server``.  The same dotted path names the logger, prefixes
span records and (joined with ``_``) prefixes Prometheus metric names, so a
key must be safe in all three places.
"""

from __future__ import annotations

import re

__all__ = ["KEY_PATTERN", "validate_key", "validate_path"]

KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]+")


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid experiment key, else raise ``ValueError``."""
    if isinstance(key, str) and KEY_PATTERN.fullmatch(key):
        return key
    raise ValueError(
        f"invalid experiment key {key!r}: a key is a non-empty str of letters, digits, "
        "'_' and '-' (regex [A-Za-z0-9_-]+); use sub() once per level instead of dots"
    )


def validate_path(path: object) -> str:
    """Return ``path`` if every dot-separated part is a valid key."""
    if not isinstance(path, str):
        raise ValueError(f"invalid experiment path {path!r}: expected a str like 'server.cesium'")
    for part in path.split("."):
        if not KEY_PATTERN.fullmatch(part):
            raise ValueError(
                f"invalid experiment path {path!r}: each dot-separated part must match "
                "[A-Za-z0-9_-]+"
            )
    return path
