"""``alamos logs`` and ``alamos metrics``: logs and the latest metric samples,
read from the database without writing SQL.

Plain text, one record per line, every value from the database through
:func:`~alamos.cli.traces.clean` (a shared database is outside input).
``alamos logs -f`` polls for new rows; a row exported late (a process
flushing every ``flush_interval``, a spool replayed) is still shown if it
arrives within :data:`LATE` of the newest row seen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

import click

from alamos.cli import main
from alamos.cli.database import db_option
from alamos.cli.traces import clean, since_ns, unreadable, when_text
from alamos.core.records import LogRecord, MetricRecord
from alamos.report.query import TraceQueryError, valid_trace_id
from alamos.report.query.logs import LogQuery, find_logs, log_level_at_least, new_logs
from alamos.report.query.metrics import latest_metrics

__all__ = ["LATE", "logs", "metrics"]

#: How late (ns, by its own timestamp) a row may reach the database and
#: still be shown by ``alamos logs -f``.
LATE = 120 * 1_000_000_000


def _log_line(r: LogRecord) -> str:
    parts = [
        when_text(r.ts_ns),
        clean(r.level, 12).ljust(8),
        clean(r.path, 200),
        clean(r.message),
    ]
    if r.trace_id:
        parts.append(f"trace={clean(r.trace_id, 40)}")
    return "  ".join(parts)


@main.command()
@db_option
@click.option("--path", default=None, help="Only this experiment and its subtree.")
@click.option(
    "--level", default=None, help="This log level and above: debug, info, warning, error..."
)
@click.option("--trace", "trace_id", default=None, help="Only the logs of this trace.")
@click.option("--since", default=None, help="Only logs this recent: 30s, 10m, 2h, 1d.")
@click.option("--grep", default=None, help="Only messages containing this text (any case).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("-f", "--follow", is_flag=True, help="Keep printing new logs as they arrive.")
@click.option(
    "--interval",
    default=0.5,
    show_default=True,
    type=click.FloatRange(min=0.05),
    help="Seconds between polls with -f.",
)
def logs(
    db: str,
    path: str | None,
    level: str | None,
    trace_id: str | None,
    since: str | None,
    grep: str | None,
    limit: int,
    follow: bool,
    interval: float,
) -> None:
    """List logs, oldest first (the newest --limit of them): time, level,
    path, message and trace id.  With -f, then print new ones as they are
    exported, until interrupted."""
    if level is not None:
        try:
            log_level_at_least(level)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--level") from None
    if trace_id is not None:
        trace_id = trace_id.strip().lower()
        if not valid_trace_id(trace_id):
            raise click.BadParameter(
                f"{clean(trace_id, 80)!r} is not a trace id: expected 32 hex digits",
                param_hint="--trace",
            )
    query = LogQuery(path=path, min_level=level, trace_id=trace_id, grep=grep)
    start = since_ns(since)
    try:
        found = find_logs(db, query, since_ns=start, limit=limit)
    except TraceQueryError as exc:
        raise unreadable(exc) from None
    for r in found:
        click.echo(_log_line(r))
    if not follow:
        if not found:
            click.echo("no logs found", err=True)
        return
    _follow(db, query, found, start, interval)


def _follow(
    db: str, query: LogQuery, shown: list[LogRecord], start: int | None, interval: float
) -> None:
    seen = {r.id for r in shown}
    newest = max((r.ts_ns for r in shown), default=time.time_ns())
    try:
        while True:
            time.sleep(interval)
            floor = newest - LATE if start is None else max(start, newest - LATE)
            try:
                found = find_logs(db, query, since_ns=floor, limit=None)
            except TraceQueryError as exc:
                raise unreadable(exc) from None
            for r in new_logs(found, seen):
                click.echo(_log_line(r))
                newest = max(newest, r.ts_ns)
            # Forget what is too old to come again: memory stays bounded.
            seen.intersection_update(r.id for r in found if r.ts_ns >= newest - LATE)
    except KeyboardInterrupt:
        return


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _metric_line(m: MetricRecord) -> str:
    if m.kind == "histogram":
        value = f"count={_number(m.count)} sum={_number(m.sum)}"
    else:
        value = _number(m.value)
    return "  ".join(
        [
            clean(m.path, 200),
            clean(m.name + _labels(m.labels), 1000),
            clean(m.kind, 20),
            value,
            f"[{clean(m.service, 100)}@{clean(m.node, 100)}]",
            when_text(m.ts_ns),
        ]
    )


@main.command()
@db_option
@click.option("--path", default=None, help="Only this experiment and its subtree.")
@click.option("--name", default=None, help="Only the metric of this name.")
def metrics(db: str, path: str | None, name: str | None) -> None:
    """Show the latest sample of every metric series: path, name{labels},
    kind, value (count and sum for a histogram), service@node, time.  Each
    process exports its own series."""
    try:
        found = latest_metrics(db, path=path, name=name)
    except TraceQueryError as exc:
        raise unreadable(exc) from None
    for m in found:
        click.echo(_metric_line(m))
    if not found:
        click.echo("no metrics found", err=True)
