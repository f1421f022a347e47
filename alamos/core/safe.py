"""Safe text for any value: ``repr``, ``str`` and an exception's text that never raise.

Instrumentation handles values it did not make (attribute values, log
arguments, exceptions, provider output); a hostile ``__repr__`` or
``__str__`` must never break the caller, the worker or the exporter.  These
are the only such helpers in alamos.
"""

from __future__ import annotations

from typing import Any

_CONTAINERS = (dict, list, tuple, set, frozenset)

__all__ = ["bounded_repr", "error_text", "safe_repr", "safe_str"]


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


class _Full(Exception):
    """Raised inside :class:`_BoundedRepr` once it has written enough."""


class _BoundedRepr:
    """``repr`` of built-in containers, written piece by piece, that stops
    once more than ``limit`` characters are written (reprlib-style).

    What it writes is ``repr(value)`` for values of exactly ``dict``,
    ``list``, ``tuple``, ``set`` and ``frozenset`` (recursion shown as
    ``[...]``, ``{...}``, ``(...)`` as ``repr`` does), built from the
    ``repr`` of everything else; a ``str`` or ``bytes`` longer than what is
    left is cut before its ``repr`` is taken (so a huge string costs no more
    than a short one; its quotes may then differ from the full ``repr``'s).
    """

    __slots__ = ("active", "left", "parts")

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.left = limit
        self.active: set[int] = set()

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.left -= len(text)
        if self.left < 0:
            raise _Full

    def value(self, v: Any) -> None:
        t = type(v)
        if t is str or t is bytes:
            self.add(repr(v if len(v) <= self.left else v[: self.left + 1]))
        elif t is dict:
            self.items(v, "{", "}", "{...}", True)
        elif t is list:
            self.items(v, "[", "]", "[...]", False)
        elif t is tuple:
            if len(v) == 1 and id(v) not in self.active:
                self.active.add(id(v))
                self.add("(")
                self.value(v[0])
                self.add(",)")
                self.active.discard(id(v))
            else:
                self.items(v, "(", ")", "(...)", False)
        elif t is set or t is frozenset:
            name = "set" if t is set else "frozenset"
            if not v:
                self.add(f"{name}()")
            elif t is set:
                self.items(v, "{", "}", "{...}", False)
            else:
                self.items(v, "frozenset({", "})", "frozenset({...})", False)
        else:
            self.add(repr(v))

    def items(self, v: Any, start: str, end: str, cycle: str, pairs: bool) -> None:
        key = id(v)
        if key in self.active:
            self.add(cycle)
            return
        self.active.add(key)
        self.add(start)
        first = True
        for item in v.items() if pairs else v:
            if not first:
                self.add(", ")
            first = False
            if pairs:
                self.value(item[0])
                self.add(": ")
                self.value(item[1])
            else:
                self.value(item)
        self.add(end)
        self.active.discard(key)


def bounded_repr(value: Any, limit: int) -> str:
    """:func:`safe_repr` that stops early on a big built-in container.

    The result is ``safe_repr(value)`` when that is at most ``limit``
    characters; otherwise a text longer than ``limit`` whose first ``limit``
    characters are those of the ``repr`` (the caller cuts it).  A dict of two
    million entries costs what its first few hundred do, not the 282 ms of
    its whole ``repr`` (issue 10).  Only exact built-in containers are walked:
    anything else, a subclass included, is its own ``repr`` (the caller's
    cost).  A ``repr`` that raises anywhere inside gives
    ``<unrepresentable T: E>`` for the whole value, as :func:`safe_repr`.
    """
    if type(value) not in _CONTAINERS:
        return safe_repr(value)
    writer = _BoundedRepr(limit)
    try:
        writer.value(value)
    except _Full:
        pass
    except Exception as exc:
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    return "".join(writer.parts)
