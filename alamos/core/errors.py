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
    "GcRunning",
    "MetricsPortInUse",
    "NothingToCollect",
    "RecordsRejected",
    "RetentionError",
    "RuleProblem",
    "RulesError",
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


class RuleProblem:
    """One thing wrong with a recording rule: where (``source``, the file or
    ``"rules"`` for Python objects; ``index``, the rule's 1-based position;
    ``rule``, its metric name when it has a valid one), which ``field``, and
    ``message`` (what is wrong and how to fix it)."""

    __slots__ = ("field", "index", "message", "rule", "source")

    def __init__(
        self, source: str, index: int | None, rule: str | None, field: str, message: str
    ) -> None:
        self.source = source
        self.index = index
        self.rule = rule
        self.field = field
        self.message = message

    def __str__(self) -> str:
        where = self.source
        if self.index is not None:
            where += f": rule {self.index}"
            if self.rule:
                where += f" ({self.rule!r})"
        return f"{where}: field {self.field!r}: {self.message}"

    def __repr__(self) -> str:
        return f"RuleProblem({str(self)!r})"


class RulesError(AlamosError, ValueError):
    """Recording rules that cannot be used (``alamos.rules``): a bad metric
    or label name, a bad regular expression, an unknown aggregation, a
    duplicate name, too many rules...  ``problems`` lists every
    :class:`RuleProblem` found (``alamos rules check FILE`` prints them);
    the message names each rule and field."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the recording rules:\n{lines}")


class MetricsPortInUse(AlamosError, OSError):
    """``alamos.metrics.serve(..., if_taken="raise")`` found its port taken:
    another process (often another worker of the same server) has it.  The
    message says how to expose the metrics of several workers instead."""


class RetentionError(AlamosError):
    """Garbage collection or a hold could not run: no database at that URL,
    a database without alamos tables, another gc already running on it, or a
    database that cannot be reached.  Nothing was deleted.  The message says
    which database (password hidden) and what to do."""


class NothingToCollect(RetentionError):
    """Garbage collection found no alamos database to work on: no SQLite
    file at that path, or a database nothing has been exported to yet.  A
    background gc skips it quietly (the tree's first export creates it)."""


class GcRunning(RetentionError):
    """Another garbage collection holds the database's gc lock (in this
    process or another).  A background gc skips that round."""
