"""``alamos demo``: a layered workload over loopback, instrumented with
alamos, exported to a database, then summarised from that database."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import click

from alamos.cli import main
from alamos.cli.database import DEFAULT_DB, ENV_DB, shown_url, to_url

if TYPE_CHECKING:
    from rich.console import Console


def _ms(ns: object) -> str:
    return "-" if ns is None else f"{int(ns) / 1e6:.2f}"  # type: ignore[call-overload]


@main.command()
@click.option("--seconds", default=5.0, show_default=True, type=click.FloatRange(0.1, 3600))
@click.option(
    "--db",
    default=None,
    help=f"Database: a SQLite file path or a URL (default: $ALAMOS_DB, else {DEFAULT_DB} "
    "in the working directory).",
)
@click.option("--clients", default=8, show_default=True, type=click.IntRange(1, 512))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes: 1 runs everything here; N runs N-1 storage processes behind HTTP.",
)
@click.option("--level", default="debug", show_default=True, help="Level filter spec.")
def demo(seconds: float, db: str | None, clients: int, workers: int, level: str) -> None:
    """Run an instrumented api → cesium → storage server with concurrent
    clients, export everything, and print a per-layer summary read back from
    the database with SQL."""
    import anyio
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    import alamos
    from alamos.demo.rules import DEMO_RULES, print_rules
    from alamos.demo.summary import DEMO_STATS_ATTRIBUTES, summarise

    try:
        from alamos.demo.workload import Counters, run_workload
    except ImportError as exc:  # the demo runs on uvicorn, Starlette and httpx
        raise click.UsageError(
            f"the demo needs its extra ({exc.name or exc}): pip install 'alamos[demo]'"
        ) from None

    url = to_url(db or os.environ.get(ENV_DB) or DEFAULT_DB)
    console = Console()
    since = time.time_ns()
    try:
        root = alamos.new(
            "demo",
            service="demo-api",
            db=url,
            level=level,
            console=False,
            stats_attributes=DEMO_STATS_ATTRIBUTES,
            rules=DEMO_RULES,
        )
    except (ValueError, ImportError) as exc:
        raise click.UsageError(str(exc)) from None
    with Progress(
        TextColumn("[bold]demo[/]"),
        BarColumn(),
        TextColumn("{task.fields[requests]} requests, {task.fields[errors]} errors"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("run", total=1.0, requests=0, errors=0)

        def progress(fraction: float, counters: Counters) -> None:
            bar.update(task, completed=fraction, requests=counters.requests, errors=counters.errors)

        counters = anyio.run(
            lambda: run_workload(
                root,
                seconds=seconds,
                clients=clients,
                workers=workers,
                db=url,
                level=level,
                progress=progress,
            )
        )
    t0 = time.monotonic()
    durable = root.flush(timeout=60)
    root.close(timeout=60)
    pending = root.stats().spool_pending_bytes
    console.print(
        f"{counters.requests} requests in {seconds:g}s over {workers} process(es); "
        f"flushed and closed in {time.monotonic() - t0:.2f}s"
        + ("" if durable else " [yellow](flush timed out)[/]")
        + (
            f" [yellow]({pending} bytes still in the spool: replayed at the next start,"
            " so the summary below misses them)[/]"
            if pending
            else ""
        )
    )
    summary = summarise(url, since, "demo%")
    table = Table(title=f"Per-layer summary (from {shown_url(url)})")
    for col in ("layer", "spans", "p50 ms", "p99 ms", "errors", "logs"):
        table.add_column(col, justify="left" if col in ("layer", "logs") else "right")
    logs = summary["logs"]
    for row in summary["layers"]:
        levels = logs.get(row["path"], {})
        table.add_row(
            row["path"],
            str(row["spans"]),
            _ms(row["p50_ns"]),
            _ms(row["p99_ns"]),
            str(row["errors"]),
            ", ".join(f"{k}={v}" for k, v in sorted(levels.items())) or "-",
        )
    for path in sorted(set(logs) - {r["path"] for r in summary["layers"]}):
        levels = logs[path]
        table.add_row(path, "0", "-", "-", "0", ", ".join(f"{k}={v}" for k, v in levels.items()))
    console.print(table)
    _print_budgets(console, url, since)
    print_rules(console, url, since)
    _print_stats(console, url, since)


def _print_stats(console: Console, url: str, since: int) -> None:
    """The live span statistics (``alamos stats``), merged over this run's windows."""
    from rich.text import Text

    from alamos.cli.stats import print_table
    from alamos.core.errors import TraceQueryError
    from alamos.demo.summary import span_statistics

    try:
        summaries = span_statistics(url, since)
    except TraceQueryError as exc:
        console.print(Text(f"span statistics unavailable: {exc}", style="yellow"))
        return
    if not summaries:
        return
    print_table(summaries, "Span statistics, ms (alamos stats)", console, compact=True)
    for s in summaries:
        for name, a in s.stats.attributes.items():
            console.print(
                Text(
                    f"  {s.path} {s.name}: {name} mean {a.mean:,.1f} "
                    f"(min {a.min:,.0f}, max {a.max:,.0f}; {a.count:,} spans)"
                )
            )


def _print_budgets(console: Console, url: str, since: int) -> None:
    """The frame-budget summary: where each request's time goes, per layer."""
    from rich.table import Table
    from rich.text import Text

    from alamos.core.errors import TraceQueryError
    from alamos.demo.summary import DEMO_FRAMES, frame_budgets

    try:
        reports = frame_budgets(url, since)
    except TraceQueryError as exc:
        console.print(Text(f"frame budgets unavailable: {exc}", style="yellow"))
        return
    reports = [r for r in reports if r.frame.frames]
    if not reports:
        console.print(f"Frame budgets: no {' or '.join(map(repr, DEMO_FRAMES))} frames recorded")
        return
    table = Table(title="Frame budgets (share of the frames' time; budgets nest)")
    for col in ("frame", "budget", "frames", "count", "total ms", "mean ms", "share"):
        table.add_column(col, justify="left" if col in ("frame", "budget") else "right")
    for report in reports:
        f = report.frame
        table.add_row(
            Text(f.name, style="bold"),
            "(frame)",
            f"{f.frames:,}",
            f"{f.frames:,}",
            _ms(f.total_ns),
            _ms(f.mean_ns),
            "100.0%",
        )
        for b in report.budgets:
            table.add_row(
                "",
                b.budget,
                f"{b.frames:,}",
                f"{b.count:,}",
                _ms(b.total_ns),
                _ms(b.mean_ns),
                "-" if b.share is None else f"{b.share * 100:.1f}%",
            )
    console.print(table)
