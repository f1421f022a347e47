"""Safe text for any value: ``repr``, ``str`` and an exception's text that never raise.

Instrumentation handles values it did not make (attribute values, log
arguments, exceptions, provider output); a hostile ``__repr__`` or
``__str__`` must never break the caller, the worker or the exporter.  These
are the only such helpers in alamos.
"""

from __future__ import annotations

from typing import Any

__all__ = ["error_text", "safe_repr", "safe_str"]


def safe_repr(value: Any, *, why: bool = True) -> str:
    """``repr(value)``; if that raises, ``<unrepresentable T: E>`` (``T`` the
    value's type, ``E`` the exception's), or ``<unrepresentable T>`` with
    ``why=False`` (where the text is shown to people, in a log message)."""
    try:
        return repr(value)
    except Exception as exc:
        if why:
            return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
        return f"<unrepresentable {type(value).__name__}>"


def safe_str(value: Any, fallback: str | None = None) -> str:
    """``str(value)``; if that raises, ``fallback``, or :func:`safe_repr` without one."""
    try:
        return str(value)
    except Exception:
        return fallback if fallback is not None else safe_repr(value)


def error_text(exc: BaseException, unprintable: str | None = None) -> str:
    """``"Type: message"`` (or just ``"Type"``) for an exception, never raising.
    An exception whose ``str`` raises gives ``unprintable`` as its message
    (default ``<unprintable Type>``)."""
    name = type(exc).__qualname__
    if unprintable is None:
        unprintable = f"<unprintable {type(exc).__name__}>"
    text = safe_str(exc, unprintable)
    return f"{name}: {text}" if text else name
