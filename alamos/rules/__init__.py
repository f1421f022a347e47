"""alamos.rules: recording rules, spans turned into Prometheus metrics.

* :class:`Rule` and :class:`RuleSet` (:mod:`alamos.rules.rule`): what a rule
  is, from Python or TOML (:mod:`alamos.rules.toml_file`), checked as
  ``promtool check rules`` checks (:mod:`alamos.rules.check`, the names and
  defaults in :mod:`alamos.rules.names`), matched by generated code
  (:mod:`alamos.rules.matchers`);
* :class:`RuleEngine` (:mod:`alamos.rules.live`): the live series, fed on
  the collector's worker (``alamos.new(..., rules=...)``);
* :func:`backfill` (:mod:`alamos.rules.backfill`): the same series computed
  from the stored spans, into ``alamos_metrics``.

Like the other analysis packages, it imports only :mod:`alamos.core` and
:mod:`alamos.report.sql`; :mod:`alamos.experiment` wires it into a tree.
"""

from alamos.core.errors import RuleProblem, RulesError
from alamos.rules.live import RuleEngine
from alamos.rules.names import (
    AGGREGATIONS,
    DEFAULT_BUCKETS,
    DEFAULT_MAX_RULES,
    DEFAULT_MAX_SERIES,
    OVERFLOW_METRIC,
)
from alamos.rules.rule import Rule, RuleSet

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_BUCKETS",
    "DEFAULT_MAX_RULES",
    "DEFAULT_MAX_SERIES",
    "OVERFLOW_METRIC",
    "Rule",
    "RuleEngine",
    "RuleProblem",
    "RuleSet",
    "RulesError",
]
