"""Experiment keys and dotted paths.

A key is one segment of a path: ``server.cesium`` is the key ``cesium``
under the key ``server``.  The same dotted path names the logger, prefixes
span records and (joined with ``_``) prefixes Prometheus metric names, so a
key must be safe in all three places.

Lengths are bounded, so that every record can be stored: the path is in the
primary key of ``alamos_experiments`` and in the indexes of spans, logs and
metrics, and PostgreSQL refuses an index entry of more than 2,704 bytes (a
key of 3,000 letters blocked an exporter for good, issue 10).  A key has at
most :data:`MAX_KEY_LENGTH` (128) characters and a whole path at most
:data:`MAX_PATH_LENGTH` (1024), which leaves room for the other columns of
those indexes.  Keys are ASCII, so characters are bytes.
"""

from __future__ import annotations

import re

__all__ = ["KEY_PATTERN", "MAX_KEY_LENGTH", "MAX_PATH_LENGTH", "validate_key", "validate_path"]

KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
MAX_KEY_LENGTH = 128
MAX_PATH_LENGTH = 1024


def validate_key(key: object, under: str | None = None) -> str:
    """Return ``key`` if it is a valid experiment key, else raise ``ValueError``.

    ``under``: the path of the parent, if any; the child's whole path must
    also be within :data:`MAX_PATH_LENGTH`.
    """
    if not (isinstance(key, str) and KEY_PATTERN.fullmatch(key)):
        raise ValueError(
            f"invalid experiment key {_short(key)}: a key is a non-empty str of letters, "
            "digits, '_' and '-' (regex [A-Za-z0-9_-]+); use sub() once per level instead of dots"
        )
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(
            f"invalid experiment key {_short(key)}: {len(key)} characters, more than the "
            f"limit of {MAX_KEY_LENGTH} characters per key"
        )
    if under is not None and len(under) + 1 + len(key) > MAX_PATH_LENGTH:
        raise ValueError(
            f"invalid experiment key {_short(key)} under {_short(under)}: the path would have "
            f"{len(under) + 1 + len(key)} characters, more than the limit of "
            f"{MAX_PATH_LENGTH} characters per path"
        )
    return key


def validate_path(path: object) -> str:
    """Return ``path`` if every dot-separated part is a valid key and the
    whole is within :data:`MAX_PATH_LENGTH`."""
    if not isinstance(path, str):
        raise ValueError(
            f"invalid experiment path {_short(path)}: expected a str like 'server.cesium'"
        )
    if len(path) > MAX_PATH_LENGTH:
        raise ValueError(
            f"invalid experiment path {_short(path)}: {len(path)} characters, more than the "
            f"limit of {MAX_PATH_LENGTH} characters per path"
        )
    for part in path.split("."):
        if not KEY_PATTERN.fullmatch(part):
            raise ValueError(
                f"invalid experiment path {_short(path)}: each dot-separated part must match "
                "[A-Za-z0-9_-]+"
            )
        if len(part) > MAX_KEY_LENGTH:
            raise ValueError(
                f"invalid experiment path {_short(path)}: the key {_short(part)} has "
                f"{len(part)} characters, more than the limit of {MAX_KEY_LENGTH} per key"
            )
    return path


def _short(value: object) -> str:
    """``repr(value)``, cut for an error message (a rejected key may be huge)."""
    try:
        text = repr(value)
    except Exception:
        text = f"<unrepresentable {type(value).__name__}>"
    return text if len(text) <= 80 else f"{text[:60]}…({len(text)} characters)"
