"""``alamos dashboard``: serve the local web UI over the database.

Loopback only unless ``--allow-remote``; then every request must carry a
token (see :mod:`alamos.dashboard.security` for why).  Needs the
``dashboard`` extra: ``pip install 'alamos[dashboard]'``.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import click

from alamos.cli import main
from alamos.cli.budgets import budget_map_of
from alamos.cli.database import db_option, shown_url
from alamos.cli.traces import clean

__all__ = ["DEFAULT_PORT", "dashboard"]

DEFAULT_PORT = 8710
ENV_TOKEN = "ALAMOS_DASHBOARD_TOKEN"
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,200}")


@main.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a non-loopback --host; every request must then carry the token.",
)
@click.option(
    "--token",
    envvar=ENV_TOKEN,
    show_envvar=True,
    default=None,
    help="The token for --allow-remote (16+ of A-Z a-z 0-9 _ -); default: a random one, printed.",
)
@click.option(
    "--budgets",
    "budgets_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A budget map (TOML) for the analysis page's frame budgets.",
)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Recording rules (TOML): the analysis page shows each rule's latest series.",
)
@click.option(
    "--refresh",
    default=10,
    show_default=True,
    type=click.IntRange(2, 3600),
    help="Seconds between auto-refreshes (when the page's toggle is on).",
)
def dashboard(
    db: str,
    host: str,
    port: int,
    allow_remote: bool,
    token: str | None,
    budgets_file: Path | None,
    rules_file: Path | None,
    refresh: int,
) -> None:
    """Serve the dashboards (tree, layers, traces, search, analysis, debug
    sessions) over the alamos database, on http://127.0.0.1:8710 by default."""
    try:
        import uvicorn

        from alamos.dashboard import create_app
        from alamos.dashboard.security import is_loopback
    except ImportError as exc:
        raise click.UsageError(
            f"the dashboard needs its extra ({exc.name} is missing): "
            "pip install 'alamos[dashboard]'"
        ) from None
    from alamos.core.errors import RulesError, TraceQueryError
    from alamos.rules import RuleSet

    loopback = is_loopback(host)
    if not loopback and not allow_remote:
        raise click.UsageError(
            f"refusing to listen on {clean(host, 100)}, which is not a loopback address: the "
            "dashboard shows everything your programs recorded. Add --allow-remote to serve "
            "it to other machines (every request must then carry a token), or use "
            "--host 127.0.0.1."
        )
    if not loopback:
        if token is None:
            token = secrets.token_urlsafe(24)
        elif not _TOKEN_RE.fullmatch(token):
            raise click.BadParameter(
                "use 16 to 200 of the characters A-Z a-z 0-9 _ -", param_hint="--token"
            )
    budgets = budget_map_of(budgets_file)
    rules = None
    if rules_file is not None:
        try:
            rules = RuleSet.from_toml(rules_file)
        except RulesError as exc:
            raise click.BadParameter(clean(str(exc), 4000), param_hint="--rules") from None
    try:
        app = create_app(
            db,
            token=None if loopback else token,
            loopback_only=loopback,
            budgets=budgets,
            rules=rules,
            rules_file=None if rules_file is None else str(rules_file),
            refresh_seconds=refresh,
        )
    except TraceQueryError as exc:
        raise click.BadParameter(clean(str(exc), 500), param_hint="--db") from None
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    click.echo(f"alamos dashboard on {url} (database: {clean(shown_url(db), 300)})")
    if not loopback:
        click.echo(f"remote access on: open {url}?token={token} (keep the token secret)")
    click.echo("Ctrl+C to stop")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=os.environ.get("ALAMOS_LOG", "warning"),
        access_log=False,
        lifespan="on",
    )
