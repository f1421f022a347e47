"""Running a tree's retention policy in the background.

``alamos.new(..., retention=Policy(...), retention_interval=3600)`` starts an
:class:`alamos.retention.Background` thread (its own, not the collector's
worker) that runs garbage collection on the tree's databases: ``db=`` and
every :class:`~alamos.report.sql.SQLExporter` of ``exporters=``.  It works
on the database, not on records, so it runs the same whether or not the
tree has a collector; a tree without a SQL database cannot have one
(ValueError).  It stops when the root closes.

When several processes share a database, give ``retention=`` to one of them
(the others may too: one gc runs at a time per database, the others skip
their turn), or run ``alamos gc`` from cron instead.
"""

from __future__ import annotations

from alamos.experiment.config import Config
from alamos.experiment.root import RootState

__all__ = ["start_retention"]


def start_retention(config: Config, state: RootState) -> None:
    """Start ``config.retention`` in the background, stopped at the root's close."""
    if config.retention is None:
        return
    from alamos.report.sql import SQLExporter
    from alamos.retention import Background

    urls = [
        e.url.render_as_string(hide_password=False)
        for e in state.exporters
        if isinstance(e, SQLExporter)
    ]
    if not urls:
        raise ValueError(
            "retention= needs a SQL database to collect: pass db='sqlite:///alamos.db' "
            "(or a SQLExporter in exporters=)"
        )
    background = Background(list(dict.fromkeys(urls)), config.retention, config.retention_interval)
    if state.add_closer(background.stop):
        background.start()
