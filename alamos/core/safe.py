"""Safe text for any value: ``repr``, ``str`` and an exception's text that never raise.

Instrumentation handles values it did not make (attribute values, log
arguments, exceptions, provider output); a hostile ``__repr__`` or
``__str__`` must never break the caller, the worker or the exporter.  These
are the only such helpers in alamos.  (JSON-safe copies of data are made by
:func:`alamos.core.safe.jsonable`.)
"""

from __future__ import annotations

from typing import Any

__all__ = ["error_text", "safe_repr", "safe_str"]


def safe_repr(value: Any) -> str:
    """``repr(value)``, or ``<unrepresentable T: E>`` if that raises."""
    try:
        return repr(value)
    except Exception as exc:
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"


def safe_str(value: Any) -> str:
    """``str(value)``, falling back to :func:`safe_repr`."""
    try:
        return str(value)
    except Exception:
        return safe_repr(value)


def error_text(exc: BaseException) -> str:
    """``"Type: message"`` (or just ``"Type"``) for an exception, never raising:
    an exception whose ``str`` raises gives ``<unprintable exception>``."""
    try:
        text = str(exc)
    except Exception:
        text = "<unprintable exception>"
    name = type(exc).__qualname__
    return f"{name}: {text}" if text else name
