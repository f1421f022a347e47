"""Attribute values: what is accepted, what is coerced, and the limits.

Values are ``str``, ``bool``, ``int``, ``float``, or sequences of these
(stored as tuples).  Anything else is stored as its ``repr``, so a span never
raises because of an odd value and the exporter never meets an object it
cannot serialise.

Limits, chosen so that one runaway attribute cannot blow up the queue or a
database row:

* at most :data:`MAX_ATTRIBUTES` (128) attributes per span, log or event;
  further keys are dropped and counted;
* strings (values, and items of sequences) longer than
  :data:`MAX_STRING` (4096) characters are truncated, with ``"…"`` appended;
* sequences longer than :data:`MAX_SEQUENCE` (128) items are truncated;
* keys are strings (anything else goes through ``str``) of at most
  :data:`MAX_KEY` (256) characters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from alamos.core.safe import safe_repr, safe_str

__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_KEY",
    "MAX_SEQUENCE",
    "MAX_STRING",
    "coerce_attributes",
    "coerce_key",
    "coerce_value",
]

MAX_ATTRIBUTES = 128
MAX_STRING = 4096
MAX_SEQUENCE = 128
MAX_KEY = 256

_SCALARS = (str, bool, int, float)


def _str(value: str) -> str:
    if len(value) > MAX_STRING:
        return value[:MAX_STRING] + "…"
    return value


def _scalar(value: Any) -> str | bool | int | float:
    t = type(value)
    if t is str:
        return _str(value)
    if t is bool or t is int or t is float:
        return value  # type: ignore[no-any-return]
    # Subclasses (str enums, IntEnum, numpy-like scalars...) become the plain
    # type, without calling methods the subclass may override.
    if isinstance(value, str):
        return _str(str.__str__(value))
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    return _str(safe_repr(value))


def coerce_value(value: Any) -> Any:
    """Return ``value`` as an allowed attribute value (see the module doc)."""
    t = type(value)
    if t is str:
        return value if len(value) <= MAX_STRING else _str(value)
    if t is int or t is float or t is bool:
        return value
    if t is list or t is tuple or t is set or t is frozenset:
        items = list(value)[:MAX_SEQUENCE]
        return tuple(_scalar(v) for v in items)
    return _scalar(value)


def coerce_key(key: Any) -> str:
    """Attribute keys are strings; anything else is converted with ``str``."""
    if type(key) is str:
        return key if len(key) <= MAX_KEY else key[:MAX_KEY]
    if isinstance(key, str):
        return str.__str__(key)[:MAX_KEY]
    return safe_str(key)[:MAX_KEY]


def coerce_attributes(
    attributes: Mapping[str, Any] | Iterable[tuple[Any, Any]],
) -> dict[str, Any]:
    """At most :data:`MAX_ATTRIBUTES` pairs, keys and values coerced (events,
    log keyword arguments and captured loguru ``extra`` go through it)."""
    items = attributes.items() if isinstance(attributes, Mapping) else attributes
    out: dict[str, Any] = {}
    for key, value in items:
        if len(out) >= MAX_ATTRIBUTES:
            break
        out[coerce_key(key)] = coerce_value(value)
    return out
