"""The tables garbage collection trims by age, and the ones that keep traces.

Spans and logs go by trace (:mod:`~alamos.retention.decide`); every other
table is trimmed row by row by age, listed here as ``(kind, table, time
column)``: the kind names the policy's TTL (:data:`~alamos.retention.policy.KINDS`).

This is the hook for the analysis tables: a table of the analysis (span
statistics, spike flags) joins retention by adding a line to
:data:`STATISTICS_TABLES` (its rows then live for the ``statistics`` TTL), and
a table whose rows name traces to keep by a line to :data:`SPIKE_TABLES`
(those traces are kept while the row is, if ``Policy.keep_spikes``).  A
spike table also listed in :data:`STATISTICS_TABLES` keeps a trace only
through the rows the ``statistics`` TTL keeps, so that one gc decides as if
its trims had run first: a trace kept by a flag lives as long as the flag.
A table or column that is not in the database is skipped, so retention works
on a database that predates them.
"""

from __future__ import annotations

import attrs
from sqlalchemy import Connection, inspect

__all__ = [
    "SPIKE_TABLES",
    "STATISTICS_TABLES",
    "SpikeSource",
    "TimedTable",
    "spike_tables",
    "timed_tables",
]

#: Analysis tables deleted by age with the ``statistics`` TTL: (table, time column).
STATISTICS_TABLES: tuple[tuple[str, str], ...] = (
    ("alamos_span_stats", "window_start_ns"),
    # The hourly tier and the log counts (v4): an hour row goes once its
    # hour's start is older than the TTL, as a window row goes by its start.
    ("alamos_span_stats_1h", "window_start_ns"),
    ("alamos_log_stats", "window_start_ns"),
    ("alamos_spikes", "start_ns"),
)

#: Tables whose rows name a trace that ``keep_spikes`` keeps: (table, trace id column).
SPIKE_TABLES: tuple[tuple[str, str], ...] = (("alamos_spikes", "trace_id"),)


@attrs.frozen(slots=True)
class TimedTable:
    """A table trimmed by age: rows whose ``time_column`` is older than the
    ``kind``'s TTL go (``traceless``: only rows without a trace id, the others
    going with their trace)."""

    kind: str
    table: str
    time_column: str
    traceless: bool = False

    @property
    def label(self) -> str:
        """How the summary names it: the kind, or ``statistics:<table>``."""
        return f"{self.kind}:{self.table}" if self.kind == "statistics" else self.kind


@attrs.frozen(slots=True)
class SpikeSource:
    """A table whose rows name traces kept by ``keep_spikes``: the trace id
    column, and the time column the ``statistics`` TTL trims it by (``None``:
    not trimmed, every row counts)."""

    table: str
    trace_column: str
    time_column: str | None = None


#: The record tables trimmed by age.
BUILTIN: tuple[TimedTable, ...] = (
    TimedTable("logs", "alamos_logs", "ts_ns", traceless=True),
    TimedTable("metrics", "alamos_metrics", "ts_ns"),
    TimedTable("reports", "alamos_reports", "ts_ns"),
)


def _columns(conn: Connection, name: str) -> set[str]:
    insp = inspect(conn)
    if not insp.has_table(name):
        return set()
    return {c["name"] for c in insp.get_columns(name)}


def timed_tables(conn: Connection) -> list[TimedTable]:
    """The tables trimmed by age that exist in the database of ``conn``."""
    out = [t for t in BUILTIN if t.time_column in _columns(conn, t.table)]
    for name, col in STATISTICS_TABLES:
        if col in _columns(conn, name):
            out.append(TimedTable("statistics", name, col))
    return out


def spike_tables(conn: Connection) -> list[SpikeSource]:
    """The :data:`SPIKE_TABLES` that exist in the database of ``conn``, each
    with its time column if :data:`STATISTICS_TABLES` trims it."""
    out = []
    for name, col in SPIKE_TABLES:
        present = _columns(conn, name)
        if col in present:
            time_col = next((t for n, t in STATISTICS_TABLES if n == name), None)
            out.append(SpikeSource(name, col, time_col if time_col in present else None))
    return out
