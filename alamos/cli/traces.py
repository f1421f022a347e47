"""``alamos trace`` and ``alamos traces``: read traces back from the database.

The output is plain text, one record per line, so it can be piped to
``grep``/``less``; colour is added only on a terminal (click strips it
otherwise).  Everything printed that comes from the database goes through
:func:`clean`, which escapes control and format characters: a database is
shared input, and a span name or log message holding an escape sequence
must not be able to rewrite the user's terminal.
"""

from __future__ import annotations

import json
import time
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime

import click

from alamos.cli import main
from alamos.cli.database import db_option, db_problem, shown_url
from alamos.core.duration import duration_seconds
from alamos.core.records import LogRecord, SpanRecord
from alamos.report.query import (
    TraceNode,
    TraceQueryError,
    TraceSummary,
    build_tree,
    load_trace,
    recent_traces,
    unattached_logs,
    valid_trace_id,
)

__all__ = [
    "clean",
    "db_option",
    "parse_since",
    "since_ns",
    "trace",
    "traces",
    "unreadable",
    "when_text",
]

#: Longest text shown for one field (a name, a message...); the rest is cut.
MAX_FIELD = 500

# Categories escaped by clean(): controls, format characters (bidi overrides,
# zero-width...), line/paragraph separators, surrogates, unassigned.
_UNSAFE = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))


def clean(value: object, limit: int = MAX_FIELD) -> str:
    """``value`` as one line of printable text: unsafe characters escaped
    (``\\x1b``, ``\\n``, ``\\u202e``...) and the result cut at ``limit``."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if unicodedata.category(ch) in _UNSAFE:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def parse_since(text: str, now_ns: int | None = None) -> int:
    """``"10m"`` (or ``30s``, ``2h``, ``1.5d``, ``1w``, ``500ms``) as an
    absolute time in ns since the epoch: that long before ``now_ns``."""
    seconds = duration_seconds(text)
    now = time.time_ns() if now_ns is None else now_ns
    return now - int(seconds * 1e9)


def since_ns(since: str | None) -> int | None:
    """The ``--since`` option as a time in ns (``None`` if not given), or a
    usage error naming the option."""
    if since is None:
        return None
    try:
        return parse_since(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.3f} ms"


def when_text(ns: int) -> str:
    dt = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _status(status: str) -> str:
    text = clean(status, 20)
    return click.style(text, fg="red", bold=True) if status == "error" else text


def _span_line(node: TraceNode, depth: int) -> str:
    s: SpanRecord = node.span
    parts = [
        "  " * depth + clean(s.name),
        f"[{clean(s.service, 100)}@{clean(s.node, 100)}]",
        clean(s.path, 200),
        _ms(s.end_ns - s.start_ns),
        _status(s.status),
        f"span={clean(s.span_id, 40)}",
    ]
    if node.orphan:
        parts.append(
            click.style(
                f"(orphan: parent {clean(s.parent_id or '?', 40)} not in trace)", fg="yellow"
            )
        )
    if s.error_text:
        parts.append(f"error={clean(s.error_text)}")
    return "  ".join(parts)


def _log_line(log: LogRecord, depth: int, since: int | None) -> str:
    # Relative to the span's start: both times come from the same process
    # clock, so the offset is meaningful even when nodes' clocks disagree.
    when = f"+{_ms(log.ts_ns - since)}" if since is not None else when_text(log.ts_ns)
    return "  ".join(
        [
            "  " * depth + "| " + clean(log.level, 12).ljust(8),
            when,
            clean(log.message),
        ]
    )


def _fail(message: str) -> click.ClickException:
    return click.ClickException(clean(message, 2000))


def unreadable(exc: TraceQueryError) -> click.ClickException:
    """A database that cannot be read: why, and how to point at another one
    (one line each, each line cleaned)."""
    lines = db_problem(str(exc)).split("\n")
    return click.ClickException("\n".join(clean(line, 2000) for line in lines))


def _value(value: object) -> str:
    # JSON for text, so that "a b" and a number stay apart from the key.
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)


def _pairs(attributes: Mapping[str, object]) -> str:
    return " ".join(f"{k}={_value(v)}" for k, v in sorted(attributes.items()))


def _detail_lines(node: TraceNode, depth: int, verbose: bool) -> list[str]:
    """The span's attributes on one line, and with ``-v`` one line per event
    (time relative to the span's start)."""
    s = node.span
    pad = "  " * (depth + 1)
    out = []
    if s.attributes:
        out.append(f"{pad}@ {clean(_pairs(s.attributes), 2000)}")
    if verbose:
        for e in s.events:
            line = f"{pad}* {clean(e.name, 200)}  +{_ms(e.ts_ns - s.start_ns)}"
            if e.attributes:
                shown = {k: v for k, v in e.attributes.items() if k != "exception.stacktrace"}
                line += f"  {_pairs(shown)}"
            out.append(clean(line, 4000))
    return out


@main.command()
@click.argument("trace_id")
@db_option
@click.option("-v", "--verbose", is_flag=True, help="Also print each span's events.")
def trace(trace_id: str, db: str, verbose: bool) -> None:
    """Print the tree of one trace: every span, indented under its parent,
    with service@node, path, duration and status, its attributes (``@``
    line), its events with -v (``*`` lines) and its logs (``|`` lines)."""
    tid = trace_id.strip().lower()
    if not valid_trace_id(tid):
        raise click.BadParameter(
            f"{clean(trace_id, 80)!r} is not a trace id: expected 32 hex digits",
            param_hint="TRACE_ID",
        )
    try:
        spans, logs = load_trace(db, tid)
    except TraceQueryError as exc:
        raise unreadable(exc) from None
    if not spans and not logs:
        raise _fail(f"no trace {tid} in {shown_url(db)}")
    services = sorted({s.service for s in spans})
    click.echo(
        f"trace {tid}  spans={len(spans)}  logs={len(logs)}  "
        f"services={','.join(clean(x, 100) for x in services)}"
    )
    for root in build_tree(spans, logs):
        for depth, node in root.walk():
            click.echo(_span_line(node, depth))
            for line in _detail_lines(node, depth, verbose):
                click.echo(line)
            for log in node.logs:
                click.echo(_log_line(log, depth + 1, node.span.start_ns))
    loose = unattached_logs(spans, logs)
    if loose:
        click.echo("logs of no span in this trace:")
        for log in loose:
            click.echo(_log_line(log, 1, None))


@main.command()
@db_option
@click.option("--path", "path", default=None, help="Only traces with a span in this subtree.")
@click.option("--since", default=None, help="Only traces active this recently: 30s, 10m, 2h, 1d.")
@click.option("--errors", is_flag=True, help="Only traces with a span in error.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
def traces(db: str, path: str | None, since: str | None, errors: bool, limit: int) -> None:
    """List recent traces, newest first, one line each: trace id, start time,
    root span, services, span count, duration and status."""
    try:
        found = recent_traces(
            db, path=path, since_ns=since_ns(since), errors_only=errors, limit=limit
        )
    except TraceQueryError as exc:
        raise unreadable(exc) from None
    for t in found:
        click.echo(_summary_line(t))
    if not found:
        click.echo("no traces found", err=True)


def _summary_line(t: TraceSummary) -> str:
    if t.root is None:
        root = "?"
    else:
        root = f"{clean(t.root.name, 200)} [{clean(t.root.service, 100)}]"
        if not t.complete:
            root += " (root missing)"
    return "  ".join(
        [
            clean(t.trace_id, 40),
            when_text(t.start_ns),
            root,
            f"services={','.join(clean(x, 100) for x in t.services)}",
            f"spans={t.span_count}",
            _ms(t.duration_ns),
            _status(t.status),
        ]
    )
