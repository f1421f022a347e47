"""Budget maps: span names (exact, or fnmatch globs) to budget categories.

Part of the frame budgets (:mod:`alamos.report.query.budgets`): a
:class:`BudgetMap` comes from Python (:meth:`BudgetMap.from_mapping`) or a
TOML file (:meth:`BudgetMap.from_toml`); :meth:`BudgetMap.budget_of` is the
reference the SQL of :mod:`alamos.report.query.budget_sql` follows.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import attrs

__all__ = ["MAX_PATTERNS", "MAX_PATTERN_CHARS", "BudgetMap"]

#: Most patterns a budget map may hold: each is a bound parameter (twice on
#: PostgreSQL), and SQLite takes at most 32,766 of them.
MAX_PATTERNS = 1000
#: Longest pattern or budget name (a stored span name is cut at 1,024).
MAX_PATTERN_CHARS = 1024

_GLOB_CHARS = frozenset("*?[")


def _check_text(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{what} is empty")
    if len(value) > MAX_PATTERN_CHARS:
        raise ValueError(f"{what} is longer than {MAX_PATTERN_CHARS} characters")
    # Stored text never holds NUL or a lone surrogate (both become U+FFFD),
    # and PostgreSQL cannot take them as parameters: a pattern holding one
    # could never match, so it is refused as a mistake.
    if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError(f"{what} {value!r} holds NUL or a lone surrogate")
    return value


def _read_only(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@attrs.frozen
class BudgetMap:
    """Span names to budget categories.

    Build one with :meth:`from_mapping` (``{"db": ["sql.*", "query"]}``) or
    :meth:`from_toml`.  A pattern without ``*``, ``?`` or ``[`` is an exact
    name; the others are globs in :mod:`fnmatch` syntax, case-sensitive.
    An exact name wins over every glob; among globs the first in the map's
    order matches.  Names that match nothing go to ``unmatched`` (``None``:
    to no budget).  :meth:`budget_of` is the reference the SQL follows.
    """

    exact: Mapping[str, str] = attrs.field(converter=_read_only, hash=False)
    globs: tuple[tuple[str, str], ...]
    unmatched: str | None = None

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, str | Sequence[str]], unmatched: str | None = None
    ) -> BudgetMap:
        """``{budget: pattern or [patterns]}``, in the mapping's order.

        Raises :class:`ValueError` for an empty or non-text budget or
        pattern, and for a pattern given to two budgets.
        """
        if not isinstance(mapping, Mapping):
            raise ValueError(
                f"a budget map is a mapping of budget to patterns, not {type(mapping).__name__}"
            )
        exact: dict[str, str] = {}
        globs: dict[str, str] = {}
        for budget, patterns in mapping.items():
            _check_text("a budget name", budget)
            listed = [patterns] if isinstance(patterns, str) else patterns
            if not isinstance(listed, Sequence) or isinstance(listed, bytes | bytearray):
                raise ValueError(
                    f"budget {budget!r}: patterns must be a string or a list of strings"
                )
            if not listed:
                raise ValueError(f"budget {budget!r} has no patterns")
            for pattern in listed:
                _check_text(f"a pattern of budget {budget!r}", pattern)
                into = globs if _GLOB_CHARS.intersection(pattern) else exact
                held = into.setdefault(pattern, budget)
                if held != budget:
                    raise ValueError(
                        f"pattern {pattern!r} is in two budgets: {held!r} and {budget!r}"
                    )
        if len(exact) + len(globs) > MAX_PATTERNS:
            raise ValueError(f"a budget map holds at most {MAX_PATTERNS} patterns")
        if unmatched is not None:
            _check_text("the unmatched budget", unmatched)
        return cls(exact, tuple(globs.items()), unmatched)

    @classmethod
    def from_toml(cls, source: str | Path) -> BudgetMap:
        """The map in a TOML file (``source`` a path) or TOML text.

        The format::

            unmatched = "other"          # optional: budget of unmapped names
            [budgets]
            db = ["sql.*", "query"]      # a list of patterns...
            render = "render"            # ...or one

        Raises :class:`ValueError` naming the file for anything else:
        unreadable, not TOML, no ``[budgets]`` table, an unknown key.
        """
        if isinstance(source, Path):
            where = str(source)
            try:
                text = source.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"cannot read budget map {where}: {exc}") from None
        else:
            where, text = "<text>", source
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"budget map {where} is not valid TOML: {exc}") from None
        unknown = sorted(set(doc) - {"budgets", "unmatched"})
        if unknown:
            raise ValueError(
                f"budget map {where}: unknown key(s) {', '.join(map(repr, unknown))} "
                '(expected a [budgets] table and an optional unmatched = "...")'
            )
        budgets = doc.get("budgets")
        if not isinstance(budgets, dict) or not budgets:
            raise ValueError(
                f"budget map {where} has no [budgets] table of budget = [patterns] entries"
            )
        try:
            return cls.from_mapping(budgets, doc.get("unmatched"))
        except ValueError as exc:
            raise ValueError(f"budget map {where}: {exc}") from None

    @property
    def budgets(self) -> tuple[str, ...]:
        """The budget names, each once, in the map's order (exact names first)."""
        names = [*self.exact.values(), *(b for _, b in self.globs)]
        if self.unmatched is not None:
            names.append(self.unmatched)
        return tuple(dict.fromkeys(names))

    def budget_of(self, name: str) -> str | None:
        """The budget ``name`` is charged to, or ``None``."""
        held = self.exact.get(name)
        if held is not None:
            return held
        for pattern, budget in self.globs:
            if fnmatch.fnmatchcase(name, pattern):
                return budget
        return self.unmatched
