"""The shape of recorded traces as an indented outline (``rec.assert_tree``).

A trace's shape (who called whom, in what order) is what a test usually
cares about, and its ids and times are what it must ignore.  An outline
shows exactly the shape::

    server.api.handle
      server.cesium.write
        server.cesium.wal.fsync

Each line is ``path.name`` of one span, indented two spaces per level under
its parent.  Siblings are sorted by start time (ties by the order they were
recorded), and so are the top-level spans, one per trace (or more, when a
trace's root span was not recorded: a span whose parent is not among the
recorded spans is drawn at the top level).  Both the expected text and the
recorded spans are turned into this canonical form before comparing, so the
expected text may be indented in a triple-quoted string, and may use any
consistent indent width.
"""

from __future__ import annotations

import difflib
import textwrap
from collections.abc import Sequence

from alamos.core.records import SpanRecord

__all__ = ["canonical_outline", "outline", "outline_diff"]


def outline(spans: Sequence[SpanRecord]) -> list[str]:
    """The outline lines of ``spans`` (see the module doc)."""
    order = {id(s): i for i, s in enumerate(spans)}
    known = {(s.trace_id, s.span_id) for s in spans}
    children: dict[tuple[str, str], list[SpanRecord]] = {}
    roots: list[SpanRecord] = []
    for s in spans:
        if s.parent_id is not None and (s.trace_id, s.parent_id) in known:
            children.setdefault((s.trace_id, s.parent_id), []).append(s)
        else:
            roots.append(s)

    def key(s: SpanRecord) -> tuple[int, int]:
        return (s.start_ns, order[id(s)])

    lines: list[str] = []
    # An explicit stack instead of recursion: a deep trace must not hit the
    # recursion limit inside an assertion helper.
    stack: list[tuple[SpanRecord, int]] = [(r, 0) for r in sorted(roots, key=key, reverse=True)]
    while stack:
        span, depth = stack.pop()
        lines.append("  " * depth + f"{span.path}.{span.name}")
        kids = children.get((span.trace_id, span.span_id), [])
        stack.extend((k, depth + 1) for k in sorted(kids, key=key, reverse=True))
    return lines


def canonical_outline(text: str) -> list[str]:
    """Parse an expected outline into canonical lines (two spaces a level).

    Blank lines are ignored; the first non-blank line sets the base indent.
    Raises :class:`ValueError` on an indent that matches no open level, so
    that a typo in the expected text is reported as such rather than as a
    confusing diff.
    """
    body = textwrap.dedent(text.expandtabs(4))
    out: list[str] = []
    levels: list[int] = []
    for number, raw in enumerate(body.splitlines(), 1):
        label = raw.strip()
        if not label:
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        if not levels or indent > levels[-1]:
            levels.append(indent)
        else:
            while levels and levels[-1] > indent:
                levels.pop()
            if not levels or levels[-1] != indent:
                raise ValueError(
                    f"expected outline, line {number} ({label!r}): its indent ({indent}) "
                    "matches no enclosing line; indent each child further than its parent "
                    "and siblings equally"
                )
        out.append("  " * (len(levels) - 1) + label)
    return out


def outline_diff(expected: Sequence[str], actual: Sequence[str]) -> str | None:
    """``None`` when equal; else a unified diff (``-`` expected, ``+`` actual)
    with full context, followed by the actual outline for copy-pasting."""
    if list(expected) == list(actual):
        return None
    context = max(len(expected), len(actual))
    diff = difflib.unified_diff(
        list(expected), list(actual), "expected", "actual", lineterm="", n=context
    )
    shown = "\n".join(actual) if actual else "(no spans recorded)"
    return (
        "recorded span tree does not match the expected outline "
        "(- expected, + actual):\n" + "\n".join(diff) + "\n\nactual outline:\n" + shown
    )
