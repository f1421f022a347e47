"""JSON-safe data and storable text: one walker, and the one rule for NaN.

**The NaN rule.**  JSON written by alamos never holds a NaN or ±infinity
number (standard JSON has none, and PostgreSQL's JSONB refuses them):

* stored JSON (the SQL exporter's JSON columns, :data:`STORED_JSON`) keeps
  their meaning, as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``;
* a report dict (``root.report()``, meant for any JSON consumer,
  :data:`REPORT_JSON`) gives ``null``;
* the spool (:mod:`alamos.report.pipeline.codec`) is not JSON for others but
  a lossless internal format: it keeps them as numbers.

A :class:`JsonRule` turns any value into plain JSON data (``dict`` with
``str`` keys, ``list``, ``str``, ``int``, finite ``float``, ``bool``,
``None``) and never raises on an odd value.  What both rules do:

* subclasses of ``str``, ``int`` and ``float`` become the plain type, without
  calling methods the subclass may override;
* mappings become dicts, and lists, tuples and sets become lists;
* keys that are not strings become strings the way :mod:`json` writes them
  (``1`` gives ``"1"``, ``True`` ``"true"``, ``None`` ``"null"``, NaN
  ``"NaN"``); other keys, like other values, go through the rule's ``other``;
* an integer too large for JSON (more than 8192 bits) becomes a string
  saying so; nesting deeper than the rule's ``max_depth`` becomes the string
  ``"<too deep>"``.

What they differ in is the fields of :class:`JsonRule`: see
:data:`REPORT_JSON` and :data:`STORED_JSON`.

:func:`clean_text` and :func:`any_text` are the text half of the family:
text made storable in any text column and any JSON string.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from alamos.core.level import Level
from alamos.core.safe import safe_repr, safe_str

__all__ = ["REPORT_JSON", "STORED_JSON", "SURROGATE", "JsonRule", "any_text", "clean_text"]

#: A lone UTF-16 surrogate (UTF-8 cannot encode it).
SURROGATE = re.compile("[\ud800-\udfff]")

_MAX_INT_BITS = 8192  # json refuses to write ints of more than 4300 digits
_NONFINITE_TEXT = {math.inf: "Infinity", -math.inf: "-Infinity"}
_NO_PARENTS: frozenset[int] = frozenset()
_CONTAINERS = (Mapping, list, tuple, set, frozenset)


def clean_text(s: str) -> str:
    """``s`` made storable in any text column and any JSON string.

    NUL characters (which PostgreSQL text and JSONB reject) and lone UTF-16
    surrogates (which UTF-8 cannot encode) become U+FFFD; a surrogate *pair*
    left split in a Python string is joined into its character.  Anything else,
    SQL-looking text and huge strings included, is kept verbatim.  Clean ASCII
    (the common case) costs two C-speed scans and no copy.
    """
    if s.isascii():
        if "\x00" not in s:
            return s
        return s.replace("\x00", "\ufffd")
    if "\x00" in s:
        s = s.replace("\x00", "\ufffd")
    if SURROGATE.search(s) is not None:
        s = s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return s


def any_text(value: object) -> str:
    """Any value as clean text (:func:`clean_text`): a ``str`` subclass as the
    plain ``str``, bytes decoded as UTF-8 with replacement, anything else its
    :func:`~alamos.core.safe.safe_str`."""
    if isinstance(value, str):
        return clean_text(str.__str__(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return clean_text(bytes(value).decode("utf-8", "replace"))
    return clean_text(safe_str(value))


def _report_text(value: object) -> str:
    return safe_repr(value, why=False)


@attrs.frozen(slots=True)
class JsonRule:
    """How one use of JSON treats what JSON cannot hold (see the module doc).

    Call it: ``REPORT_JSON(value)`` is ``value`` as plain JSON data.
    """

    #: NaN and ±inf become ``"NaN"``/``"Infinity"``/``"-Infinity"`` (True) or ``None``.
    nonfinite_text: bool
    #: Text (values and keys) goes through :func:`clean_text`.
    clean: bool
    #: A :class:`~alamos.core.level.Level` becomes its name (``"debug"``);
    #: otherwise its number, like any ``int`` subclass.
    level_names: bool
    #: Containers nested deeper than this become ``"<too deep>"``.
    max_depth: int
    #: What a container inside itself becomes; ``None``: cycles are not
    #: looked for, and end where they are too deep.
    cycle: str | None
    #: The text of any other value (and key).
    other: Callable[[object], str]

    def __call__(self, value: object) -> Any:
        return _walk(value, self, 0, _NO_PARENTS)


#: For reports (``root.report()``), read by any JSON consumer: non-finite
#: floats become ``None``, a level its name, a cycle ``"<cycle>"``, nesting
#: deeper than 32 ``"<too deep>"``, anything else (bytes too) its ``repr``
#: (``<unrepresentable T>`` if that raises).  Text is kept as it is.
REPORT_JSON = JsonRule(
    nonfinite_text=False,
    clean=False,
    level_names=True,
    max_depth=32,
    cycle="<cycle>",
    other=_report_text,
)

#: For JSON columns (``attributes``, ``events``, ``labels``, ``buckets``,
#: ``report``): non-finite floats become the strings ``"NaN"``,
#: ``"Infinity"`` and ``"-Infinity"``, text (values and keys) goes through
#: :func:`clean_text`, a level is its number (as :mod:`json` writes an
#: ``int`` enum), nesting deeper than 64 (or a cycle) is ``"<too deep>"``,
#: anything else is :func:`any_text` (bytes decoded as UTF-8).
STORED_JSON = JsonRule(
    nonfinite_text=True,
    clean=True,
    level_names=False,
    max_depth=64,
    cycle=None,
    other=any_text,
)


def _nonfinite(value: float, rule: JsonRule) -> str | None:
    return _NONFINITE_TEXT.get(value, "NaN") if rule.nonfinite_text else None


def _walk(value: Any, rule: JsonRule, depth: int, parents: frozenset[int]) -> Any:
    t = type(value)
    if t is str:
        return clean_text(value) if rule.clean else value
    if value is None or t is bool:
        return value
    if t is int:
        if value.bit_length() > _MAX_INT_BITS:
            return f"<int of {value.bit_length()} bits>"
        return value
    if t is float:
        return value if value - value == 0.0 else _nonfinite(value, rule)
    if t is dict or t is list or t is tuple or isinstance(value, _CONTAINERS):
        if depth >= rule.max_depth:
            return "<too deep>"
        if rule.cycle is not None:
            if id(value) in parents:
                return rule.cycle
            parents = parents | {id(value)}
        depth += 1
        if isinstance(value, Mapping):
            return {_key(k, rule): _walk(v, rule, depth, parents) for k, v in value.items()}
        return [_walk(v, rule, depth, parents) for v in value]
    if rule.level_names and isinstance(value, Level):
        return str(value)
    if isinstance(value, str):
        return _walk(str.__str__(value), rule, depth, parents)
    if isinstance(value, int):
        return _walk(int.__int__(value), rule, depth, parents)
    if isinstance(value, float):
        return _walk(float.__float__(value), rule, depth, parents)
    return rule.other(value)


def _key(key: Any, rule: JsonRule) -> str:
    if type(key) is str:
        return clean_text(key) if rule.clean else key
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if rule.level_names and isinstance(key, Level):
        return str(key)
    if isinstance(key, str):
        return _key(str.__str__(key), rule)
    if isinstance(key, int):
        number = _walk(int.__int__(key), rule, 0, _NO_PARENTS)
        return number if type(number) is str else int.__repr__(number)
    if isinstance(key, float):
        f = float.__float__(key)
        return float.__repr__(f) if f - f == 0.0 else _NONFINITE_TEXT.get(f, "NaN")
    return rule.other(key)
