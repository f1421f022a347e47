"""What an instrument knows about where it sits: a small value, not the tree.

Each experiment describes where it sits with a :class:`Scope`: its path,
which levels are on there right now, and the debug session covering it.
Its tracer, logger and metrics are built with the experiment's
:class:`LiveScope`, read the scope from it and ask to be told when it
changes (the filter or the debug sessions changed, or a synchronous
exporter was attached to or removed from the running tree: the scope also
says where records go, its ``put``).  An instrument never holds its
experiment, so instruments import nothing but this ground floor.

Why the ``put`` travels with the scope: an instrument calls its ``put`` on
every finished span and log call, so it holds it in a slot (one attribute
read), and a tree with no synchronous exporter gives it the hand-off's own
``put``, no wrapper.  A recorder attached later (:meth:`Recorder.attach
<alamos.testing.Recorder.attach>`) must reach instruments built before it;
pushing the new ``put`` through the scope costs nothing per call, where a
wrapper that looks the sinks up on every call would cost one more Python
call per span.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from alamos.core.handoff import Put
from alamos.core.level import Level

__all__ = ["LiveScope", "Scope"]


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
    put: Put | None = attrs.field(default=None, eq=False, repr=False)
    """Where the instruments hand what they record; ``None``: keep the
    ``put`` they were built with."""

    def enabled(self, level: Level) -> bool:
        if level is Level.PROD:
            return self.prod
        return self.debug if level is Level.DEBUG else self.bench

    def off(self) -> Scope:
        """The same path with every level off (a closed tree)."""
        return Scope(self.path)


class LiveScope:
    """The current :class:`Scope` of one experiment, and who to tell when it
    changes.  Instruments call :meth:`watch` with their own update function
    when they are built; the experiment calls :meth:`set`."""

    __slots__ = ("_watchers", "scope")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._watchers: list[Callable[[Scope], None]] = []

    def watch(self, update: Callable[[Scope], None]) -> None:
        """Call ``update(scope)`` now and at every change."""
        self._watchers.append(update)
        update(self.scope)

    def set(self, scope: Scope) -> None:
        self.scope = scope
        for update in self._watchers:
            update(scope)
