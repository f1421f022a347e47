"""Coercion of hostile values into what a SQL column can store.

Text columns get :func:`~alamos.core.json.clean_text` (NUL and lone
surrogates become U+FFFD), integer columns are clamped to 64 bits, JSON
columns are written by :func:`dumps_json` (strict JSON under
:data:`~alamos.core.json.STORED_JSON`: non-finite floats become strings).  Each
function has a fast path for clean values, the common case, and handles
anything else without raising.  See :func:`alamos.report.sql.rows.rows_for` for the
rules as a whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from alamos.core.json import STORED_JSON, SURROGATE, any_text
from alamos.core.level import Level, parse_level

__all__ = [
    "I64_MAX",
    "LEVEL_NAMES",
    "dumps_json",
    "json_col",
    "json_data",
    "level_name",
    "opt_text",
    "req_text",
    "to_int",
    "to_num",
]

_I64_MIN, I64_MAX = -(2**63), 2**63 - 1
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


_encode_json = _make_encoder()


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


def to_int(v: object) -> int:
    """A BIGINT column: clamped to 64 bits; what is not a number becomes 0."""
    if type(v) is int and _I64_MIN <= v <= I64_MAX:
        return v
    try:
        i: int = int(v)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return 0
    return min(max(i, _I64_MIN), I64_MAX)


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


def dumps_json(value: object) -> str:
    """``value`` as strict, compact JSON text, made safe by
    :data:`~alamos.core.json.STORED_JSON`.

    The common case (clean data) is serialised directly; anything the strict
    encoder refuses (NaN, odd types, cycles) or whose output holds a NUL or a
    lone surrogate is made JSON-safe first.
    """
    try:
        out = _encode_json(value)
    except (ValueError, TypeError, RecursionError):
        return _encode_json(STORED_JSON(value))
    if out.isascii():
        if "\\u0000" not in out:
            return out
    elif "\\u0000" not in out and SURROGATE.search(out) is None:
        return out
    return _encode_json(STORED_JSON(value))


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
    return None if value is None else STORED_JSON(value)
