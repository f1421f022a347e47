"""What an instrument knows about where it sits: a small value, not the tree.

Each experiment hands its tracer, logger and metrics a :class:`Scope`: its
path, which levels are on there right now, and the debug session covering
it.  When the filter or the debug sessions change, the experiment hands
them a new one (``update(scope)``).  An instrument never holds its
experiment, so instruments import nothing but this ground floor.
"""

from __future__ import annotations

import attrs

from alamos.core.level import Level

__all__ = ["Scope"]


@attrs.frozen(slots=True)
class Scope:
    path: str
    """The experiment's dotted path (``server.cesium``)."""
    bench: bool = False
    """Whether bench-level records made here are kept now; likewise ``debug``, ``prod``."""
    debug: bool = False
    prod: bool = False
    session_id: str | None = None
    """The id of the debug session covering the path, if any."""

    def enabled(self, level: Level) -> bool:
        if level is Level.PROD:
            return self.prod
        return self.debug if level is Level.DEBUG else self.bench

    def off(self) -> Scope:
        """The same path with every level off (a closed tree)."""
        return Scope(self.path)
