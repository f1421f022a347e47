"""``--db``: which database a command reads, and what to say when it is not there.

Every command takes ``--db`` (default ``$ALAMOS_DB``, then ``alamos.db`` in
the working directory) as a URL (``sqlite:///file.db``,
``postgresql://user@host/db``) or as a plain file path (``telemetry.db``,
``~/data/alamos.db``), which means that SQLite file.  When the database
cannot be read, the message says which one was tried, why, and how to point
at another one.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from alamos.experiment.config import ENV_DB

__all__ = ["DEFAULT_DB", "ENV_DB", "db_option", "db_problem", "shown_url", "to_url"]

DEFAULT_DB = "sqlite:///alamos.db"

#: A URL starts with a scheme and "://" (RFC 3986 scheme characters).
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")

HOW = (
    "Point at the database with --db (a file path such as telemetry.db, or a URL: "
    "sqlite:///path/to/file.db, postgresql://user@host/dbname) or the ALAMOS_DB "
    "environment variable."
)


def to_url(value: str) -> str:
    """``value`` as a database URL: a URL as it is, anything else a SQLite
    file path (made absolute, ``~`` expanded)."""
    text = value.strip()
    if _URL_RE.match(text):
        return text
    return f"sqlite:///{Path(text).expanduser().absolute()}"


def _callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    if value is None or not value.strip():
        value = DEFAULT_DB
    return to_url(value)


db_option = click.option(
    "--db",
    envvar=ENV_DB,
    default=DEFAULT_DB,
    show_default=True,
    show_envvar=True,
    callback=_callback,
    help="Database to read: a SQLite file path (telemetry.db) or a URL "
    "(sqlite:///file.db, postgresql://user@host/db).",
)


def db_problem(message: str) -> str:
    """``message`` (why the database could not be read) with where the
    database came from and how to point at another one."""
    ctx = click.get_current_context(silent=True)
    source = None
    if ctx is not None:
        source = ctx.get_parameter_source("db")
    if source is click.core.ParameterSource.DEFAULT:
        origin = f"No --db was given and {ENV_DB} is not set, so {DEFAULT_DB} was tried."
    elif source is click.core.ParameterSource.ENVIRONMENT:
        origin = f"The database came from {ENV_DB}."
    else:
        origin = ""
    return "\n".join(part for part in (message, origin, HOW) if part)


def shown_url(url: str) -> str:
    """``url`` with any password hidden, for printing."""
    from alamos.report.sql import normalize_url  # SQLAlchemy: only when printing

    try:
        return normalize_url(url).render_as_string(hide_password=True)
    except ValueError:
        return "<invalid database URL>"
