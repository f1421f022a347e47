"""What a garbage collection deleted and kept: :class:`GcSummary`.

A dry run returns the same summary, with what *would* be deleted.  Traces
are counted per handler and fate when the fates are decided; rows per kind
are counted as they are deleted (a dry run counts them instead).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from alamos.retention.decide import FATES, KEPT

__all__ = ["GcSummary", "Handler", "HandlerCounts", "Space"]

#: A handler: ``(service, path, name)`` of a trace's root span; all ``None``
#: for a trace that has logs and no span.
Handler = tuple[str | None, str | None, str | None]


@attrs.frozen(slots=True)
class HandlerCounts:
    """One handler's traces by fate, and the rows of the deleted ones."""

    handler: Handler
    traces: Mapping[str, int]
    """Fate (:data:`~alamos.retention.decide.FATES`) -> traces."""
    deleted_spans: int
    deleted_logs: int

    @property
    def kept(self) -> int:
        return sum(self.traces.get(f, 0) for f in KEPT)

    @property
    def deleted(self) -> int:
        return self.traces.get("delete", 0)


@attrs.frozen(slots=True)
class Space:
    """The database's size before and after (SQLite: the file and its WAL,
    in bytes; PostgreSQL: ``pg_database_size``) and how it was returned."""

    before: int
    after: int
    method: str
    """``incremental_vacuum``, ``vacuum``, ``postgres-vacuum``, or ``none``
    (with the reason)."""


@attrs.frozen(slots=True)
class GcSummary:
    """The result of :func:`alamos.retention.gc`."""

    dry_run: bool
    now_ns: int
    traces: Mapping[str, int]
    """Fate -> traces, over every handler."""
    rows: Mapping[str, int]
    """Kind -> rows deleted (or to delete, on a dry run): ``spans``, ``logs``
    (those of deleted traces and those outside any trace), ``metrics``,
    ``reports``, ``statistics:<table>``, ``holds`` (expired holds removed)."""
    handlers: tuple[HandlerCounts, ...]
    """Per handler, most deleted traces first."""
    resumed: int = 0
    """Traces an interrupted gc had started deleting, finished by this one."""
    spared: int = 0
    """Traces decided for deletion that were held, or got a new span or log,
    before their turn came: kept."""
    batches: int = 0
    """Delete transactions run."""
    interrupted: bool = False
    """Stopped before the end (the root closed): a later gc finishes."""
    space: Space | None = None

    @property
    def kept(self) -> int:
        return sum(self.traces.get(f, 0) for f in KEPT)

    @property
    def deleted(self) -> int:
        return self.traces.get("delete", 0)

    def as_dict(self) -> dict[str, object]:
        """Plain data (for JSON, logs and comparisons)."""
        return {
            "dry_run": self.dry_run,
            "traces": {f: self.traces.get(f, 0) for f in FATES},
            "rows": dict(self.rows),
            "handlers": [
                {
                    "service": h.handler[0],
                    "path": h.handler[1],
                    "name": h.handler[2],
                    "traces": {f: h.traces.get(f, 0) for f in FATES},
                    "deleted_spans": h.deleted_spans,
                    "deleted_logs": h.deleted_logs,
                }
                for h in self.handlers
            ],
            "resumed": self.resumed,
            "spared": self.spared,
            "interrupted": self.interrupted,
            "space": None if self.space is None else attrs.asdict(self.space),
        }
