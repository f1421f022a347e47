"""Frame budgets, top offenders and spikes (after micromegas), as SQL on the database.

A **frame** is every span with a given name: a request handler
(``GET /items/{id}``) or a game loop's ``tick``.  A **budget map** puts span
names, exact or fnmatch globs, into budget categories (``db``, ``cache``...);
without a map, each span name is its own category.  For each frame, the
spans below it (found by parent links within the frame's trace, so a frame
served by several processes is whole) are charged to their budgets, and the
frames are then summarised per budget, with the frames that spent the most
in each (the **top offenders**) and the frames much slower than the ones
before them (the **spikes**).

What is counted, exactly:

* The frame's own span is the frame: its duration is the frame's time, the
  denominator of every share.  It is charged to no budget.
* Every descendant of the frame, at any depth, is charged to the budget its
  name maps to (unmapped names to none, unless the map names an
  ``unmatched`` budget).  Its duration is inclusive (its own children's time
  is in it).
* **Outermost only, per budget.**  A descendant is not counted when a span
  of the *same* budget is between it and the frame: ``sql.fetch`` inside
  ``sql.query``, both ``db``, charges ``db`` once, with ``sql.query``'s
  duration and a count of 1, so no time is counted twice in one budget.
  Spans of *different* budgets nest freely (``render`` inside ``db`` is
  charged to both), so the shares of several budgets can add up to more than
  the frame.
* A frame nested in another frame of the same name is a frame of its own and
  also a descendant of the outer one.
* A span is one row per ``(trace_id, span_id)``, so the only cycle a walk
  from a frame can meet goes back through the frame itself (corrupt rows:
  the frame's parent is its own descendant); the walk never re-enters its
  frame.  Descendants deeper than :data:`MAX_DEPTH` are not visited.

Everything runs in the database, in one statement (a recursive CTE on
``(trace_id, parent_span_id) -> (trace_id, span_id)``, then window
functions); only the summary rows come back.  Globs are translated to
``GLOB`` on SQLite and to a regular expression on PostgreSQL, both
case-sensitive and matching what :func:`fnmatch.fnmatchcase` matches.
"""

from __future__ import annotations

import fnmatch
import heapq
import itertools
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
from sqlalchemy import (
    CTE,
    ColumnElement,
    Connection,
    Double,
    Integer,
    Select,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
)

from alamos.report.sql.reading import run_read as _run
from alamos.report.sql.schema import spans as spans_table

__all__ = [
    "DEFAULT_SPIKE_FACTOR",
    "DEFAULT_SPIKE_WINDOW",
    "DEFAULT_TOP",
    "MAX_DEPTH",
    "MAX_PATTERNS",
    "BudgetMap",
    "BudgetReport",
    "BudgetStats",
    "FrameBudget",
    "FrameRow",
    "FrameStats",
    "Offender",
    "budget_report",
    "frame_budgets",
    "frames_of",
    "merge_offenders",
]

#: Frames kept per budget in the top offenders.
DEFAULT_TOP = 100
#: A frame longer than this many times the running mean is a spike.
DEFAULT_SPIKE_FACTOR = 1.3
#: The running mean is over this many previous frames of the same name.
DEFAULT_SPIKE_WINDOW = 32
#: Deepest descendant visited below a frame (depth 1 is a child): a bound on
#: the walk, deeper than any real call stack.
MAX_DEPTH = 10_000
#: Most patterns a budget map may hold: each is a bound parameter (twice on
#: PostgreSQL), and SQLite takes at most 32,766 of them.
MAX_PATTERNS = 1000
#: PostgreSQL's ``work_mem`` for the walk (raised to it for the transaction,
#: never lowered): the walk hashes the spans table at each level, and at the
#: default 4 MB a million spans spill to disk (1,000,000 spans: 7.7 s at
#: 4 MB, 4.7 s at 64 MB; scripts/budgets_bench.py).
PG_WORK_MEM = "64MB"
#: Longest pattern or budget name (a stored span name is cut at 1,024).
MAX_PATTERN_CHARS = 1024

_GLOB_CHARS = frozenset("*?[")


# ---------------------------------------------------------------------------
# The budget map
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Globs in SQL
# ---------------------------------------------------------------------------

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


def _glob_match(name: ColumnElement[str], pattern: str, dialect: str) -> ColumnElement[bool]:
    """SQL true where ``name`` matches the fnmatch ``pattern``."""
    tokens = _parse_glob(pattern)
    if dialect == "postgresql":
        regex = _glob_regex(tokens)
        return false() if regex is None else name.op("~")(cast(literal(regex), Text))
    glob = _glob_sqlite(tokens)
    return false() if glob is None else name.op("GLOB")(literal(glob))


def _token_of(budget: str) -> str:
    """``budget`` as a token: ``|budget|`` with ``%`` and ``|`` percent-encoded,
    so that no token holds the separator, and in a list of tokens
    (``|a|b|``) a token is found only whole."""
    return "|" + budget.replace("%", "%25").replace("|", "%7C") + "|"


_TOKEN_ESCAPE = re.compile("%(25|7C)")
_BAR = literal_column("'|'", Text)


def _budget_of_token(token: str) -> str:
    """The budget of a token (:func:`_token_of` undone)."""
    return _TOKEN_ESCAPE.sub(lambda m: "%" if m.group(1) == "25" else "|", token[1:-1])


def _token_expr(
    name: ColumnElement[str], bmap: BudgetMap | None, dialect: str
) -> ColumnElement[Any]:
    """The token of the budget of a span named ``name``, as SQL (NULL: no budget).

    Without a map it is computed from the name, as :func:`_token_of` does;
    with one, the map's rules become a ``CASE`` whose results are the
    tokens, computed here.
    """
    if bmap is None:
        inner = func.replace(name, "%", "%25", type_=Text)
        escaped = func.replace(inner, "|", "%7C", type_=Text)
        return _BAR + escaped + _BAR
    whens: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = []
    by_budget: dict[str, list[str]] = {}
    for pattern, budget in bmap.exact.items():
        by_budget.setdefault(budget, []).append(pattern)
    for budget, names in by_budget.items():
        whens.append((name.in_(names), cast(literal(_token_of(budget)), Text)))
    for pattern, budget in bmap.globs:
        whens.append((_glob_match(name, pattern, dialect), cast(literal(_token_of(budget)), Text)))
    default = null() if bmap.unmatched is None else literal(_token_of(bmap.unmatched))
    if not whens:
        return cast(default, Text)
    return cast(case(*whens, else_=default), Text)


# ---------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------


@attrs.frozen
class FrameRow:
    """One frame: its span, its time, and whether it is a spike.

    ``previous_mean_ns`` is the mean duration of up to ``window`` previous
    frames of the same name (by start time, then trace and span id), ``None``
    for the first; ``spike`` is true when the window was full and the frame
    lasted more than ``factor`` times that mean.
    """

    trace_id: str
    span_id: str
    start_ns: int
    duration_ns: int
    previous_mean_ns: float | None
    spike: bool


@attrs.frozen
class FrameBudget:
    """What one frame spent in one budget: ``count`` outermost spans of the
    budget below it, ``duration_ns`` in all (see the module docstring)."""

    trace_id: str
    span_id: str
    start_ns: int
    frame_ns: int
    budget: str
    count: int
    duration_ns: int
    spike: bool

    @property
    def share(self) -> float | None:
        """``duration_ns`` as a fraction of the frame's time."""
        return self.duration_ns / self.frame_ns if self.frame_ns > 0 else None


#: A top offender is a frame's line in one budget.
Offender = FrameBudget


@attrs.frozen
class FrameStats:
    """The frames analysed: how many, their time, how many are spikes."""

    name: str
    frames: int
    total_ns: int
    min_ns: int | None
    max_ns: int | None
    spikes: int

    @property
    def mean_ns(self) -> float | None:
        return self.total_ns / self.frames if self.frames else None


@attrs.frozen
class BudgetStats:
    """One budget across the frames.

    ``frames`` is the number of frames with at least one span of the budget;
    ``min_ns``, ``mean_ns`` and ``max_ns`` are per frame over those frames;
    ``count`` and ``total_ns`` add up the (outermost) spans; ``share`` is
    ``total_ns`` over the time of *all* the frames analysed.
    """

    budget: str
    frames: int
    count: int
    total_ns: int
    min_ns: int
    max_ns: int
    share: float | None

    @property
    def mean_ns(self) -> float:
        return self.total_ns / self.frames


@attrs.frozen
class BudgetReport:
    """:func:`budget_report`'s answer: the frames, each budget (largest
    total first), and each budget's top offenders (largest first)."""

    frame: FrameStats
    budgets: tuple[BudgetStats, ...]
    offenders: tuple[Offender, ...]
    top: int

    def offenders_of(self, budget: str) -> tuple[Offender, ...]:
        return tuple(o for o in self.offenders if o.budget == budget)


def _offender_key(o: Offender) -> tuple[int, int, str, str]:
    # The SQL's order: most time first, then earliest, then by ids.
    return (-o.duration_ns, o.start_ns, o.trace_id, o.span_id)


def merge_offenders(
    lists: Iterable[Iterable[Offender]], top: int = DEFAULT_TOP
) -> tuple[Offender, ...]:
    """Top-offender lists from separate runs or nodes as one: their union
    (a frame in several lists once, with its largest time), then the ``top``
    of each budget again, in the order :func:`budget_report` gives.

    Each offender keeps the spike flag its run gave it: a run compares a
    frame with the frames *it* saw before it.
    """
    _check_top(top)
    best: dict[tuple[str, str, str], Offender] = {}
    for listed in lists:
        for o in listed:
            key = (o.budget, o.trace_id, o.span_id)
            held = best.get(key)
            if held is None or _offender_key(o) < _offender_key(held):
                best[key] = o
    by_budget: dict[str, list[Offender]] = {}
    for o in best.values():
        by_budget.setdefault(o.budget, []).append(o)
    out: list[Offender] = []
    for budget in sorted(by_budget):
        out.extend(heapq.nsmallest(top, by_budget[budget], key=_offender_key))
    return tuple(out)


# ---------------------------------------------------------------------------
# The queries
# ---------------------------------------------------------------------------


def _check_top(top: int) -> None:
    if not isinstance(top, int) or isinstance(top, bool) or top < 1:
        raise ValueError(f"top must be an integer of at least 1, not {top!r}")


def _check_spike(factor: float, window: int) -> None:
    if not isinstance(factor, int | float) or not math.isfinite(factor) or factor <= 0:
        raise ValueError(f"the spike factor must be a finite number above 0, not {factor!r}")
    if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= 10_000:
        raise ValueError(f"the spike window must be an integer from 1 to 10000, not {window!r}")


def _frames_cte(
    frame: str,
    since_ns: int | None,
    until_ns: int | None,
    factor: float,
    window: int,
) -> CTE:
    """The frames (spans named ``frame`` started in ``[since_ns, until_ns)``)
    with their running mean and spike flag.

    The window runs over *every* frame of that name, so the first frames
    after ``since_ns`` are compared with the ones before it.
    """
    s = spans_table.c
    order = (s.start_ns, s.trace_id, s.span_id)
    prev = (-window, -1)
    every = (
        select(
            s.trace_id,
            s.span_id,
            s.start_ns,
            s.duration_ns,
            cast(func.avg(s.duration_ns).over(order_by=order, rows=prev), Double).label(
                "prev_mean"
            ),
            func.count().over(order_by=order, rows=prev).label("prev_n"),
        )
        .where(s.name == frame)
        .cte("every_frame")
    )
    e = every.c
    spike = case(
        (and_(e.prev_n >= window, e.duration_ns > e.prev_mean * literal(float(factor))), 1),
        else_=0,
    )
    conds = []
    if since_ns is not None:
        conds.append(e.start_ns >= int(since_ns))
    if until_ns is not None:
        conds.append(e.start_ns < int(until_ns))
    query = select(
        e.trace_id, e.span_id, e.start_ns, e.duration_ns, e.prev_mean, spike.label("spike")
    )
    if conds:
        query = query.where(and_(*conds))
    return query.cte("frames")


def _holds(haystack: ColumnElement[str], needle: ColumnElement[str], dialect: str) -> Any:
    find = func.strpos if dialect == "postgresql" else func.instr
    return find(haystack, needle) > 0


def _per_frame_cte(frames: CTE, bmap: BudgetMap | None, dialect: str) -> CTE:
    """``(frame_trace, frame_span, token, n, d)``: what each frame spent in
    each budget (by its token), outermost spans only (see the module
    docstring).

    On SQLite the walk looks children up in ``candidates``, the spans of the
    traces that hold a frame, each with its budget's token computed once:
    SQLite indexes it on ``(trace_id, parent_span_id)`` by itself, where the
    table has only an index on ``trace_id``, which a long trace makes slow
    (every lookup would read the whole trace).  PostgreSQL reads the table
    (see ``source``).  Each visited span carries ``above``: the tokens of the
    budgets between it and the frame.
    """
    s = spans_table.c
    f = frames.c
    candidates = (
        select(
            s.trace_id,
            s.span_id,
            s.parent_span_id,
            s.duration_ns,
            _token_expr(s.name, bmap, dialect).label("token"),
        )
        .where(s.trace_id.in_(select(f.trace_id)))
        .cte("candidates")
    )

    def source(name: str) -> tuple[Any, ColumnElement[Any]]:
        table: Any
        # PostgreSQL cannot index a CTE: it would sort or hash the whole of
        # `candidates` at every level of the walk, so it reads the table.
        if dialect == "postgresql":
            table = spans_table.alias(name)
            return table, _token_expr(table.c.name, bmap, dialect)
        table = candidates.alias(name)
        return table, table.c.token

    child, child_token = source("child")
    c = child.c
    anchor = select(
        f.trace_id.label("frame_trace"),
        f.span_id.label("frame_span"),
        c.span_id.label("span_id"),
        child_token.label("token"),
        _BAR.label("above"),
        literal_column("1", Integer).label("depth"),
        c.duration_ns.label("duration_ns"),
    ).join_from(frames, child, and_(c.trace_id == f.trace_id, c.parent_span_id == f.span_id))
    walk = anchor.cte("walk", recursive=True)
    w = walk.alias("w")
    below, below_token = source("below")
    b = below.c
    above = case(
        (or_(w.c.token.is_(None), _holds(w.c.above, w.c.token, dialect)), w.c.above),
        else_=w.c.above + func.substr(w.c.token, literal_column("2", Integer), type_=Text),
    )
    step = (
        select(
            w.c.frame_trace,
            w.c.frame_span,
            b.span_id,
            below_token,
            cast(above, Text),
            w.c.depth + literal_column("1", Integer),
            b.duration_ns,
        )
        .join_from(w, below, and_(b.trace_id == w.c.frame_trace, b.parent_span_id == w.c.span_id))
        .where(w.c.depth < MAX_DEPTH, b.span_id != w.c.frame_span)
    )
    walk = walk.union_all(step)
    wk = walk.c
    return (
        select(
            wk.frame_trace,
            wk.frame_span,
            wk.token,
            func.count().label("n"),
            func.sum(wk.duration_ns).label("d"),
        )
        .where(wk.token.is_not(None), ~_holds(wk.above, wk.token, dialect))
        .group_by(wk.frame_trace, wk.frame_span, wk.token)
        .cte("per_frame")
    )


def _tune(conn: Connection) -> None:
    """On PostgreSQL, for this transaction only: ``work_mem`` raised to
    :data:`PG_WORK_MEM` and JIT off.  The planner's estimates of a recursive
    walk are far off (millions of rows for thousands), which made it JIT
    compile the query for 1.3 s of a 12 s run."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(
        text(
            "SELECT set_config('work_mem', :wm, true) "
            "WHERE pg_size_bytes(current_setting('work_mem')) < pg_size_bytes(:wm)"
        ),
        {"wm": PG_WORK_MEM},
    )
    conn.execute(text("SELECT set_config('jit', 'off', true)"))


def _budget_map(budgets: BudgetMap | Mapping[str, str | Sequence[str]] | None) -> BudgetMap | None:
    if budgets is None or isinstance(budgets, BudgetMap):
        return budgets
    return BudgetMap.from_mapping(budgets)


def _check_frame(frame: str) -> None:
    if not isinstance(frame, str) or not frame:
        raise ValueError(f"the frame is a span name, not {frame!r}")


def _int(value: Any) -> int:
    # PostgreSQL's SUM of a BIGINT is a NUMERIC: a Decimal here.
    return int(value)


def budget_report(
    url: str,
    frame: str,
    budgets: BudgetMap | Mapping[str, str | Sequence[str]] | None = None,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    top: int = DEFAULT_TOP,
    spike_factor: float = DEFAULT_SPIKE_FACTOR,
    spike_window: int = DEFAULT_SPIKE_WINDOW,
) -> BudgetReport:
    """The frames named ``frame`` in the database at ``url``, per budget.

    ``budgets`` is a :class:`BudgetMap`, a mapping for
    :meth:`BudgetMap.from_mapping`, or ``None`` (each span name its own
    budget).  Frames are those started in ``[since_ns, until_ns)``.  One
    statement: the summary of each budget and its ``top`` offenders come back,
    never the spans.  Raises :class:`ValueError` for a bad argument and
    :class:`~alamos.core.errors.TraceQueryError` if the database cannot be
    read.
    """
    _check_frame(frame)
    bmap = _budget_map(budgets)
    _check_top(top)
    _check_spike(spike_factor, spike_window)

    def work(conn: Connection) -> BudgetReport:
        _tune(conn)
        dialect = conn.dialect.name
        frames = _frames_cte(frame, since_ns, until_ns, spike_factor, spike_window)
        per_frame = _per_frame_cte(frames, bmap, dialect)
        f, p = frames.c, per_frame.c
        part = p.token
        ranked = (
            select(
                p.token,
                p.frame_trace,
                p.frame_span,
                p.n,
                p.d,
                f.start_ns,
                f.duration_ns.label("frame_ns"),
                f.spike,
                func.count().over(partition_by=part).label("b_frames"),
                func.sum(p.n).over(partition_by=part).label("b_count"),
                func.sum(p.d).over(partition_by=part).label("b_total"),
                func.min(p.d).over(partition_by=part).label("b_min"),
                func.max(p.d).over(partition_by=part).label("b_max"),
                func.row_number()
                .over(
                    partition_by=part,
                    order_by=(p.d.desc(), f.start_ns, p.frame_trace, p.frame_span),
                )
                .label("rn"),
            )
            .join_from(
                per_frame, frames, and_(f.trace_id == p.frame_trace, f.span_id == p.frame_span)
            )
            .subquery("ranked")
        )
        totals = select(
            func.count().label("t_frames"),
            func.coalesce(func.sum(f.duration_ns), 0).label("t_total"),
            func.min(f.duration_ns).label("t_min"),
            func.max(f.duration_ns).label("t_max"),
            func.coalesce(func.sum(f.spike), 0).label("t_spikes"),
        ).subquery("totals")
        r = ranked.c
        query: Select[Any] = select(totals, ranked).select_from(
            totals.outerjoin(ranked, r.rn <= top)
        )
        rows = conn.execute(query).all()
        t = rows[0]
        stats = FrameStats(
            name=frame,
            frames=_int(t.t_frames),
            total_ns=_int(t.t_total),
            min_ns=None if t.t_min is None else _int(t.t_min),
            max_ns=None if t.t_max is None else _int(t.t_max),
            spikes=_int(t.t_spikes),
        )
        budgets_seen: dict[str, BudgetStats] = {}
        offenders: list[Offender] = []
        for row in rows:
            if row.token is None:
                continue  # no frame has a budget: the one row of the totals
            budget = _budget_of_token(row.token)
            if budget not in budgets_seen:
                total = _int(row.b_total)
                budgets_seen[budget] = BudgetStats(
                    budget=budget,
                    frames=_int(row.b_frames),
                    count=_int(row.b_count),
                    total_ns=total,
                    min_ns=_int(row.b_min),
                    max_ns=_int(row.b_max),
                    share=total / stats.total_ns if stats.total_ns > 0 else None,
                )
            offenders.append(
                FrameBudget(
                    trace_id=row.frame_trace,
                    span_id=row.frame_span,
                    start_ns=_int(row.start_ns),
                    frame_ns=_int(row.frame_ns),
                    budget=budget,
                    count=_int(row.n),
                    duration_ns=_int(row.d),
                    spike=bool(row.spike),
                )
            )
        # Budgets are ordered here, not by the database's collation, so both
        # databases give the same order.
        ordered = sorted(budgets_seen.values(), key=lambda b: (-b.total_ns, b.budget))
        offenders.sort(key=lambda o: (o.budget, *_offender_key(o)))
        return BudgetReport(stats, tuple(ordered), tuple(offenders), top)

    return _run(url, work)


def frame_budgets(
    url: str,
    frame: str,
    budgets: BudgetMap | Mapping[str, str | Sequence[str]] | None = None,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    spike_factor: float = DEFAULT_SPIKE_FACTOR,
    spike_window: int = DEFAULT_SPIKE_WINDOW,
) -> list[FrameBudget]:
    """Every frame's line in every budget it spent time in, in frame order
    (start time, trace id, span id) then by budget.

    One row per frame and budget: meant for a chosen time range, or for
    exporting elsewhere; :func:`budget_report` summarises in the database.
    """
    _check_frame(frame)
    bmap = _budget_map(budgets)
    _check_spike(spike_factor, spike_window)

    def work(conn: Connection) -> list[FrameBudget]:
        _tune(conn)
        frames = _frames_cte(frame, since_ns, until_ns, spike_factor, spike_window)
        per_frame = _per_frame_cte(frames, bmap, conn.dialect.name)
        f, p = frames.c, per_frame.c
        query = select(
            p.frame_trace, p.frame_span, p.token, p.n, p.d, f.start_ns, f.duration_ns, f.spike
        ).join_from(per_frame, frames, and_(f.trace_id == p.frame_trace, f.span_id == p.frame_span))
        rows = [
            FrameBudget(
                trace_id=r.frame_trace,
                span_id=r.frame_span,
                start_ns=_int(r.start_ns),
                frame_ns=_int(r.duration_ns),
                budget=_budget_of_token(r.token),
                count=_int(r.n),
                duration_ns=_int(r.d),
                spike=bool(r.spike),
            )
            for r in conn.execute(query)
        ]
        # Ordered here, not by the database's collation (budget names).
        rows.sort(key=lambda r: (r.start_ns, r.trace_id, r.span_id, r.budget))
        return rows

    return _run(url, work)


def frames_of(
    url: str,
    frame: str,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    spike_factor: float = DEFAULT_SPIKE_FACTOR,
    spike_window: int = DEFAULT_SPIKE_WINDOW,
    spikes_only: bool = False,
    limit: int | None = None,
) -> list[FrameRow]:
    """The frames named ``frame``, in start order, each with its running
    mean and spike flag; ``spikes_only`` keeps the spikes, ``limit`` the
    *last* ``limit`` of them (still in start order)."""
    _check_frame(frame)
    _check_spike(spike_factor, spike_window)
    if limit is not None:
        _check_top(limit)

    def work(conn: Connection) -> list[FrameRow]:
        frames = _frames_cte(frame, since_ns, until_ns, spike_factor, spike_window)
        f = frames.c
        query = select(f.trace_id, f.span_id, f.start_ns, f.duration_ns, f.prev_mean, f.spike)
        if spikes_only:
            query = query.where(f.spike == 1)
        query = query.order_by(f.start_ns.desc(), f.trace_id.desc(), f.span_id.desc())
        if limit is not None:
            query = query.limit(limit)
        rows = [
            FrameRow(
                trace_id=r.trace_id,
                span_id=r.span_id,
                start_ns=_int(r.start_ns),
                duration_ns=_int(r.duration_ns),
                previous_mean_ns=None if r.prev_mean is None else float(r.prev_mean),
                spike=bool(r.spike),
            )
            for r in conn.execute(query)
        ]
        rows.reverse()
        return rows

    return _run(url, work)
