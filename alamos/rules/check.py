"""Checking recording rules, as ``promtool check rules`` checks them.

Every problem is collected, none raised on its own: a
:class:`~alamos.core.errors.RulesError` lists them all, each naming the
rule (its source, index and metric) and the field, with what to write
instead.  One rule alone (:func:`check_rule`, run when a
:class:`~alamos.rules.rule.Rule` is made) and a set of them
(:func:`set_problems`: how many, and no two exposing one sample name).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from alamos.core.errors import RuleProblem
from alamos.rules.names import (
    AGGREGATIONS,
    BUILTIN_LABELS,
    LABEL_NAME,
    LEVELS,
    METRIC_NAME,
    OVERFLOW_METRIC,
    RESERVED_LABELS,
    STATUSES,
    attribute_key_ok,
    bad_key,
    family_name,
    label_of,
)

if TYPE_CHECKING:
    from alamos.rules.rule import Rule

__all__ = ["check_rule", "set_problems"]


def check_rule(rule: Rule, source: str, index: int | None) -> list[RuleProblem]:
    """Everything wrong with ``rule`` alone, from ``source`` (its ``index`` there)."""
    name = (
        rule.metric if isinstance(rule.metric, str) and METRIC_NAME.fullmatch(rule.metric) else None
    )
    out: list[RuleProblem] = []

    def bad(field: str, message: str) -> None:
        out.append(RuleProblem(source, index, name, field, message))

    if not isinstance(rule.metric, str) or not METRIC_NAME.fullmatch(rule.metric):
        bad(
            "metric",
            f"invalid metric name {rule.metric!r}: use letters, digits, '_' and ':', "
            "not starting with a digit (regex [a-zA-Z_:][a-zA-Z0-9_:]*)",
        )
    elif rule.metric.startswith("__"):
        bad("metric", f"invalid metric name {rule.metric!r}: names starting '__' are reserved")
    elif family_name(rule.metric) == OVERFLOW_METRIC:
        bad("metric", f"the name {rule.metric!r} is reserved for alamos' overflow counter")
    for field in ("path", "name", "name_glob", "name_regex"):
        value = getattr(rule, field)
        if value is not None and not isinstance(value, str):
            bad(field, f"expected a string, got {value!r}")
    given = [f for f in ("name", "name_glob", "name_regex") if getattr(rule, f) is not None]
    if len(given) > 1:
        bad(given[1], f"give only one of name, name_glob and name_regex (got {given})")
    if isinstance(rule.name_regex, str):
        try:
            re.compile(rule.name_regex)
        except re.error as exc:
            bad("name_regex", f"invalid regex {rule.name_regex!r}: {exc}")
    for field, allowed in (("level", LEVELS), ("status", STATUSES)):
        for value in getattr(rule, field):
            if value not in allowed:
                bad(field, f"unknown {field} {value!r}: use one or a list of {list(allowed)}")
    _check_aggregation(rule, bad)
    _check_labels(rule, bad)
    for key, value in rule.attributes:
        if not attribute_key_ok(key):
            bad("attributes", bad_key(key))
        elif isinstance(value, float) or not isinstance(value, str | int | bool):
            bad("attributes", f"the value of {key!r} must be a string, int or bool, not {value!r}")
    if not isinstance(rule.help, str):
        bad("help", f"expected a string, got {rule.help!r}")
    ms = rule.max_series
    if isinstance(ms, bool) or not isinstance(ms, int) or ms < 1:
        bad("max_series", f"expected an int >= 1 (series kept per rule), got {ms!r}")
    return out


def _check_aggregation(rule: Rule, bad: Callable[[str, str], None]) -> None:
    agg = rule.aggregation
    attr = rule.sum_attribute if isinstance(agg, str) else None
    if not isinstance(agg, str) or (agg not in AGGREGATIONS[:3] and attr is None):
        bad("aggregation", f"unknown aggregation {agg!r}: use one of {', '.join(AGGREGATIONS)}")
    elif attr is not None and not attribute_key_ok(attr):
        bad("aggregation", "sum(<attribute>): " + bad_key(attr))
    if rule.buckets is None:
        return
    if agg != "duration_histogram":
        bad("buckets", "buckets are for aggregation = 'duration_histogram' only")
        return
    bounds = rule.buckets
    numbers = all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
    if not bounds or not numbers or not all(math.isfinite(b) and b >= 0 for b in bounds):
        bad("buckets", f"expected a list of finite bounds >= 0 in seconds, got {list(bounds)}")
    elif any(b >= c for b, c in itertools.pairwise(bounds)):
        bad("buckets", f"the bounds must increase strictly, got {list(bounds)}")


def _check_labels(rule: Rule, bad: Callable[[str, str], None]) -> None:
    seen: set[str] = set()

    def label_ok(field: str, label: str) -> None:
        if not LABEL_NAME.fullmatch(label):
            bad(
                field,
                f"invalid label name {label!r}: use letters, digits and '_', not starting "
                "with a digit (regex [a-zA-Z_][a-zA-Z0-9_]*)",
            )
        elif label.startswith("__") or label in RESERVED_LABELS:
            bad(field, f"the label name {label!r} is reserved ('__*', 'le', 'overflow')")
        elif label in seen:
            bad(field, f"duplicate label name {label!r}")
        seen.add(label)

    for entry in rule.group_by:
        if not isinstance(entry, str):
            bad("group_by", f"expected strings, got {entry!r}")
            continue
        label, sep, key = entry.partition("=")
        if sep and not attribute_key_ok(key.strip()):
            bad("group_by", bad_key(key.strip()))
        elif not sep and entry not in BUILTIN_LABELS and not attribute_key_ok(entry):
            bad("group_by", bad_key(entry))
        else:
            builtin = entry in BUILTIN_LABELS
            label_ok("group_by", label.strip() if sep else entry if builtin else label_of(entry))
    for label, value in rule.labels:
        if not isinstance(label, str):
            bad("labels", f"invalid label name {label!r}")
            continue
        label_ok("labels", label)
        if not isinstance(value, str):
            bad("labels", f"the value of label {label!r} must be a string, got {value!r}")


def set_problems(
    indexed: Sequence[tuple[int, Rule]], source: str, max_rules: int, total: int = 0
) -> list[RuleProblem]:
    """The problems of a set: too many rules (``total`` or ``len(indexed)``),
    two rules exposing one sample name."""
    out: list[RuleProblem] = []
    count = max(total, len(indexed))
    if count > max_rules:
        out.append(
            RuleProblem(
                source,
                None,
                None,
                "rules",
                f"{count} rules, more than the maximum of {max_rules}: "
                "merge rules, or raise max_rules",
            )
        )
    exposed: dict[str, tuple[int, str]] = {}
    for index, rule in indexed:
        clash = next((n for n in rule.exposed_names if n in exposed), None)
        if clash is not None:
            first, metric = exposed[clash]
            out.append(
                RuleProblem(
                    source,
                    index,
                    rule.metric,
                    "metric",
                    f"duplicate name: rule {first} ({metric!r}) records {clash!r} already; "
                    "give each rule its own metric name",
                )
            )
            continue
        for sample in rule.exposed_names:
            exposed[sample] = (index, rule.metric)
    return out
