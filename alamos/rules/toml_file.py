"""The TOML file of recording rules: reading it, and the shape of its tables.

::

    [[rules]]
    metric = "demo_requests"
    name_glob = "* /kv"
    group_by = ["name", "status"]

What is checked here is only the document: that it reads and parses, that
it has nothing but ``[[rules]]`` tables, and that each table names its
metric and only known fields.  The values are checked when each table
becomes a :class:`~alamos.rules.rule.Rule` (:mod:`~alamos.rules.check`),
so a file and Python code get the same messages.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Set
from pathlib import Path
from typing import Any

from alamos.core.errors import RuleProblem, RulesError

__all__ = ["read_toml", "rule_table", "rule_tables"]


def read_toml(path: str | Path) -> dict[str, Any]:
    """The parsed document; :class:`RulesError` (field ``file``) if it cannot
    be read or is not TOML."""
    source = str(path)
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        problem = RuleProblem(source, None, None, "file", f"cannot read it: {exc}")
        raise RulesError([problem]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problem = RuleProblem(source, None, None, "file", f"not valid TOML: {exc}")
        raise RulesError([problem]) from None


def rule_tables(data: Mapping[str, Any], source: str) -> tuple[list[Any], list[RuleProblem]]:
    """The entries of ``[[rules]]`` (as they are: each is checked by
    :func:`rule_table`), and the problems of the document around them."""
    problems: list[RuleProblem] = [
        RuleProblem(source, None, None, key, "unknown key: rules go in [[rules]] tables")
        for key in data
        if key != "rules"
    ]
    raw = data.get("rules", [])
    if not isinstance(raw, list):
        raw = []
        problems.append(RuleProblem(source, None, None, "rules", "use [[rules]] tables"))
    return raw, problems


def rule_table(
    entry: object, source: str, index: int, fields: Set[str]
) -> tuple[dict[str, Any] | None, list[RuleProblem]]:
    """``entry`` (the ``index``-th, from 1) if it is a table with a metric and
    only the ``fields`` of a rule, else None and what is wrong with it."""
    if not isinstance(entry, dict):
        return None, [RuleProblem(source, index, None, "rules", "each rule is a [[rules]] table")]
    metric = entry.get("metric")
    name = metric if isinstance(metric, str) else None
    problems = [
        RuleProblem(source, index, name, key, f"unknown field: use one of {sorted(fields)}")
        for key in entry
        if key not in fields
    ]
    if "metric" not in entry:
        problems.append(RuleProblem(source, index, None, "metric", "missing: name the metric"))
    if problems:
        return None, problems
    return entry, []
