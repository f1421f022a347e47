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


def _ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:,.3f}"


def print_table(summaries: list[Summary], title: str, console: Any = None) -> None:
    """``summaries`` as one rich table (also used by the demo's summary)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    if console is None:
        console = Console(highlight=False, width=None if sys.stdout.isatty() else PIPE_WIDTH)
    table = Table(title=title)
    by_name = any(s.name is not None for s in summaries)
    heads = ["path", *(["name"] if by_name else []), "count", "errors", "mean ms", "stddev ms"]
    for col in (*heads, "p50 ms", "p99 ms", "max ms"):
        table.add_column(col, justify="left" if col in ("path", "name") else "right")
    for s in summaries:
        st = s.stats
        row: list[Any] = [Text(clean(s.path, 200))]
        if by_name:
            row.append(Text(clean(s.name or "", 200)))
        row += [
            f"{st.count:,}",
            f"{st.error_rate * 100:.1f}%",
            _ms(st.mean_ns),
            _ms(st.stddev_ns),
            _ms(st.quantile(0.5)),
            _ms(st.quantile(0.99)),
            _ms(st.max_ns),
        ]
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
    print_table(summaries, f"Span statistics ({len(rows):,} rows, {len(windows):,} windows)")
