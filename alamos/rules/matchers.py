"""Matching spans to a rule, with code generated from the rule.

Shared by the live engine (:mod:`~alamos.rules.live`, on the collector's
worker, for every finished span) and the backfill: a span pays only for
the checks its rule has, and paths and names, which repeat, are matched
once each (up to a bound).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from alamos.core.codegen import compile_function
from alamos.rules.values import label_value

if TYPE_CHECKING:
    from alamos.rules.rule import Rule

__all__ = ["KeyOf", "Match", "compile_rule"]

#: The qualified name of the generated functions (as in tracebacks).
_OWNER = "alamos.rules.rule.rule"

#: ``match(path, name, level, status, attributes)`` of :meth:`Rule.compiled`.
Match = Callable[[str, str, str, str, Mapping[str, Any]], bool]
#: ``key(path, name, level, status, attributes)``: the label values.
KeyOf = Callable[[str, str, str, str, Mapping[str, Any]], tuple[str, ...]]


def compile_rule(rule: Rule) -> tuple[Match | None, KeyOf]:
    """``(match, key)`` of :meth:`Rule.compiled <alamos.rules.rule.Rule.compiled>`.

    Both are generated from the rule (:mod:`alamos.core.codegen`), so a
    span pays only for the checks its rule has.  Measured with
    ``scripts/rules_bench.py`` (the four rules there, on the worker), A/B
    against the first version (one generic matcher, a closure per span,
    the key from a generator of getters), three alternating runs on the
    loaded 2-core machine: 14.4, 22.9, 16.6 µs a span before, 10.0, 7.1,
    4.1 after.  User values are in the namespace, never in the source.
    The generated functions are named as before this module was split
    out of :mod:`alamos.rules.rule` (``alamos.rules.rule.rule.match``)."""
    ns: dict[str, Any] = {"lv": label_value}
    checks: list[str] = []
    if rule.level:
        ns["levels"] = frozenset(rule.level)
        checks.append("level in levels")
    if rule.status:
        ns["statuses"] = frozenset(rule.status)
        checks.append("status in statuses")
    if rule.path is not None:
        ns["path_ok"] = _glob(rule.path)
        checks.append("path_ok(path)")
    if rule.name is not None:
        ns["exact"] = rule.name
        checks.append("name == exact")
    elif rule.name_glob is not None:
        ns["name_ok"] = _glob(rule.name_glob)
        checks.append("name_ok(name)")
    elif rule.name_regex is not None:
        ns["name_ok"] = _cached(re.compile(rule.name_regex).fullmatch)
        checks.append("name_ok(name)")
    for i, (k, v) in enumerate(rule.attributes):
        ns[f"k{i}"], ns[f"w{i}"] = k, label_value(v)
        checks.append(f"lv(a.get(k{i})) == w{i}")
    args = "path, name, level, status, a"
    match = None
    if checks:
        body = " and ".join(checks)
        source = f"def match({args}):\n    return {body}\n"
        match = compile_function("match", source, dict(ns), owner=_OWNER)
    parts = []
    for i, (_, src) in enumerate(rule.sources):
        if src.startswith("attr:"):
            ns[f"g{i}"] = src[len("attr:") :]
            parts.append(f"lv(a.get(g{i}))")
        else:
            parts.append(src)  # path, name, level or status: an argument
    source = f"def key({args}):\n    return ({', '.join(parts)}{',' if parts else ''})\n"
    key = compile_function("key", source, ns, owner=_OWNER)
    return match, key


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
