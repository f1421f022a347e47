"""One trace as a waterfall: rows in tree order, bars to scale, the critical path.

The rows come from :func:`~alamos.report.query.build_tree` (parent links,
never times, decide nesting; times only order siblings), depth first.  Each
bar's offset and width are percentages of the trace's extent, so the page
places them without knowing the times.  Pure functions, no database.

The critical path is the chain of spans that determined the trace's end:
from each span on it, the child that finished last is on it, then, working
backwards from that child's start, the child that finished last before
then, and so on (the way Jaeger computes it).  A parent waiting on no
child is on it alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from alamos.core.records import LogRecord, SpanRecord
from alamos.report.query import TraceNode, build_tree, unattached_logs

__all__ = ["PALETTE_SIZE", "Waterfall", "WaterfallRow", "build_waterfall", "critical_path"]

#: Services are coloured with this many CSS classes (svc-0...): the trace's
#: services in name order take them in turn, so up to 8 never share one.
PALETTE_SIZE = 8


@attrs.frozen
class WaterfallRow:
    span: SpanRecord
    depth: int
    left: float
    """Offset of the bar, in % of the trace's extent."""
    width: float
    """Width of the bar, in % (at least a sliver, so a 0 ns span shows)."""
    colour: int
    critical: bool
    orphan: bool
    logs: tuple[LogRecord, ...]


@attrs.frozen
class Waterfall:
    rows: tuple[WaterfallRow, ...]
    start_ns: int
    end_ns: int
    services: tuple[tuple[str, int], ...]
    """Each service and its colour class, for the legend."""
    orphans: int
    loose_logs: tuple[LogRecord, ...]
    """Logs of the trace whose span is not in the database."""

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def errors(self) -> int:
        return sum(1 for r in self.rows if r.span.status == "error")


def critical_path(roots: Sequence[TraceNode]) -> set[str]:
    """The span ids on the critical path of each root (see the module docstring)."""
    on: set[str] = set()
    stack: list[tuple[TraceNode, int]] = [(r, r.span.end_ns) for r in roots]
    while stack:
        node, until = stack.pop()
        on.add(node.span.span_id)
        t = min(node.span.end_ns, until)
        for child in sorted(node.children, key=lambda c: (c.span.end_ns, c.span.start_ns))[::-1]:
            if child.span.start_ns >= t:
                continue  # started after the part of the parent still to explain
            stack.append((child, t))
            t = child.span.start_ns
    return on


def build_waterfall(spans: Sequence[SpanRecord], logs: Sequence[LogRecord]) -> Waterfall:
    roots = build_tree(spans, logs)
    start = min((s.start_ns for s in spans), default=0)
    end = max((s.end_ns for s in spans), default=0)
    extent = max(end - start, 1)
    critical = critical_path([r for r in roots if not r.orphan][:1] or roots[:1])
    rows = []
    names = sorted({s.service for s in spans})
    services = {name: i % PALETTE_SIZE for i, name in enumerate(names)}
    orphans = 0
    for root in roots:
        for depth, node in root.walk():
            s = node.span
            orphans += node.orphan
            rows.append(
                WaterfallRow(
                    span=s,
                    depth=depth,
                    left=round(100.0 * (s.start_ns - start) / extent, 3),
                    width=round(max(100.0 * s.duration_ns / extent, 0.2), 3),
                    colour=services[s.service],
                    critical=s.span_id in critical,
                    orphan=node.orphan,
                    logs=tuple(node.logs),
                )
            )
    return Waterfall(
        rows=tuple(rows),
        start_ns=start,
        end_ns=end,
        services=tuple(sorted(services.items())),
        orphans=orphans,
        loose_logs=tuple(unattached_logs(spans, logs)),
    )
