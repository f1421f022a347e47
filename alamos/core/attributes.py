"""Values from the caller: attributes, names and messages, coerced at the source.

Everything a span or a log keeps is made storable here, once, on the
instrumented thread: the record built from it holds only plain ``str``,
``int``, ``float``, ``bool``, ``None`` and tuples of these, which the spool
codec and every exporter accept as they are (issue 10: one rule for both
paths, so a value can neither fail the spool nor be stored differently after
a replay).  A user object is turned into text here, where a slow ``__str__``
is the caller's own cost, never later on the worker or in ``flush()``.

**Attribute values** are ``str``, ``bool``, ``int``, ``float``, or sequences
of these (stored as tuples).  Anything else is stored as its ``repr``, so a
span never raises because of an odd value and the exporter never meets an
object it cannot serialise.

Limits, chosen so that one runaway value cannot blow up the queue or a
database row:

* at most :data:`MAX_ATTRIBUTES` (128) attributes per span, log or event;
  further keys are dropped and counted;
* strings (values, and items of sequences) longer than
  :data:`MAX_STRING` (4096) characters are truncated, with ``"…"`` appended;
  a ``repr`` too (a big dict's is cut while it is written, never built whole);
* sequences longer than :data:`MAX_SEQUENCE` (128) items are truncated;
* an ``int`` of more than :data:`MAX_INT_BITS` (8192) bits becomes the text
  ``"<int of N bits>"`` (the JSON of the spool cannot write an int of more
  than 4,300 digits; stored JSON already used this text);
* keys are strings (anything else goes through ``str``) of at most
  :data:`MAX_KEY` (256) characters.

**Names and messages** (:func:`coerce_text`): a span or event name is text
(a ``str`` subclass as the plain ``str``, ``bytes`` decoded as UTF-8 with
replacement, anything else its ``str``, or its ``repr`` if that raises) of at
most :data:`MAX_NAME` (1024) characters; a log message, or a span's error
text, at most :data:`MAX_MESSAGE` (32,768) characters.  Longer text is cut,
with ``"…"`` appended.

**Sizes** (:func:`text_size`): the hand-off bounds the bytes it holds, so a
span or a log knows roughly how big it is.  Text of at most :data:`SMALL_TEXT`
characters is covered by the fixed estimate of an item
(:data:`alamos.core.handoff.ITEM_BYTES`); longer text counts its size in
memory (``sys.getsizeof``, exact and O(1) for a ``str``: a cut text ends
with "…", which makes CPython store 2 bytes per character, so its length
alone would count half of it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import islice
from sys import getsizeof
from typing import Any

from alamos.core.safe import bounded_repr, safe_repr, safe_str

__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_INT_BITS",
    "MAX_KEY",
    "MAX_MESSAGE",
    "MAX_NAME",
    "MAX_SEQUENCE",
    "MAX_STRING",
    "SMALL_TEXT",
    "coerce_key",
    "coerce_text",
    "coerce_value",
    "sized_attributes",
    "text_size",
]

MAX_ATTRIBUTES = 128
MAX_STRING = 4096
MAX_SEQUENCE = 128
MAX_KEY = 256
MAX_INT_BITS = 8192
MAX_NAME = 1024
MAX_MESSAGE = 32_768
SMALL_TEXT = 256

#: Ints strictly between these are kept as they are (at most MAX_INT_BITS bits).
INT_MIN, INT_MAX = -(2**MAX_INT_BITS), 2**MAX_INT_BITS


def _str(value: str) -> str:
    if len(value) > MAX_STRING:
        return value[:MAX_STRING] + "…"
    return value


def _int(value: int) -> int | str:
    if INT_MIN < value < INT_MAX:
        return value
    return f"<int of {value.bit_length()} bits>"


def _scalar(value: Any) -> str | bool | int | float:
    t = type(value)
    if t is str:
        return _str(value)
    if t is int:
        return _int(value)
    if t is bool or t is float:
        return value  # type: ignore[no-any-return]
    # Subclasses (str enums, IntEnum, numpy-like scalars...) become the plain
    # type, without calling methods the subclass may override.
    if isinstance(value, str):
        return _str(str.__str__(value))
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return _int(int.__int__(value))
    if isinstance(value, float):
        return float.__float__(value)
    return _str(bounded_repr(value, MAX_STRING))


def coerce_value(value: Any) -> Any:
    """Return ``value`` as an allowed attribute value (see the module doc)."""
    t = type(value)
    if t is str:
        return value if len(value) <= MAX_STRING else _str(value)
    if t is int:
        return value if INT_MIN < value < INT_MAX else _int(value)
    if t is float or t is bool:
        return value
    if t is list or t is tuple or t is set or t is frozenset:
        # islice: the first items only, never a copy of a huge sequence.
        return tuple([_scalar(v) for v in islice(value, MAX_SEQUENCE)])
    return _scalar(value)


def coerce_key(key: Any) -> str:
    """Attribute keys are strings; anything else is converted with ``str``."""
    if type(key) is str:
        return key if len(key) <= MAX_KEY else key[:MAX_KEY]
    if isinstance(key, str):
        return str.__str__(key)[:MAX_KEY]
    return str.__str__(safe_str(key))[:MAX_KEY]


def coerce_text(value: Any, limit: int = MAX_NAME) -> str:
    """``value`` as plain text of at most ``limit`` characters (plus ``"…"``
    when cut): the rule for span names, event names, log messages and error
    texts (see the module doc).  Never raises; called on the instrumented
    thread only for what is not already a short ``str``."""
    text: str
    if type(value) is str:
        text = value
    elif isinstance(value, str):
        text = str.__str__(value)
    elif isinstance(value, bytes | bytearray | memoryview):
        # As the SQL exporter always stored a bytes name, and now the spool too.
        try:
            text = bytes(value).decode("utf-8", "replace")
        except Exception:
            text = str.__str__(safe_repr(value))
    else:
        # str() may return a str subclass: keep only the plain str.
        text = str.__str__(safe_str(value))
    return text if len(text) <= limit else text[:limit] + "…"


def text_size(value: object) -> int:
    """The bytes ``value`` adds to a queued item beyond the fixed estimate:
    its size in memory if it is text longer than :data:`SMALL_TEXT` (or a
    tuple holding such text), else 0."""
    if type(value) is str:
        return getsizeof(value) if len(value) > SMALL_TEXT else 0
    if type(value) is tuple:
        return sum([text_size(v) for v in value])
    return 0


def sized_attributes(
    attributes: Mapping[str, Any] | Iterable[tuple[Any, Any]],
) -> tuple[dict[str, Any], int]:
    """At most :data:`MAX_ATTRIBUTES` pairs, keys and values coerced (events,
    log keyword arguments and captured loguru ``extra`` go through it), and
    the size of their long text (:func:`text_size`)."""
    items = attributes.items() if isinstance(attributes, Mapping) else attributes
    out: dict[str, Any] = {}
    size = 0
    for key, value in items:
        if len(out) >= MAX_ATTRIBUTES:
            break
        coerced = coerce_value(value)
        t = type(coerced)
        if (t is str and len(coerced) > SMALL_TEXT) or t is tuple:
            size += text_size(coerced)
        out[coerce_key(key)] = coerced
    return out, size
