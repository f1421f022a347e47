"""The ``alamos`` command line.

Each subcommand lives in its own module and registers itself on :data:`main`.
"""

from __future__ import annotations

import click

__all__ = ["main"]


@click.group()
@click.version_option(package_name="alamos")
def main() -> None:
    """alamos: instrumentation as a tree of experiments."""


def _register() -> None:
    # Imported for their side effect of adding commands to ``main``.
    from alamos.cli import (
        budgets,  # noqa: F401
        dashboard,  # noqa: F401
        demo,  # noqa: F401
        records,  # noqa: F401
        retention,  # noqa: F401
        rules,  # noqa: F401
        stats,  # noqa: F401
        traces,  # noqa: F401
    )


_register()
