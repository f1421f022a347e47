"""``alamos budgets``: frame budgets, top offenders and spikes, read from the database.

The analysis is :mod:`alamos.report.query.budgets` (SQL in the database);
this module only prints it, as rich tables or, with ``--json``, as JSON for
scripts.  Text from the database (span names as budgets, trace ids) goes
through :func:`~alamos.cli.traces.clean` and into rich ``Text`` objects, so
neither an escape sequence nor rich markup in a span name reaches the
terminal as such.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import attrs
import click

from alamos.cli import main
from alamos.cli.database import db_option
from alamos.cli.traces import clean, since_ns, unreadable, when_text
from alamos.report.query import (
    DEFAULT_SPIKE_FACTOR,
    DEFAULT_SPIKE_WINDOW,
    DEFAULT_TOP,
    BudgetMap,
    BudgetReport,
    FrameRow,
    TraceQueryError,
    budget_report,
    frames_of,
)

__all__ = ["budgets"]

#: Width of the tables when the output is not a terminal (a pipe, a file):
#: wide enough that a trace id is never wrapped.
PIPE_WIDTH = 200


def budget_map_of(path: Path | None) -> BudgetMap | None:
    """The map of a ``--budgets`` file (``None`` without one); a bad file is
    a :class:`click.BadParameter` on ``--budgets`` (``alamos budgets`` and
    ``alamos dashboard`` take the same option)."""
    if path is None:
        return None
    try:
        return BudgetMap.from_toml(path)
    except ValueError as exc:  # from_toml reports an unreadable file so too
        raise click.BadParameter(clean(str(exc), 2000), param_hint="--budgets") from None


def _ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:,.3f}"


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def _to_json(report: BudgetReport, spikes: list[FrameRow], factor: float, window: int) -> str:
    def row(obj: Any, **extra: Any) -> dict[str, Any]:
        return {**attrs.asdict(obj), **extra}

    doc = {
        "frame": row(report.frame, mean_ns=report.frame.mean_ns),
        "spike_rule": {"factor": factor, "window": window},
        "budgets": [row(b, mean_ns=b.mean_ns) for b in report.budgets],
        "top": report.top,
        "offenders": [row(o, share=o.share) for o in report.offenders],
        "spikes": [row(s) for s in spikes],
        "stored_spikes": report.stored_spikes,
    }
    return json.dumps(doc, indent=2)


def _print(report: BudgetReport, spikes: list[FrameRow], factor: float, window: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(
        highlight=False,
        width=None if sys.stdout.isatty() else PIPE_WIDTH,
    )
    f = report.frame
    console.print(
        Text.assemble(
            ("frame ", "bold"),
            (clean(f.name, 200), "bold cyan"),
            f": {f.frames:,} frames, {_ms(f.total_ns)} ms in all, "
            f"mean {_ms(f.mean_ns)} ms (min {_ms(f.min_ns)}, max {_ms(f.max_ns)}), ",
            (f"{f.spikes:,} spikes", "bold red" if f.spikes else ""),
            f" (over {factor:g}x the mean of the previous {window} frames)",
        )
    )
    table = Table(title="Budgets (per frame: over the frames that have the budget)")
    for col in ("budget", "frames", "count", "total ms", "min ms", "mean ms", "max ms", "share"):
        table.add_column(col, justify="left" if col == "budget" else "right")
    for b in report.budgets:
        table.add_row(
            Text(clean(b.budget, 200)),
            f"{b.frames:,}",
            f"{b.count:,}",
            _ms(b.total_ns),
            _ms(b.min_ns),
            _ms(b.mean_ns),
            _ms(b.max_ns),
            _pct(b.share),
        )
    console.print(table)
    for b in report.budgets:
        top = Table(title=Text(f"Top offenders: {clean(b.budget, 200)}"))
        for col in ("#", "trace id", "start", "frame ms", "budget ms", "count", "share", "spike"):
            top.add_column(col, justify="left" if col in ("trace id", "start") else "right")
        for rank, o in enumerate(report.offenders_of(b.budget), 1):
            top.add_row(
                str(rank),
                Text(clean(o.trace_id, 40)),
                when_text(o.start_ns),
                _ms(o.frame_ns),
                _ms(o.duration_ns),
                f"{o.count:,}",
                _pct(o.share),
                Text("spike", "bold red") if o.spike else "",
            )
        console.print(top)
    if spikes:
        table = Table(title=f"Spikes (the last {len(spikes)})")
        for col in ("trace id", "start", "frame ms", "previous mean ms", "ratio"):
            table.add_column(col, justify="left" if col in ("trace id", "start") else "right")
        for s in spikes:
            mean = s.previous_mean_ns
            table.add_row(
                Text(clean(s.trace_id, 40)),
                when_text(s.start_ns),
                _ms(s.duration_ns),
                _ms(mean),
                f"{s.duration_ns / mean:.2f}x" if mean else "-",
            )
        console.print(table)


@main.command()
@db_option
@click.option(
    "--frame",
    required=True,
    help="The span name that makes a frame, e.g. 'GET /items/{id}' or 'tick'.",
)
@click.option(
    "--budgets",
    "budgets_file",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help='TOML budget map: [budgets] db = ["sql.*", "query"] (default: one budget per name).',
)
@click.option("--since", default=None, help="Only frames started this recently: 30s, 10m, 2h, 1d.")
@click.option(
    "--top",
    default=DEFAULT_TOP,
    show_default=True,
    type=click.IntRange(min=1),
    help="Top offenders per budget (and spikes) shown.",
)
@click.option(
    "--spike-factor",
    default=DEFAULT_SPIKE_FACTOR,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True, max=1e9),
    help="A frame longer than this times the running mean is a spike.",
)
@click.option(
    "--spike-window",
    default=DEFAULT_SPIKE_WINDOW,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="The running mean is over this many previous frames.",
)
@click.option(
    "--store-spikes",
    is_flag=True,
    help="Also flag the spikes in the alamos_spikes table (for the dashboard and retention).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def budgets(
    db: str,
    frame: str,
    budgets_file: Path | None,
    since: str | None,
    top: int,
    spike_factor: float,
    spike_window: int,
    store_spikes: bool,
    as_json: bool,
) -> None:
    """Frame budgets: where the time of each frame (every span named FRAME)
    goes, per budget, with the frames that spent the most in each budget
    (their trace ids, for `alamos trace`) and the spikes."""
    if not frame:
        raise click.BadParameter("a frame is a span name: not empty", param_hint="--frame")
    bmap = budget_map_of(budgets_file)
    since_at = since_ns(since)
    try:
        report = budget_report(
            db,
            frame,
            bmap,
            since_ns=since_at,
            top=top,
            spike_factor=spike_factor,
            spike_window=spike_window,
            store_spikes=store_spikes,
        )
        spikes = frames_of(
            db,
            frame,
            since_ns=since_at,
            spike_factor=spike_factor,
            spike_window=spike_window,
            spikes_only=True,
            limit=top,
        )
    except TraceQueryError as exc:
        raise unreadable(exc) from None
    if as_json:
        click.echo(_to_json(report, spikes, spike_factor, spike_window))
        return
    if report.frame.frames == 0:
        click.echo(f"no frames: no span named {clean(frame, 200)!r} in that time range", err=True)
        return
    _print(report, spikes, spike_factor, spike_window)
    if report.stored_spikes is not None:
        click.echo(f"{report.stored_spikes:,} new spikes stored in alamos_spikes")
