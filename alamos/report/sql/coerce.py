"""Coercion of hostile values into what a SQL column can store.

Text columns get :func:`clean_text` (NUL and lone surrogates become U+FFFD),
integer columns are clamped to 64 bits, JSON columns are written by
:func:`dumps_json` (strict JSON: non-finite floats become strings).  Each
function has a fast path for clean values, the common case, and handles
anything else without raising.  See :func:`alamos.report.sql.rows.rows_for` for the
rules as a whole.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from alamos.core.level import Level, parse_level

__all__ = [
    "I64_MAX",
    "I64_MIN",
    "LEVEL_NAMES",
    "SURROGATE",
    "any_text",
    "clean_text",
    "dumps_json",
    "encode_json",
    "json_col",
    "json_data",
    "json_safe",
    "level_name",
    "opt_text",
    "req_text",
    "to_int",
    "to_num",
]

SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_JSON_DEPTH = 64
_MAX_JSON_INT_BITS = 8192  # json refuses to write ints of more than 4300 digits
_NONFINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _make_encoder() -> Callable[[object], str]:
    """A strict compact JSON encoder, built once.

    ``JSONEncoder.encode`` builds a new C encoder on every call, which costs
    more than encoding a small dict; this reuses one (without the cycle check:
    a cycle ends in RecursionError, which :func:`dumps_json` handles).
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    basestring = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or basestring is None:
        return _ENCODER.encode

    def default(o: object) -> Any:
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")

    try:
        c_encoder = make(None, default, basestring, None, ":", ",", False, False, False)

        def encode(o: object) -> str:
            return "".join(c_encoder(o, 0))

        probe = {"a": [1, 2.5, None, True, "\u00e9\x00"], "b": {}}
        if encode(probe) != _ENCODER.encode(probe):
            return _ENCODER.encode
    except Exception:
        return _ENCODER.encode
    return encode


encode_json = _make_encoder()


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


def opt_text(v: object) -> str | None:
    """A nullable text column."""
    if type(v) is str and v.isascii() and "\x00" not in v:
        return v
    if v is None:
        return None
    return any_text(v)


def req_text(v: object) -> str:
    """A NOT NULL text column (``None`` becomes ``""``)."""
    if type(v) is str and v.isascii() and "\x00" not in v:
        return v
    if v is None:
        return ""
    return any_text(v)


def any_text(v: object) -> str:
    if isinstance(v, str):
        return clean_text(str(v))
    if isinstance(v, bytes | bytearray | memoryview):
        return clean_text(bytes(v).decode("utf-8", "replace"))
    try:
        return clean_text(str(v))
    except Exception:
        return f"<unprintable {type(v).__name__}>"


def to_int(v: object) -> int:
    """A BIGINT column: clamped to 64 bits; what is not a number becomes 0."""
    if type(v) is int and I64_MIN <= v <= I64_MAX:
        return v
    try:
        i: int = int(v)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return 0
    return min(max(i, I64_MIN), I64_MAX)


def to_num(v: object) -> float | None:
    """A double precision column: NaN and ±inf are kept (see ``rows_for``)."""
    if type(v) is float or v is None:
        return v
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None


LEVEL_NAMES = {lvl: str(lvl) for lvl in Level}


def level_name(v: object) -> str:
    if isinstance(v, Level):
        return LEVEL_NAMES[v]
    try:
        return LEVEL_NAMES[parse_level(v)]  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return req_text(v)


def json_safe(value: object, _depth: int = 0) -> Any:
    """``value`` as plain JSON data (dict, list, str, int, float, bool, None).

    * Strings (values and keys) go through :func:`clean_text`; keys that are
      not strings become strings the way :mod:`json` writes them (``1`` gives
      ``"1"``, ``True`` gives ``"true"``), others their ``str()``.
    * Non-finite floats become the *strings* ``"NaN"``, ``"Infinity"`` and
      ``"-Infinity"``: standard JSON (and JSONB) has no such numbers, and the
      information is kept.
    * Tuples, lists and sets become lists; bytes are decoded as UTF-8 with
      replacement; anything else becomes its ``str()``.
    * Nesting deeper than 64 levels (or a cycle) is cut off as the string
      ``"<too deep>"``; an integer too large for JSON becomes a string saying so.
    """
    t = type(value)
    if t is str:
        return clean_text(value)  # type: ignore[arg-type]
    if value is None or t is bool:
        return value
    if t is int:
        if value.bit_length() > _MAX_JSON_INT_BITS:  # type: ignore[attr-defined]
            return f"<int of {value.bit_length()} bits>"  # type: ignore[attr-defined]
        return value
    if t is float:
        if value - value == 0.0:  # type: ignore[operator]  # finite
            return value
        return _NONFINITE.get(value, "NaN")  # type: ignore[call-overload]
    if _depth >= _MAX_JSON_DEPTH:
        return "<too deep>"
    if isinstance(value, Mapping):
        return {_json_key(k): json_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v, _depth + 1) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return json_safe(int(value), _depth)
    if isinstance(value, float):
        return json_safe(float(value), _depth)
    return any_text(value)


def _json_key(k: object) -> str:
    if type(k) is str:
        return clean_text(k)
    if k is None or isinstance(k, bool | int | float):
        key = json_safe(k)
        return key if isinstance(key, str) else encode_json(key)
    return any_text(k)


def dumps_json(value: object) -> str:
    """``value`` as strict, compact JSON text, made safe by :func:`json_safe`.

    The common case (clean data) is serialised directly; anything the strict
    encoder refuses (NaN, odd types, cycles) or whose output holds a NUL or a
    lone surrogate is cleaned with :func:`json_safe` first.
    """
    try:
        out = encode_json(value)
    except (ValueError, TypeError, RecursionError):
        return encode_json(json_safe(value))
    if out.isascii():
        if "\\u0000" not in out:
            return out
    elif "\\u0000" not in out and SURROGATE.search(out) is None:
        return out
    return encode_json(json_safe(value))


def json_col(value: object) -> str | None:
    """A JSON column as text (``None`` is SQL NULL)."""
    if value is None:
        return None
    t = type(value)
    if t is MappingProxyType:  # how records keep their attributes read-only
        if not value:
            return "{}"
        value = value.copy()  # type: ignore[attr-defined]  # the dict: json encodes it directly
    elif not value:
        if t is dict:
            return "{}"
        if t is list or t is tuple:
            return "[]"
    return dumps_json(value)


def json_data(value: object) -> Any:
    """A JSON column as Python data (``None`` is SQL NULL)."""
    return None if value is None else json_safe(value)
