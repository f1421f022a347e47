"""``alamos rules check`` and ``alamos rules backfill``: recording rules.

``check FILE...`` validates rule files the way ``promtool check rules``
does, with its output and exit codes::

    Checking rules.toml
      SUCCESS: 3 rules found

or ``  FAILED:`` followed by one line per problem (on stderr), each naming
the file, the rule (its position and metric) and the field.  Exit status:
0 when every file is valid, 1 when a file has a problem or cannot be read
(promtool's ``failureExitCode``), 2 for a usage error (a missing argument,
an unknown option: click's usage errors, as everywhere in ``alamos``;
promtool uses 1 there).

``backfill FILE --db URL --since 7d --step 1m`` computes the rules' series
from the stored spans into ``alamos_metrics`` (:mod:`alamos.rules.backfill`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from alamos.cli import main
from alamos.cli.traces import clean, db_option
from alamos.core.duration import duration_seconds
from alamos.core.errors import RulesError, TraceQueryError
from alamos.rules import RuleSet
from alamos.rules.backfill import DEFAULT_PATH, backfill

__all__ = ["rules"]


@main.group()
def rules() -> None:
    """Recording rules: turn spans into Prometheus metrics (see docs/rules.md)."""


@rules.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def check(files: tuple[Path, ...]) -> None:
    """Check rule files as `promtool check rules` does: exit 0 if all are
    valid, 1 if any has a problem (each printed with its rule and field)."""
    failed = False
    for path in files:
        click.echo(f"Checking {clean(path)}")
        try:
            loaded = RuleSet.from_toml(path)
        except RulesError as exc:
            failed = True
            click.echo("  FAILED:", err=True)
            for problem in exc.problems:
                click.echo(clean(str(problem), 2000), err=True)
            click.echo("", err=True)
            continue
        click.echo(f"  SUCCESS: {len(loaded)} rules found")
        click.echo("")
    if failed:
        raise SystemExit(1)


def _duration_ns(text: str, option: str) -> int:
    try:
        return int(duration_seconds(text) * 1e9)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@rules.command("backfill")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@db_option
@click.option(
    "--since", default="7d", show_default=True, help="First sample: this long ago (30m, 2h, 7d)."
)
@click.option("--step", default="1m", show_default=True, help="Time between samples (1m, 10s).")
@click.option("--until", default=None, help="Last sample: this long ago (default: now).")
@click.option(
    "--path",
    "row_path",
    default=DEFAULT_PATH,
    show_default=True,
    help="The path column of the stored samples.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def backfill_command(
    file: Path,
    db: str,
    since: str,
    step: str,
    until: str | None,
    row_path: str,
    as_json: bool,
) -> None:
    """Compute the series of the rules in FILE from the spans stored in the
    database, into alamos_metrics: one sample per series at the end of each
    step in which it changed, cumulative like a Prometheus counter.  Running
    it again stores nothing twice."""
    try:
        loaded = RuleSet.from_toml(file)
    except RulesError as exc:
        raise click.BadParameter(clean(str(exc), 4000), param_hint="FILE") from None
    step_ns = _duration_ns(step, "--step")
    if step_ns <= 0:
        raise click.BadParameter("the step must be longer than 0", param_hint="--step")
    now = time.time_ns()
    since_at = now - _duration_ns(since, "--since")
    until_at = None if until is None else now - _duration_ns(until, "--until")
    try:
        result = backfill(
            db, loaded, since_ns=since_at, step_ns=step_ns, until_ns=until_at, path=row_path
        )
    except ValueError as exc:
        raise click.UsageError(clean(str(exc), 2000)) from None
    except TraceQueryError as exc:
        raise click.ClickException(clean(str(exc), 2000)) from None
    if as_json:
        doc = {
            "since_ns": result.since_ns,
            "until_ns": result.until_ns,
            "step_ns": result.step_ns,
            "rules": [
                {
                    "metric": r.metric,
                    "series": r.series,
                    "samples": r.samples,
                    "overflowed": r.overflowed,
                }
                for r in result.rules
            ],
        }
        click.echo(json.dumps(doc, indent=2))
        return
    for r in result.rules:
        line = f"{clean(r.metric)}: {r.series} series, {r.samples} samples"
        if r.overflowed:
            line += f" ({r.overflowed} spans in the overflow series: raise max_series)"
        click.echo(line)
    click.echo(
        f"{result.samples} samples in all (a sample stored by an earlier run is kept, "
        "not stored twice)"
    )
