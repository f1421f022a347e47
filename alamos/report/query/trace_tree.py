"""Rebuilding the tree of one trace from its spans, by parent links only.

Start times come from the clocks of different machines: a child whose clock
runs behind its parent's can "start" before it, and ordering by time would
put it in the wrong place or level.  So the structure comes from
``parent_id`` alone and time only orders siblings.  Pure functions, no
database: :mod:`alamos.report.query` reads the spans, and re-exports these.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import attrs

from alamos.core.records import LogRecord, SpanRecord

__all__ = ["TraceNode", "build_tree", "unattached_logs"]


@attrs.define(eq=False)
class TraceNode:
    """A span in the tree of its trace, with its children and its logs.

    ``orphan`` is true for a span shown as a root although it has a parent:
    the parent is not in the database (not flushed yet, exported elsewhere,
    or filtered out by level) or the parent links form a cycle (corrupt rows).
    """

    span: SpanRecord
    children: list[TraceNode] = attrs.field(factory=list)
    logs: list[LogRecord] = attrs.field(factory=list)
    orphan: bool = False

    def walk(self) -> Iterator[tuple[int, TraceNode]]:
        """``(depth, node)`` for this node and its descendants, depth first.

        Iterative, so a deep trace cannot exhaust Python's recursion limit.
        """
        stack: list[tuple[int, TraceNode]] = [(0, self)]
        while stack:
            depth, node = stack.pop()
            yield depth, node
            stack.extend((depth + 1, c) for c in reversed(node.children))


def _sibling_key(s: SpanRecord) -> tuple[int, str]:
    return (s.start_ns, s.span_id)


def build_tree(spans: Iterable[SpanRecord], logs: Iterable[LogRecord] = ()) -> list[TraceNode]:
    """Arrange ``spans`` into trees by their parent links; return the roots.

    Roots come first (in start order), then orphans (spans whose parent is
    missing, marked ``orphan=True``).  Children are in start order under their
    parent: times decide only the order of siblings, never who is whose
    parent, so clock skew between nodes cannot break the tree.  Spans caught
    in a cycle of parent links (which alamos never writes, but a database is
    shared input) become orphan roots as well, so every span appears exactly
    once.  Each log is attached to the node of its ``span_id``; logs of no
    span in ``spans`` are left out (see :func:`unattached_logs`).
    """
    by_id: dict[str, TraceNode] = {}
    for s in spans:
        by_id.setdefault(s.span_id, TraceNode(s))
    roots: list[TraceNode] = []
    orphans: list[TraceNode] = []
    for node in by_id.values():
        pid = node.span.parent_id
        if pid is None:
            roots.append(node)
        elif pid not in by_id or pid == node.span.span_id:
            node.orphan = True
            orphans.append(node)
        else:
            by_id[pid].children.append(node)
    for node in by_id.values():
        node.children.sort(key=lambda n: _sibling_key(n.span))
    roots.sort(key=lambda n: _sibling_key(n.span))
    orphans.sort(key=lambda n: _sibling_key(n.span))
    result = roots + orphans
    seen = {id(n) for top in result for _, n in top.walk()}
    # Whatever is left is reachable from no root: a cycle of parent links.
    # Cut each cycle at its earliest span and show it as an orphan root.
    for node in sorted(by_id.values(), key=lambda n: _sibling_key(n.span)):
        if id(node) in seen:
            continue
        parent = by_id.get(node.span.parent_id or "")
        if parent is not None:
            parent.children.remove(node)
        node.orphan = True
        result.append(node)
        seen.update(id(n) for _, n in node.walk())
    for log in logs:
        owner = by_id.get(log.span_id or "")
        if owner is not None:
            owner.logs.append(log)
    for node in by_id.values():
        node.logs.sort(key=lambda r: (r.ts_ns, r.id))
    return result


def unattached_logs(spans: Iterable[SpanRecord], logs: Iterable[LogRecord]) -> list[LogRecord]:
    """The logs whose span is not among ``spans`` (or that name no span)."""
    ids = {s.span_id for s in spans}
    return sorted((r for r in logs if r.span_id not in ids), key=lambda r: (r.ts_ns, r.id))
