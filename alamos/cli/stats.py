"""``alamos stats``: the windowed span statistics, read from the database.

The rows of ``alamos_span_stats`` in the time range are merged per span
name (``--by name``: per path and name) or per experiment path (``--by
path``) by :func:`alamos.stats.summarize`, and printed as a rich table
(count, error rate, mean, standard deviation, p50, p99, max) or, with
``--json``, as JSON with the same figures (nanoseconds) for scripts.
Quantiles come from the merged DDSketch: within 1% of the true value.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from alamos.cli import main
from alamos.cli.traces import clean, db_option, since_ns
from alamos.core.errors import TraceQueryError
from alamos.stats import Summary, read_stats, summarize
from alamos.stats.read import BY

__all__ = ["print_table", "stats"]

#: Width of the table when the output is not a terminal.
PIPE_WIDTH = 160


def _ms(ns: float | None, digits: int = 3) -> str:
    return "-" if ns is None or ns != ns else f"{ns / 1e6:,.{digits}f}"


def print_table(
    summaries: list[Summary], title: str, console: Any = None, *, compact: bool = False
) -> None:
    """``summaries`` as one rich table (the demo's summary uses it too, ``compact``:
    path and name in one column, no attribute column: fits 80 columns)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    if console is None:
        console = Console(highlight=False, width=None if sys.stdout.isatty() else PIPE_WIDTH)
    if compact:
        table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    else:
        table = Table(title=title)
    by_name = any(s.name is not None for s in summaries)
    with_attributes = not compact and any(s.stats.attributes for s in summaries)
    ms = "" if compact else " ms"
    names = ["span"] if compact else ["path", *(["name"] if by_name else [])]
    rate = "err%" if compact else "error rate"
    figures = ["count", rate, *(f"{h}{ms}" for h in ("mean", "stddev", "p50", "p99", "max"))]
    for col in names:
        table.add_column(col, no_wrap=compact)
    for col in figures:
        table.add_column(col, justify="right", no_wrap=compact)
    if with_attributes:
        table.add_column("attributes (mean)")
    for s in summaries:
        st = s.stats
        if compact:
            row: list[Any] = [Text(clean(f"{s.path} {s.name or ''}".strip(), 200))]
        else:
            row = [Text(clean(s.path, 200)), *([Text(clean(s.name or "", 200))] if by_name else [])]
        row += [f"{st.count:,}", f"{st.error_rate * 100:.1f}%"]
        values = (st.mean_ns, st.stddev_ns, st.quantile(0.5), st.quantile(0.99), st.max_ns)
        row += [_ms(v, 2 if compact else 3) for v in values]
        if with_attributes:
            means = ", ".join(f"{clean(k, 60)} {a.mean:,.1f}" for k, a in st.attributes.items())
            row.append(Text(means))
        table.add_row(*row)
    console.print(table)


@main.command()
@db_option
@click.option("--path", default=None, help="Only this experiment path and the ones below it.")
@click.option("--since", default=None, help="Only windows this recent: 30s, 10m, 2h, 1d.")
@click.option(
    "--by",
    type=click.Choice(BY),
    default="name",
    show_default=True,
    help="One line per span name (and path), or per experiment path.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats(db: str, path: str | None, since: str | None, by: str, as_json: bool) -> None:
    """Span statistics per name or path, merged over the stored windows:
    count, error rate, mean, standard deviation, p50, p99 and max."""
    if path is not None and not path:
        raise click.BadParameter("a path is an experiment's dotted path", param_hint="--path")
    since_at = since_ns(since)
    try:
        rows = read_stats(db, path=path, since_ns=since_at)
    except TraceQueryError as exc:
        raise click.ClickException(clean(str(exc), 2000)) from None
    summaries = summarize(rows, by="path" if by == "path" else "name")
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in summaries], indent=2))
        return
    if not summaries:
        click.echo("no statistics in that time range", err=True)
        return
    windows = {(r.window_start_ns, r.window_ns) for r in rows}
    print_table(summaries, f"Span statistics ({len(rows):,} rows, {len(windows):,} window(s))")
