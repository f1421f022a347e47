"""The demo's recording rule, and its summary read back from the database.

:data:`DEMO_RULES` counts the api's requests by handler and HTTP status.  It
runs live in the api process (``alamos.new(..., rules=DEMO_RULES)``), on
the collector's worker; its series are stored with the metric snapshots,
and :func:`rule_summary` reads this run's last values back with SQL.
``alamos rules backfill`` computes the same series from the stored spans.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from alamos.rules import Rule, RuleSet

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["DEMO_RULES", "RULE_SQL", "print_rules", "rule_summary"]

#: Requests the api served, by handler and HTTP status.
DEMO_RULES = RuleSet(
    [
        Rule(
            "demo_http_requests",
            help="Requests the api served, by handler and HTTP status (a recording rule)",
            path="demo.api",
            name_glob="* /kv/{key}",  # the middleware's spans (route templates)
            group_by=["name", "code=http.response.status_code"],
        )
    ]
)

#: Every stored sample of one rule metric since a time, newest last.
RULE_SQL = sa.text(
    """
    SELECT labels, value FROM alamos_metrics
    WHERE name = :name AND ts_ns >= :since AND service LIKE :service
    ORDER BY ts_ns, id
    """
)


def rule_summary(url: str, since_ns: int, service_like: str = "demo%") -> list[dict[str, Any]]:
    """This run's last value of each series of the demo rule:
    ``[{"labels": {...}, "value": n}]``, sorted by labels."""
    from alamos.report.sql import normalize_url

    (rule,) = DEMO_RULES
    engine = sa.create_engine(normalize_url(url))
    last: dict[str, dict[str, Any]] = {}
    try:
        with engine.connect() as conn:
            params = {"name": rule.metric, "since": since_ns, "service": service_like}
            for raw, value in conn.execute(RULE_SQL, params):
                labels = json.loads(raw) if isinstance(raw, str) else dict(raw)
                last[json.dumps(labels, sort_keys=True)] = {"labels": labels, "value": value}
    finally:
        engine.dispose()
    return sorted(last.values(), key=lambda s: (s["labels"].get("name", ""), str(s["labels"])))


def print_rules(console: Console, url: str, since_ns: int) -> None:
    """The rule's series as a table (what ``alamos demo`` prints)."""
    from rich.table import Table
    from rich.text import Text

    (rule,) = DEMO_RULES
    series = rule_summary(url, since_ns)
    if not series:
        console.print(f"Recording rule {rule.metric}: no series stored")
        return
    title = f"Recording rule {rule.metric}_total"
    caption = "live values, from alamos_metrics"
    table = Table(title=title, caption=caption, min_width=len(title) + 4)
    for col in ("name", "code", "requests"):
        table.add_column(col, justify="right" if col == "requests" else "left")
    for s in series:
        labels = s["labels"]
        table.add_row(
            Text(labels.get("name", "")), Text(labels.get("code", "")), f"{s['value']:,.0f}"
        )
    console.print(table)
