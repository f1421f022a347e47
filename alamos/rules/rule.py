"""Recording rules: what they are, and checking them (``alamos rules check``).

A :class:`Rule` turns finished spans into one Prometheus metric:

* ``metric``: the metric's name (``[a-zA-Z_:][a-zA-Z0-9_:]*``, as
  Prometheus allows, so ``job:requests:count`` style names work);
* matchers, all optional, all of which a span must pass: ``path`` (an
  fnmatch glob on the experiment path), one of ``name`` (exact),
  ``name_glob`` or ``name_regex`` (a Python regex that must match the whole
  name, as Prometheus anchors its regexes), ``level`` and ``status`` (a
  value or a list of them), and ``attributes`` (a mapping of attribute key
  to the value it must have, compared as label text: see
  :mod:`alamos.rules.values`);
* ``group_by``: the labels, each ``"path"``, ``"name"``, ``"status"``,
  ``"level"``, an attribute key (the label is the key with every character
  other than a letter, digit or ``_`` replaced by ``_``: ``http.route`` →
  ``http_route``), or ``"label=attribute key"`` to name the label yourself;
* ``aggregation``: ``count`` (a counter of spans), ``duration_sum`` (a
  counter of seconds), ``duration_histogram`` (a histogram of seconds, with
  ``buckets``), or ``sum(<attribute key>)`` (a counter adding a numeric
  attribute);
* ``labels``: constant labels added to every series; ``help``; and
  ``max_series``, the cardinality limit (see :mod:`alamos.rules.live`).

Rules come as Python objects or from TOML (:meth:`RuleSet.from_toml`)::

    [[rules]]
    metric = "demo_requests"
    name_glob = "* /kv"
    group_by = ["name", "status"]

A :class:`RuleSet` checks every rule, and the set (duplicate names, at most
``max_rules`` rules), and raises :class:`~alamos.core.errors.RulesError`
listing every problem, each naming the rule and the field.

This module holds the two classes; the rest has a module of its own: the
names a rule may use and the defaults (:mod:`~alamos.rules.names`), the
checks (:mod:`~alamos.rules.check`), the TOML document
(:mod:`~alamos.rules.toml_file`), and the matchers generated for each rule
(:mod:`~alamos.rules.matchers`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from alamos.core.errors import RuleProblem, RulesError
from alamos.rules.check import check_rule, set_problems
from alamos.rules.matchers import KeyOf, Match, compile_rule
from alamos.rules.names import (
    AGGREGATIONS,
    BUILTIN_LABELS,
    DEFAULT_BUCKETS,
    DEFAULT_MAX_RULES,
    DEFAULT_MAX_SERIES,
    OVERFLOW_METRIC,
    RESERVED_LABELS,
    SUM_AGGREGATION,
    family_name,
    label_of,
)
from alamos.rules.toml_file import read_toml, rule_table, rule_tables

# The names this module had before alamos.rules.names and alamos.rules.matchers
# were split out of it stay importable from here.
__all__ = [
    "AGGREGATIONS",
    "BUILTIN_LABELS",
    "DEFAULT_BUCKETS",
    "DEFAULT_MAX_RULES",
    "DEFAULT_MAX_SERIES",
    "OVERFLOW_METRIC",
    "RESERVED_LABELS",
    "KeyOf",
    "Match",
    "Rule",
    "RuleSet",
    "bucket_index",
    "family_name",
]

_Value = str | int | float | bool


def _strings(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable) and not isinstance(value, Mapping | bytes):
        return tuple(value)
    return (value,)  # type: ignore[return-value]  # checked (and refused) later


def _pairs(value: object) -> tuple[tuple[str, Any], ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return tuple(value.items())
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        items = tuple(value)
        if all(isinstance(i, tuple) and len(i) == 2 for i in items):
            return items
    return ((value, None),)  # type: ignore[return-value]  # refused as a bad key later


def _floats(value: object) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping):
        return tuple(value)
    return (value,)  # type: ignore[return-value]  # refused later


@attrs.frozen(slots=True)
class Rule:
    """One recording rule (see the module docstring).  Checked when made:
    a bad rule raises :class:`~alamos.core.errors.RulesError`."""

    metric: str
    aggregation: str = "count"
    path: str | None = None
    name: str | None = None
    name_glob: str | None = None
    name_regex: str | None = None
    level: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    status: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    attributes: tuple[tuple[str, _Value], ...] = attrs.field(default=(), converter=_pairs)
    group_by: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    labels: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_pairs)
    buckets: tuple[float, ...] | None = attrs.field(default=None, converter=_floats)
    help: str = ""
    max_series: int = DEFAULT_MAX_SERIES

    def __attrs_post_init__(self) -> None:
        problems = self.problems("rules", None)
        if problems:
            raise RulesError(problems)

    # -- derived -------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """``"histogram"`` for ``duration_histogram``, else ``"counter"``."""
        return "histogram" if self.aggregation == "duration_histogram" else "counter"

    @property
    def sum_attribute(self) -> str | None:
        """The attribute ``sum(<attribute>)`` adds, or None."""
        m = SUM_AGGREGATION.fullmatch(self.aggregation)
        return m.group(1).strip() if m else None

    @property
    def bucket_bounds(self) -> tuple[float, ...]:
        """The histogram's upper bounds in seconds, without ``+Inf``."""
        return self.buckets if self.buckets is not None else DEFAULT_BUCKETS

    @property
    def sources(self) -> tuple[tuple[str, str], ...]:
        """``group_by`` as (label name, source): a builtin (``path``...) or
        ``"attr:<key>"``."""
        out = []
        for entry in self.group_by:
            label, sep, key = entry.partition("=")
            if sep:
                out.append((label.strip(), "attr:" + key.strip()))
            elif entry in BUILTIN_LABELS:
                out.append((entry, entry))
            else:
                out.append((label_of(entry), "attr:" + entry))
        return tuple(out)

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(label for label, _ in self.sources)

    @property
    def exposed_names(self) -> tuple[str, ...]:
        """The names this rule takes in a Prometheus registry (as
        prometheus_client reserves them: the family and its suffixes)."""
        if self.kind == "histogram":
            suffixes = ("", "_bucket", "_count", "_sum", "_created")
            return tuple(self.metric + s for s in suffixes)
        family = family_name(self.metric)
        return (family, family + "_total", family + "_created")

    def bucket_ns(self) -> tuple[int, ...]:
        """The bounds in integer nanoseconds: a duration ``d`` (ns) is in the
        bucket ``le`` when ``d <= floor(le * 1e9)``, live and in SQL alike."""
        return tuple(math.floor(b * 1e9) for b in self.bucket_bounds)

    # -- matching (shared by the live engine and the backfill) ----------------------

    def compiled(self) -> tuple[Match | None, KeyOf]:
        """``(match, key)``, both called ``f(path, name, level, status, attributes)``
        (``level`` a level name, ``attributes`` a mapping of attribute values):
        ``match`` says whether a span passes every matcher (None: every span
        does), ``key`` gives its label values in ``label_names`` order.
        Generated from the rule: see :func:`~alamos.rules.matchers.compile_rule`."""
        return compile_rule(self)

    def problems(self, source: str, index: int | None) -> list[RuleProblem]:
        """Everything wrong with this rule alone (see :class:`RuleSet` for the set)."""
        return check_rule(self, source, index)


def bucket_index(bounds_ns: Sequence[int], duration_ns: int) -> int:
    """The first bucket ``duration_ns`` is in (``len(bounds_ns)`` for ``+Inf``)."""
    return bisect.bisect_left(bounds_ns, duration_ns)


# ---------------------------------------------------------------------------
# A set of rules
# ---------------------------------------------------------------------------

_FIELDS = frozenset(f.name for f in attrs.fields(Rule))


class RuleSet:
    """Checked recording rules: each valid, no two recording one metric, at
    most ``max_rules``.  Iterate it for the :class:`Rule` objects."""

    def __init__(
        self,
        rules: Iterable[Rule],
        *,
        max_rules: int = DEFAULT_MAX_RULES,
        source: str = "rules",
    ) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.max_rules = max_rules
        self.source = source
        problems = set_problems(list(enumerate(self.rules, 1)), source, max_rules)
        if problems:
            raise RulesError(problems)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"<RuleSet {self.source}: {', '.join(r.metric for r in self.rules)}>"

    @classmethod
    def from_toml(cls, path: str | Path, *, max_rules: int = DEFAULT_MAX_RULES) -> RuleSet:
        """The rules of a TOML file (``[[rules]]`` tables; see the module docstring)."""
        data = read_toml(path)
        return cls.from_mapping(data, source=str(path), max_rules=max_rules)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, source: str = "rules", max_rules: int = DEFAULT_MAX_RULES
    ) -> RuleSet:
        """The rules of a parsed TOML document: ``{"rules": [{...}, ...]}``."""
        raw, problems = rule_tables(data, source)
        indexed: list[tuple[int, Rule]] = []
        for index, entry in enumerate(raw, 1):
            rule, found = _parse(entry, source, index)
            problems.extend(found)
            if rule is not None:
                indexed.append((index, rule))
        problems.extend(set_problems(indexed, source, max_rules, total=len(raw)))
        if problems:
            raise RulesError(problems)
        return cls([r for _, r in indexed], max_rules=max_rules, source=source)


def _parse(entry: object, source: str, index: int) -> tuple[Rule | None, list[RuleProblem]]:
    table, problems = rule_table(entry, source, index, _FIELDS)
    if table is None:
        return None, problems
    metric = table["metric"]
    name = metric if isinstance(metric, str) else None
    try:
        rule = Rule(**table)
    except RulesError as exc:
        for p in exc.problems:
            p.source, p.index = source, index
        return None, exc.problems
    except (TypeError, ValueError) as exc:  # a converter refused the value
        return None, [RuleProblem(source, index, name, "rules", f"bad value: {exc}")]
    return rule, []
