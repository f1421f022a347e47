"""Ids: drawn as integers, formatted as lower-case hex when a record is built.

Trace ids are 128 bits (32 hex digits), span ids 64 bits (16 hex digits), as
in W3C Trace Context; record ids (logs, metric samples, reports) are 128
bits.  ``random.getrandbits`` is used rather than :func:`os.urandom`: about
60-100 ns against 570 ns (``../shared/README.md``), and ids need to be
unique, not secret.  An id is never 0 (W3C treats all-zero as invalid).
"""

from __future__ import annotations

from random import getrandbits

__all__ = ["hex_id", "new_record_id", "new_span_int", "new_trace_int"]


def new_trace_int() -> int:
    """A fresh 128-bit trace id, never 0."""
    return getrandbits(128) or 1


def new_span_int() -> int:
    """A fresh 64-bit span id, never 0."""
    return getrandbits(64) or 1


def new_record_id() -> str:
    """A fresh record id: 32 hex digits."""
    # int.to_bytes().hex() formats about three times as fast as an f-string.
    return getrandbits(128).to_bytes(16, "big").hex()


def hex_id(n: int, size: int) -> str:
    """``n`` as ``2 * size`` lower-case hex digits (more if it does not fit:
    an id out of range, from a malformed remote context)."""
    try:
        return n.to_bytes(size, "big").hex()
    except OverflowError:
        return f"{n:0{2 * size}x}"
