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
"""

from __future__ import annotations

import bisect
import fnmatch
import itertools
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from alamos.core.codegen import compile_function
from alamos.core.errors import RuleProblem, RulesError
from alamos.rules.values import label_value

__all__ = [
    "AGGREGATIONS",
    "BUILTIN_LABELS",
    "DEFAULT_BUCKETS",
    "DEFAULT_MAX_RULES",
    "DEFAULT_MAX_SERIES",
    "OVERFLOW_METRIC",
    "Rule",
    "RuleSet",
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

_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_SUM = re.compile(r"sum\((.*)\)", re.DOTALL)
_NOT_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")
_LEVELS = ("bench", "debug", "prod")
_STATUSES = ("unset", "ok", "error")
_MAX_KEY = 256  # an attribute key is cut at 256 characters when it is set

_Value = str | int | float | bool
#: ``match(path, name, level, status, attributes)`` of :meth:`Rule.compiled`.
Match = Callable[[str, str, str, str, Mapping[str, Any]], bool]
#: ``key(path, name, level, status, attributes)``: the label values.
KeyOf = Callable[[str, str, str, str, Mapping[str, Any]], tuple[str, ...]]


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
        m = _SUM.fullmatch(self.aggregation)
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
                out.append((_label_of(entry), "attr:" + entry))
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

        Both are generated from the rule (:mod:`alamos.core.codegen`), so a
        span pays only for the checks its rule has.  Measured with
        ``scripts/rules_bench.py`` (the four rules there, on the worker), A/B
        against the first version (one generic matcher, a closure per span,
        the key from a generator of getters), three alternating runs on the
        loaded 2-core machine: 14.4, 22.9, 16.6 µs a span before, 10.0, 7.1,
        4.1 after.  User values are in the namespace, never in the source."""
        ns: dict[str, Any] = {"lv": label_value}
        checks: list[str] = []
        if self.level:
            ns["levels"] = frozenset(self.level)
            checks.append("level in levels")
        if self.status:
            ns["statuses"] = frozenset(self.status)
            checks.append("status in statuses")
        if self.path is not None:
            ns["path_ok"] = _glob(self.path)
            checks.append("path_ok(path)")
        if self.name is not None:
            ns["exact"] = self.name
            checks.append("name == exact")
        elif self.name_glob is not None:
            ns["name_ok"] = _glob(self.name_glob)
            checks.append("name_ok(name)")
        elif self.name_regex is not None:
            ns["name_ok"] = _cached(re.compile(self.name_regex).fullmatch)
            checks.append("name_ok(name)")
        for i, (k, v) in enumerate(self.attributes):
            ns[f"k{i}"], ns[f"w{i}"] = k, label_value(v)
            checks.append(f"lv(a.get(k{i})) == w{i}")
        args = "path, name, level, status, a"
        match = None
        if checks:
            body = " and ".join(checks)
            source = f"def match({args}):\n    return {body}\n"
            match = compile_function("match", source, dict(ns), owner=f"{__name__}.rule")
        parts = []
        for i, (_, src) in enumerate(self.sources):
            if src.startswith("attr:"):
                ns[f"g{i}"] = src[len("attr:") :]
                parts.append(f"lv(a.get(g{i}))")
            else:
                parts.append(src)  # path, name, level or status: an argument
        source = f"def key({args}):\n    return ({', '.join(parts)}{',' if parts else ''})\n"
        key = compile_function("key", source, ns, owner=f"{__name__}.rule")
        return match, key

    def problems(self, source: str, index: int | None) -> list[RuleProblem]:
        """Everything wrong with this rule alone (see :class:`RuleSet` for the set)."""
        return _check(self, source, index)


def family_name(metric: str) -> str:
    """A counter's family name: ``metric`` without a trailing ``_total``
    (prometheus_client adds it back to the sample)."""
    return metric[: -len("_total")] if metric.endswith("_total") else metric


def bucket_index(bounds_ns: Sequence[int], duration_ns: int) -> int:
    """The first bucket ``duration_ns`` is in (``len(bounds_ns)`` for ``+Inf``)."""
    return bisect.bisect_left(bounds_ns, duration_ns)


def _label_of(key: str) -> str:
    label = _NOT_LABEL_CHAR.sub("_", key)
    return "_" + label if label[:1].isdigit() else label


_CACHE_LIMIT = 4096


def _cached(test: Callable[[str], object]) -> Callable[[str], bool]:
    """``test`` with its answers kept (paths and names repeat), up to
    :data:`_CACHE_LIMIT` distinct values, then computed each time."""
    cache: dict[str, bool] = {}

    def check(value: str) -> bool:
        hit = cache.get(value)
        if hit is None:
            hit = bool(test(value))
            if len(cache) < _CACHE_LIMIT:
                cache[value] = hit
        return hit

    return check


def _glob(pattern: str) -> Callable[[str], bool]:
    return _cached(re.compile(fnmatch.translate(pattern)).match)


# ---------------------------------------------------------------------------
# Checking one rule
# ---------------------------------------------------------------------------


def _check(rule: Rule, source: str, index: int | None) -> list[RuleProblem]:
    name = rule.metric if isinstance(rule.metric, str) and _METRIC.fullmatch(rule.metric) else None
    out: list[RuleProblem] = []

    def bad(field: str, message: str) -> None:
        out.append(RuleProblem(source, index, name, field, message))

    if not isinstance(rule.metric, str) or not _METRIC.fullmatch(rule.metric):
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
    for field, allowed in (("level", _LEVELS), ("status", _STATUSES)):
        for value in getattr(rule, field):
            if value not in allowed:
                bad(field, f"unknown {field} {value!r}: use one or a list of {list(allowed)}")
    _check_aggregation(rule, bad)
    _check_labels(rule, bad)
    for key, value in rule.attributes:
        if not _attribute_key_ok(key):
            bad("attributes", _bad_key(key))
        elif isinstance(value, float) or not isinstance(value, str | int | bool):
            bad("attributes", f"the value of {key!r} must be a string, int or bool, not {value!r}")
    if not isinstance(rule.help, str):
        bad("help", f"expected a string, got {rule.help!r}")
    ms = rule.max_series
    if isinstance(ms, bool) or not isinstance(ms, int) or ms < 1:
        bad("max_series", f"expected an int >= 1 (series kept per rule), got {ms!r}")
    return out


def _attribute_key_ok(key: object) -> bool:
    # '"' and '\' would need escaping in SQLite's JSON path; keys are short.
    return (
        isinstance(key, str)
        and 0 < len(key) <= _MAX_KEY
        and key.isprintable()
        and '"' not in key
        and "\\" not in key
    )


def _bad_key(key: object) -> str:
    return (
        f"invalid attribute key {key!r}: use 1 to {_MAX_KEY} printable characters "
        "without '\"' or '\\'"
    )


def _check_aggregation(rule: Rule, bad: Callable[[str, str], None]) -> None:
    agg = rule.aggregation
    attr = rule.sum_attribute if isinstance(agg, str) else None
    if not isinstance(agg, str) or (agg not in AGGREGATIONS[:3] and attr is None):
        bad("aggregation", f"unknown aggregation {agg!r}: use one of {', '.join(AGGREGATIONS)}")
    elif attr is not None and not _attribute_key_ok(attr):
        bad("aggregation", "sum(<attribute>): " + _bad_key(attr))
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
        if not _LABEL.fullmatch(label):
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
        if sep and not _attribute_key_ok(key.strip()):
            bad("group_by", _bad_key(key.strip()))
        elif not sep and entry not in BUILTIN_LABELS and not _attribute_key_ok(entry):
            bad("group_by", _bad_key(entry))
        else:
            builtin = entry in BUILTIN_LABELS
            label_ok("group_by", label.strip() if sep else entry if builtin else _label_of(entry))
    for label, value in rule.labels:
        if not isinstance(label, str):
            bad("labels", f"invalid label name {label!r}")
            continue
        label_ok("labels", label)
        if not isinstance(value, str):
            bad("labels", f"the value of label {label!r} must be a string, got {value!r}")


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
        problems = _set_problems(list(enumerate(self.rules, 1)), source, max_rules)
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
        source = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            problem = RuleProblem(source, None, None, "file", f"cannot read it: {exc}")
            raise RulesError([problem]) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            problem = RuleProblem(source, None, None, "file", f"not valid TOML: {exc}")
            raise RulesError([problem]) from None
        return cls.from_mapping(data, source=source, max_rules=max_rules)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, source: str = "rules", max_rules: int = DEFAULT_MAX_RULES
    ) -> RuleSet:
        """The rules of a parsed TOML document: ``{"rules": [{...}, ...]}``."""
        problems: list[RuleProblem] = [
            RuleProblem(source, None, None, key, "unknown key: rules go in [[rules]] tables")
            for key in data
            if key != "rules"
        ]
        raw = data.get("rules", [])
        if not isinstance(raw, list):
            raw = []
            problems.append(RuleProblem(source, None, None, "rules", "use [[rules]] tables"))
        indexed: list[tuple[int, Rule]] = []
        for index, entry in enumerate(raw, 1):
            rule, found = _parse(entry, source, index)
            problems.extend(found)
            if rule is not None:
                indexed.append((index, rule))
        problems.extend(_set_problems(indexed, source, max_rules, total=len(raw)))
        if problems:
            raise RulesError(problems)
        return cls([r for _, r in indexed], max_rules=max_rules, source=source)


def _parse(entry: object, source: str, index: int) -> tuple[Rule | None, list[RuleProblem]]:
    if not isinstance(entry, dict):
        return None, [RuleProblem(source, index, None, "rules", "each rule is a [[rules]] table")]
    metric = entry.get("metric")
    name = metric if isinstance(metric, str) else None
    problems = [
        RuleProblem(source, index, name, key, f"unknown field: use one of {sorted(_FIELDS)}")
        for key in entry
        if key not in _FIELDS
    ]
    if "metric" not in entry:
        problems.append(RuleProblem(source, index, None, "metric", "missing: name the metric"))
    if problems:
        return None, problems
    try:
        rule = Rule(**entry)
    except RulesError as exc:
        for p in exc.problems:
            p.source, p.index = source, index
        return None, exc.problems
    except (TypeError, ValueError) as exc:  # a converter refused the value
        return None, [RuleProblem(source, index, name, "rules", f"bad value: {exc}")]
    return rule, []


def _set_problems(
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
