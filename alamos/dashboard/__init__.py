"""alamos.dashboard: a local web UI over the alamos database.

``alamos dashboard --db URL`` serves it (:mod:`alamos.cli.dashboard`);
:func:`create_app` builds the ASGI app.  Pages: the tree of experiments
(rates, errors, p50/p99, logs by level, a sparkline per layer), one layer
(charts, slowest spans, recent errors, logs, metrics, latest report), one
trace (a waterfall by parent links, critical path, orphans), trace search,
analysis (frame budgets) and debug sessions.

It sits on top (beside ``demo``, ``testing``, ``asgi`` and ``httpx``) and
reads through :mod:`alamos.report.query` and the tables of
:mod:`alamos.report.sql.schema`.  It needs the ``dashboard`` extra
(Starlette, uvicorn, Jinja2): ``pip install 'alamos[dashboard]'``.
"""

from alamos.dashboard.app import create_app

__all__ = ["create_app"]
