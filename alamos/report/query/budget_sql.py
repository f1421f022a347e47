"""Budget maps in SQL: fnmatch globs as SQLite ``GLOB`` patterns or
PostgreSQL regular expressions, and the *token* of a span's budget as a SQL
expression (see :mod:`alamos.report.query.budgets` for how they are used).

Globs are translated to ``GLOB`` on SQLite and to a regular expression on
PostgreSQL, both case-sensitive and matching what
:func:`fnmatch.fnmatchcase` matches.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Text,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    null,
)

from alamos.report.query.budget_map import BudgetMap

__all__ = ["BAR", "budget_of_token", "glob_match", "token_expr", "token_of"]


# Code points a stored name can hold: no NUL, no surrogates.
_UNIVERSE = ((1, 0xD7FF), (0xE000, 0x10FFFF))


class _Any:
    """``*`` in a parsed glob."""


class _One:
    """``?`` in a parsed glob."""


_ANY, _ONE = _Any(), _One()
_Intervals = tuple[tuple[int, int], ...]
_Token = str | _Any | _One | _Intervals


def _charset(bracket: str) -> _Intervals:
    """The code points ``bracket`` (``[...]``, fnmatch syntax) matches, as
    sorted disjoint intervals within :data:`_UNIVERSE`.

    fnmatch's own regex for the bracket is the oracle: its membership can
    only change at a character of the bracket (an endpoint of a range or a
    literal) or just after one, so testing one code point per stretch
    between those boundaries gives the exact set, negation and fnmatch's
    corner cases (``[!]``, ``[z-a]``, a ``-`` at either end) included.
    """
    oracle = re.compile(fnmatch.translate(bracket))
    cuts = {lo for lo, _ in _UNIVERSE} | {hi + 1 for _, hi in _UNIVERSE}
    for ch in bracket:
        cuts.update((ord(ch), ord(ch) + 1))
    bounds = sorted(cuts)
    out: list[tuple[int, int]] = []
    for lo, nxt in itertools.pairwise(bounds):
        hi = nxt - 1
        for ulo, uhi in _UNIVERSE:
            a, b = max(lo, ulo), min(hi, uhi)
            if a <= b and oracle.match(chr(a)):
                if out and out[-1][1] + 1 == a:
                    out[-1] = (out[-1][0], b)
                else:
                    out.append((a, b))
    return tuple(out)


def _parse_glob(pattern: str) -> list[_Token]:
    """``pattern`` as tokens: literal characters, ``*``, ``?`` and sets,
    with fnmatch's rules for where a bracket ends (an unclosed ``[`` is a
    literal)."""
    out: list[_Token] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not out or out[-1] is not _ANY:
                out.append(_ANY)
        elif c == "?":
            out.append(_ONE)
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append("[")
            else:
                out.append(_charset(pattern[i - 1 : j + 1]))
                i = j + 1
        else:
            out.append(c)
    return out


def _full(intervals: _Intervals) -> bool:
    return intervals == _UNIVERSE


def _glob_set(intervals: _Intervals) -> str:
    """A SQLite GLOB bracket for ``intervals`` (never empty).

    GLOB has no escapes: ``]`` is literal first in a set, ``-`` is literal
    where it cannot make a range (right after ``[`` or the leading ``]``),
    ``^`` first means negation.  So ``]`` and ``-`` are taken out of the
    ranges and put first, and ``^`` is never put first.
    """
    specials = {0x5D: False, 0x2D: False, 0x5E: False}  # ] - ^
    parts: list[tuple[int, int]] = []
    for lo, hi in intervals:
        start = lo
        for cp in sorted(specials):
            if lo <= cp <= hi:
                specials[cp] = True
                if start <= cp - 1:
                    parts.append((start, cp - 1))
                start = cp + 1
        if start <= hi:
            parts.append((start, hi))
    body = "".join(chr(lo) if lo == hi else f"{chr(lo)}-{chr(hi)}" for lo, hi in parts)
    head = ("]" if specials[0x5D] else "") + ("-" if specials[0x2D] else "")
    caret = "^" if specials[0x5E] else ""
    if caret and not head and not body:
        return "^"  # the set of "^" alone: a literal outside a bracket
    return f"[{head}{body}{caret}]"


def _glob_sqlite(tokens: list[_Token]) -> str | None:
    """A SQLite ``GLOB`` pattern, or ``None`` if nothing can match."""
    out = []
    for t in tokens:
        if t is _ANY:
            out.append("*")
        elif t is _ONE:
            out.append("?")
        elif isinstance(t, str):
            out.append(f"[{t}]" if t in "*?[" else t)
        elif isinstance(t, tuple):
            if not t:
                return None
            out.append("?" if _full(t) else _glob_set(t))
    return "".join(out)


def _re_char(cp: int) -> str:
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def _glob_regex(tokens: list[_Token]) -> str | None:
    """A PostgreSQL (ARE) regular expression, or ``None`` if nothing can match.

    Every character that is not an ASCII letter or digit is written as a
    ``\\u``/``\\U`` escape, in and out of brackets, so no character of the
    glob can be taken as regex syntax.  PostgreSQL's ``.`` and negated sets
    match newlines (the default, not newline-sensitive, mode), as
    fnmatch's do.
    """
    out = ["^"]
    for t in tokens:
        if t is _ANY:
            out.append(".*")
        elif t is _ONE:
            out.append(".")
        elif isinstance(t, str):
            out.append(t if t.isascii() and t.isalnum() else _re_char(ord(t)))
        elif isinstance(t, tuple):
            if not t:
                return None
            if _full(t):
                out.append(".")
            else:
                items = (
                    _re_char(lo) if lo == hi else f"{_re_char(lo)}-{_re_char(hi)}" for lo, hi in t
                )
                out.append("[" + "".join(items) + "]")
    out.append("$")
    return "".join(out)


def glob_match(name: ColumnElement[str], pattern: str, dialect: str) -> ColumnElement[bool]:
    """SQL true where ``name`` matches the fnmatch ``pattern``."""
    tokens = _parse_glob(pattern)
    if dialect == "postgresql":
        regex = _glob_regex(tokens)
        return false() if regex is None else name.op("~")(cast(literal(regex), Text))
    glob = _glob_sqlite(tokens)
    return false() if glob is None else name.op("GLOB")(literal(glob))


def token_of(budget: str) -> str:
    """``budget`` as a token: ``|budget|`` with ``%`` and ``|`` percent-encoded,
    so that no token holds the separator, and in a list of tokens
    (``|a|b|``) a token is found only whole."""
    return "|" + budget.replace("%", "%25").replace("|", "%7C") + "|"


_TOKEN_ESCAPE = re.compile("%(25|7C)")
BAR = literal_column("'|'", Text)


def budget_of_token(token: str) -> str:
    """The budget of a token (:func:`token_of` undone)."""
    return _TOKEN_ESCAPE.sub(lambda m: "%" if m.group(1) == "25" else "|", token[1:-1])


def token_expr(
    name: ColumnElement[str], bmap: BudgetMap | None, dialect: str
) -> ColumnElement[Any]:
    """The token of the budget of a span named ``name``, as SQL (NULL: no budget).

    Without a map it is computed from the name, as :func:`token_of` does;
    with one, the map's rules become a ``CASE`` whose results are the
    tokens, computed here.
    """
    if bmap is None:
        inner = func.replace(name, "%", "%25", type_=Text)
        escaped = func.replace(inner, "|", "%7C", type_=Text)
        return BAR + escaped + BAR
    whens: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = []
    by_budget: dict[str, list[str]] = {}
    for pattern, budget in bmap.exact.items():
        by_budget.setdefault(budget, []).append(pattern)
    for budget, names in by_budget.items():
        whens.append((name.in_(names), cast(literal(token_of(budget)), Text)))
    for pattern, budget in bmap.globs:
        whens.append((glob_match(name, pattern, dialect), cast(literal(token_of(budget)), Text)))
    default = null() if bmap.unmatched is None else literal(token_of(bmap.unmatched))
    if not whens:
        return cast(default, Text)
    return cast(case(*whens, else_=default), Text)
