"""Every error alamos raises on purpose, in one module.

All of them are exported from :mod:`alamos` and derive from
:class:`AlamosError`, so ``except alamos.AlamosError`` catches any of them.
Each message says what went wrong and how to fix it.  Bad arguments
(an invalid key, level, sampler, port...) raise the built-in
:class:`ValueError` or :class:`TypeError` instead, as Python code expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AlamosError",
    "RecordsRejected",
    "RetentionError",
    "SchemaVersionError",
    "TraceQueryError",
    "UnendedSpansError",
]


class AlamosError(RuntimeError):
    """Base of the errors below."""


class UnendedSpansError(AlamosError):
    """Raised at close in ``debug=True, strict=True`` mode when spans were
    started and never ended.  ``.spans`` lists them (each with ``location``,
    the ``file:line`` where it started)."""

    def __init__(self, message: str, spans: Sequence[Any]) -> None:
        super().__init__(message)
        self.spans = list(spans)


class SchemaVersionError(AlamosError):
    """The database's alamos schema cannot be used by this version of alamos
    (written by a newer alamos, or no migration is known).  Records wait in
    the spool until a database this version can use is given."""


class TraceQueryError(AlamosError):
    """The database could not be read (unreachable, not a database, no alamos
    tables...).  The message says which database, with any password hidden."""


class RecordsRejected(AlamosError):
    """Raised by an exporter's ``export`` when the database refused the
    batch's *contents* (a value too large for an index, a constraint other
    than the duplicate id...), so that exporting the same records again
    would fail again, as opposed to a transient failure (the database is
    down, a lock timed out), which any other exception means.  The delivery
    then splits the batch to find the records at fault, delivers the rest,
    and writes those to a dead-letter file, counted as dropped ("rejected").
    ``reason`` is the database's message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetentionError(AlamosError):
    """Garbage collection or a hold could not run: no database at that URL,
    a database without alamos tables, another gc already running on it, or a
    database that cannot be reached.  Nothing was deleted.  The message says
    which database (password hidden) and what to do."""
