"""Attribute values as label values, the same live and in a backfill.

A rule that groups by an attribute (or matches one) needs the attribute as
text.  Live, the value is the Python value the span was given; in a
backfill, it is what the database gives back from the stored JSON
(SQLite's ``json_extract`` with ``json_type``, PostgreSQL's ``->>`` with
``jsonb_typeof``).  Both go through the one rule here, so a series has the
same labels either way:

* a string is itself; a missing attribute (or JSON ``null``) is ``""``;
* ``True``/``False`` are ``"true"``/``"false"`` (as in JSON);
* an ``int`` is its decimal digits;
* a ``float`` with an integral value below 2**53 is written as that integer
  (``2.0`` → ``"2"``: PostgreSQL's ``jsonb`` does not keep ``2.0`` apart from
  ``2`` in every case), any other finite float as Python's shortest
  ``repr`` (``"1.5"``, ``"1e-07"``), and NaN and the infinities as the texts
  the exporter stores them as (``"NaN"``, ``"Infinity"``, ``"-Infinity"``);
* a sequence is its compact JSON text, items converted as above.

Known differences: an integer of 2**53 or more stored from a ``float``
comes back from PostgreSQL as an integer (``1e+20`` → ``"100000000000000000000"``).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

__all__ = ["NUMERIC_LIMIT", "db_label_value", "float_text", "label_value", "numeric"]

#: Floats with an integral value below this are written as integers.
NUMERIC_LIMIT = 2**53


def float_text(v: float) -> str:
    """A float as label text (see the module docstring)."""
    if v != v:
        return "NaN"
    if v in (math.inf, -math.inf):
        return "Infinity" if v > 0 else "-Infinity"
    if v.is_integer() and abs(v) < NUMERIC_LIMIT:
        return str(int(v))
    return repr(v)


def _plain(v: Any) -> Any:
    """A JSON value with floats made canonical (for sequences)."""
    if isinstance(v, bool) or v is None or isinstance(v, str | int):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            return float_text(v)
        return int(v) if v.is_integer() and abs(v) < NUMERIC_LIMIT else v
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return str(v)


def label_value(v: object) -> str:
    """An attribute value (as a span holds it) as label text."""
    if type(v) is str:
        return v
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return float_text(v)
    if isinstance(v, str):
        return str(v)
    if isinstance(v, list | tuple | dict):
        return json.dumps(_plain(v), separators=(",", ":"), ensure_ascii=False)
    return str(v)


def numeric(v: object) -> int | float | None:
    """``v`` if it is a finite number that ``sum(attribute)`` adds (not a
    bool, not NaN or infinite: the exporter stores those as text), else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and math.isfinite(v):
        return v
    return None


def db_label_value(dialect: str, typ: object, raw: object) -> str:
    """A value read back from a stored JSON attribute as label text: ``typ``
    is ``json_type`` (SQLite) or ``jsonb_typeof`` (PostgreSQL), ``raw`` the
    value ``json_extract`` or ``->>`` gave."""
    if typ is None or typ == "null" or raw is None:
        return ""
    if typ in ("true", "false"):  # SQLite
        return str(typ)
    if typ == "boolean":  # PostgreSQL: "true" / "false"
        return str(raw)
    if typ in ("text", "string"):
        return str(raw)
    if typ == "integer":
        return str(int(raw))  # type: ignore[call-overload]
    if typ == "real":
        return float_text(float(raw))  # type: ignore[arg-type]
    if typ == "number":  # PostgreSQL's numeric text
        text = str(raw)
        if text.lstrip("-").isdigit():
            return str(int(text))
        return float_text(float(text))
    # array or object: its JSON text
    return label_value(json.loads(str(raw)))


def db_number(v: object) -> int | float:
    """A SUM the database gave (int, float, Decimal or None) as an exact int
    where it is integral, else a float; None (nothing numeric) as 0."""
    if v is None:
        return 0
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, int | float):
        return v
    return float(str(v))
