"""The names a recording rule may use: metric and label syntax, reserved names, defaults.

Prometheus' own rules (``[a-zA-Z_:][a-zA-Z0-9_:]*`` for metrics,
``[a-zA-Z_][a-zA-Z0-9_]*`` for labels, ``__`` reserved), alamos' reserved
names (its overflow counter, the ``le`` and ``overflow`` labels), the limits,
and how an attribute key becomes a label name.  Apart from
:class:`~alamos.rules.rule.Rule` so that the checks
(:mod:`~alamos.rules.check`), the live engine and the backfill share one
source for them without importing one another.
"""

from __future__ import annotations

import re

__all__ = [
    "AGGREGATIONS",
    "BUILTIN_LABELS",
    "DEFAULT_BUCKETS",
    "DEFAULT_MAX_RULES",
    "DEFAULT_MAX_SERIES",
    "LABEL_NAME",
    "LEVELS",
    "MAX_KEY",
    "METRIC_NAME",
    "OVERFLOW_METRIC",
    "RESERVED_LABELS",
    "STATUSES",
    "SUM_AGGREGATION",
    "attribute_key_ok",
    "bad_key",
    "family_name",
    "label_of",
]

#: Rules a :class:`RuleSet` takes at most (each costs the worker a match per span).
DEFAULT_MAX_RULES = 100
#: Series a rule keeps before new label sets go to its overflow series
#: (the OpenTelemetry SDK's default cardinality limit, as in alamos.metrics).
DEFAULT_MAX_SERIES = 2000
#: prometheus_client's default histogram buckets, in seconds.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
#: The counter of spans sent to a rule's overflow series, labelled ``rule``.
OVERFLOW_METRIC = "alamos_rule_overflow"
#: The aggregations, ``sum(<attribute>)`` standing for any attribute.
AGGREGATIONS = ("count", "duration_sum", "duration_histogram", "sum(<attribute>)")
#: Labels taken from the span itself rather than an attribute.
BUILTIN_LABELS = ("path", "name", "status", "level")
#: Label names a rule cannot use: ``le`` (histogram buckets), ``overflow``.
RESERVED_LABELS = ("le", "overflow")

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
SUM_AGGREGATION = re.compile(r"sum\((.*)\)", re.DOTALL)
_NOT_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")
LEVELS = ("bench", "debug", "prod")
STATUSES = ("unset", "ok", "error")
MAX_KEY = 256  # an attribute key is cut at 256 characters when it is set


def family_name(metric: str) -> str:
    """A counter's family name: ``metric`` without a trailing ``_total``
    (prometheus_client adds it back to the sample)."""
    return metric[: -len("_total")] if metric.endswith("_total") else metric


def label_of(key: str) -> str:
    """The label name of an attribute key: ``http.route`` → ``http_route``."""
    label = _NOT_LABEL_CHAR.sub("_", key)
    return "_" + label if label[:1].isdigit() else label


def attribute_key_ok(key: object) -> bool:
    """Whether ``key`` can name an attribute in a rule."""
    # '"' and '\' would need escaping in SQLite's JSON path; keys are short.
    return (
        isinstance(key, str)
        and 0 < len(key) <= MAX_KEY
        and key.isprintable()
        and '"' not in key
        and "\\" not in key
    )


def bad_key(key: object) -> str:
    """What is wrong with an attribute key ``attribute_key_ok`` refuses."""
    return (
        f"invalid attribute key {key!r}: use 1 to {MAX_KEY} printable characters "
        "without '\"' or '\\'"
    )
