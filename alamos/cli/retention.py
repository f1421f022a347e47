"""``alamos gc``, ``alamos hold``, ``alamos unhold``, ``alamos holds``: retention.

The work is :mod:`alamos.retention`; this module parses the options, shows a
rich progress bar (on stderr) while gc runs, and prints the summary: traces
by fate, rows per kind, traces per handler.  A missing or empty database, a
bad duration or a negative count is a usage error (exit code 2), found
before anything is deleted.  Text from the database (handler names, trace
ids, reasons) goes through :func:`~alamos.cli.traces.clean` into rich
``Text`` objects, so neither an escape sequence nor rich markup reaches the
terminal as such.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from alamos.cli import main
from alamos.cli.database import db_option
from alamos.cli.traces import clean, when_text
from alamos.core.level import Level, parse_level
from alamos.report.query import valid_trace_id
from alamos.retention import (
    DEFAULT_BATCH_SIZE,
    FATES,
    KINDS,
    GcSummary,
    Policy,
    RetentionError,
    check_database,
    gc,
    hold,
    list_holds,
    parse_duration,
    unhold,
)

__all__ = ["gc_command", "hold_command", "holds_command", "unhold_command"]

#: Width of the tables when the output is not a terminal.
PIPE_WIDTH = 160

_FATE_TEXT = {
    "hold": "kept: held",
    "ttl": "kept: younger than the TTL",
    "last": "kept: last N of the handler",
    "errors": "kept: error (keep-errors)",
    "slowest": "kept: slowest N of the handler",
    "spike": "kept: spike frame",
    "delete": "deleted",
}
_LEVELS = tuple(str(lv) for lv in Level)  # bench, debug, prod


def _duration(text: str, hint: str) -> int:
    """``text`` as a duration in ns (``7d``; a Policy keeps it as it is), or
    a usage error."""
    try:
        return parse_duration(text, hint)
    except ValueError as exc:
        raise click.BadParameter(clean(str(exc), 300), param_hint=hint) from None


def _policy(ttls: tuple[str, ...], keep_last: int, keep_errors: str | None, slowest: int) -> Policy:
    """The policy of the options; ``--ttl`` is ``7d`` (every kind) or
    ``KIND=7d`` (a kind of :data:`KINDS`, or a span level)."""
    default: int | None = None
    kinds: dict[str, int] = {}
    levels: dict[str, int] = {}
    for item in ttls:
        key, sep, value = item.partition("=")
        if not sep:
            default = _duration(item, "--ttl")
            continue
        key = key.strip().lower()
        if key in KINDS:
            kinds[key] = _duration(value, f"--ttl {key}")
        elif key in _LEVELS:
            levels[key] = _duration(value, f"--ttl {key}")
        else:
            raise click.BadParameter(
                f"unknown kind {clean(key, 40)!r}: use --ttl 7d for every kind, or KIND=7d with "
                f"KIND one of {', '.join(KINDS + _LEVELS)} (a level sets its spans' TTL)",
                param_hint="--ttl",
            )
    return Policy(
        ttl=default,
        levels={parse_level(k): v for k, v in levels.items()},
        keep_last=keep_last,
        keep_errors=None if keep_errors is None else _duration(keep_errors, "--keep-errors"),
        keep_slowest=slowest,
        spans=kinds.get("spans"),
        logs=kinds.get("logs"),
        metrics=kinds.get("metrics"),
        reports=kinds.get("reports"),
        statistics=kinds.get("statistics"),
    )


def _check_db(db: str) -> None:
    try:
        check_database(db)
    except RetentionError as exc:
        raise click.BadParameter(clean(str(exc), 2000), param_hint="--db") from None


def _failed(exc: RetentionError) -> click.ClickException:
    """gc or a hold failed on a database that passed :func:`_check_db`."""
    return click.ClickException(clean(str(exc), 2000))


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A rich progress bar on stderr; yields the ``progress`` callback of gc."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    labels = {"decide": "deciding each trace's fate", "traces": "deleting traces"}
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(task: str, advance: int, total: int | None) -> None:
            if task not in tasks:
                text = labels.get(task, f"deleting {task}")
                tasks[task] = bar.add_task(text, total=total)
            elif total is not None:
                bar.update(tasks[task], total=total)
            bar.advance(tasks[task], advance)

        yield progress


def _handler_text(h: tuple[str | None, str | None, str | None]) -> list[str]:
    if h[0] is None:
        return ["-", "-", "(logs only: no span)"]
    return [clean(h[0], 100), clean(h[1], 200), clean(h[2], 200)]


def _print_summary(s: GcSummary, handlers: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False, width=None if sys.stdout.isatty() else PIPE_WIDTH)
    verb = "would delete" if s.dry_run else "deleted"
    if s.dry_run:
        console.print(Text("dry run: nothing was changed", "bold yellow"))
    if s.interrupted:
        console.print(Text("interrupted: run gc again to finish", "bold red"))
    fates = Table(title="Traces")
    fates.add_column("fate")
    fates.add_column("traces", justify="right")
    for f in FATES:
        fates.add_row(verb if f == "delete" else _FATE_TEXT[f], f"{s.traces.get(f, 0):,}")
    if s.resumed:
        fates.add_row(f"{verb} (an interrupted gc's, finished now)", f"{s.resumed:,}")
    if s.spared:
        fates.add_row("spared (held or written to since the decision)", f"{s.spared:,}")
    console.print(fates)
    kinds = Table(title="Rows to delete, per kind" if s.dry_run else "Rows deleted, per kind")
    kinds.add_column("kind")
    kinds.add_column("rows", justify="right")
    for kind, n in s.rows.items():
        kinds.add_row(kind, f"{n:,}")
    console.print(kinds)
    per = Table(title="Traces per handler (root span's service, path, name)")
    for col in ("service", "path", "name", "kept", "deleted", "kept by", "spans", "logs"):
        per.add_column(
            col, justify="right" if col in ("kept", "deleted", "spans", "logs") else "left"
        )
    for h in s.handlers[:handlers]:
        why = ", ".join(f"{f} {h.traces[f]:,}" for f in FATES[:-1] if h.traces.get(f))
        per.add_row(
            *(Text(t) for t in _handler_text(h.handler)),
            f"{h.kept:,}",
            f"{h.deleted:,}",
            why or "-",
            f"{h.deleted_spans:,}",
            f"{h.deleted_logs:,}",
        )
    console.print(per)
    if len(s.handlers) > handlers:
        console.print(f"... and {len(s.handlers) - handlers:,} more handlers (--handlers N)")
    if s.space is not None:
        mib = 1024 * 1024
        console.print(
            f"size: {s.space.before / mib:,.1f} MiB before, {s.space.after / mib:,.1f} MiB "
            f"after ({s.space.method})"
        )


@main.command("gc")
@db_option
@click.option(
    "--ttl",
    "ttls",
    multiple=True,
    metavar="[KIND=]DURATION",
    help="Delete what is older: 7d for every kind, or KIND=30d for one "
    "(spans, logs, metrics, reports, statistics; bench, debug or prod for that level's spans). "
    "Repeatable. Without --ttl nothing expires.",
)
@click.option(
    "--keep-last",
    default=0,
    type=click.IntRange(min=0),
    help="Keep the last N traces of every handler, whatever their age.",
)
@click.option("--keep-errors", default=None, help="Keep traces with an error this long, e.g. 30d.")
@click.option(
    "--keep-slowest",
    default=0,
    type=click.IntRange(min=0),
    help="Keep the N slowest traces of every handler.",
)
@click.option("--dry-run", is_flag=True, help="Change nothing; print what would be deleted.")
@click.option(
    "--batch-size",
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows deleted per transaction at most.",
)
@click.option(
    "--batch-seconds",
    default=None,
    type=click.FloatRange(min=0, min_open=True, max=3600),
    help="How long one delete transaction should take: batches shrink when --batch-size rows "
    "take longer [default: 0.2 on SQLite, where the exporter waits for it; 0.25 on PostgreSQL].",
)
@click.option(
    "--vacuum",
    is_flag=True,
    help="Then run a full VACUUM (SQLite: locks the file while it runs; converts an older "
    "file to incremental auto-vacuum).",
)
@click.option("--handlers", default=20, show_default=True, type=click.IntRange(min=0))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def gc_command(
    db: str,
    ttls: tuple[str, ...],
    keep_last: int,
    keep_errors: str | None,
    keep_slowest: int,
    dry_run: bool,
    batch_size: int,
    batch_seconds: float | None,
    vacuum: bool,
    handlers: int,
    as_json: bool,
) -> None:
    """Garbage collection: delete the traces, logs, metric samples, reports
    and statistics the policy lets go, in short batches, keeping every trace
    whole."""
    policy = _policy(ttls, keep_last, keep_errors, keep_slowest)
    _check_db(db)
    try:
        with _progress(not as_json and sys.stderr.isatty()) as progress:
            summary = gc(
                db,
                policy,
                dry_run=dry_run,
                batch_size=batch_size,
                batch_seconds=batch_seconds,
                vacuum=vacuum,
                progress=progress,
            )
    except RetentionError as exc:
        raise _failed(exc) from None
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        _print_summary(summary, handlers)


def _trace_id(trace_id: str) -> str:
    tid = trace_id.strip().lower()
    if not valid_trace_id(tid):
        raise click.BadParameter(
            f"{clean(trace_id, 80)!r} is not a trace id: expected 32 hex digits",
            param_hint="TRACE_ID",
        )
    return tid


@main.command("hold")
@click.argument("trace_id")
@db_option
@click.option("--reason", default="", help="Why the trace is kept (shown by alamos holds).")
@click.option("--until", "until", default=None, help="The hold ends after this long, e.g. 30d.")
def hold_command(trace_id: str, db: str, reason: str, until: str | None) -> None:
    """Keep a trace: garbage collection never deletes it while the hold lasts."""
    tid = _trace_id(trace_id)
    now = time.time_ns()
    until_ns = None if until is None else now + _duration(until, "--until")
    _check_db(db)
    try:
        h = hold(db, tid, reason=reason, until_ns=until_ns, now_ns=now)
    except RetentionError as exc:
        raise _failed(exc) from None
    end = "until it is removed" if h.until_ns is None else f"until {when_text(h.until_ns)}"
    click.echo(f"held {tid} {end}")


@main.command("unhold")
@click.argument("trace_id")
@db_option
def unhold_command(trace_id: str, db: str) -> None:
    """Remove a trace's hold."""
    tid = _trace_id(trace_id)
    _check_db(db)
    try:
        found = unhold(db, tid)
    except RetentionError as exc:
        raise _failed(exc) from None
    if not found:
        raise click.ClickException(f"{tid} is not held")
    click.echo(f"released {tid}")


@main.command("holds")
@db_option
def holds_command(db: str) -> None:
    """List the holds, newest first (expired ones until gc removes them)."""
    _check_db(db)
    try:
        found = list_holds(db)
    except RetentionError as exc:
        raise _failed(exc) from None
    if not found:
        click.echo("no holds", err=True)
        return
    now = time.time_ns()
    for h in found:
        until = "-" if h.until_ns is None else when_text(h.until_ns)
        state = "active" if h.active(now) else "expired"
        click.echo(
            "  ".join(
                [clean(h.trace_id, 40), state, f"since {when_text(h.created_ns)}", f"until {until}"]
                + ([clean(h.reason, 300)] if h.reason else [])
            )
        )
