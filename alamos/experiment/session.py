"""Debug sessions: lower one subtree's threshold for a while.

``with root.debug_session("server.cesium", level="debug") as s:`` turns on
debug records under ``server.cesium`` until the block ends.  Records made
there meanwhile carry ``s.id``, so a whole session can be pulled out of the
database with one ``WHERE session_id = ?``.  Sessions are kept in a list on
the root, not a stack: they may nest, overlap, and run in several threads or
tasks, and each one removes only itself when it ends.
"""

from __future__ import annotations

from random import getrandbits
from time import time_ns
from typing import TYPE_CHECKING

from alamos.core.level import Level

if TYPE_CHECKING:
    from alamos.experiment.root import RootState

__all__ = ["DebugSession"]


class DebugSession:
    """An active (or finished) debug session.  Use it as a context manager
    (sync or async), or call :meth:`start` and :meth:`stop`."""

    __slots__ = ("_state", "active", "ended_ns", "id", "level", "path", "started_ns")

    def __init__(self, state: RootState, path: str, level: Level) -> None:
        self._state = state
        self.path = path
        self.level = level
        self.id = f"{getrandbits(64) or 1:016x}"
        self.active = False
        self.started_ns = 0
        self.ended_ns: int | None = None

    def covers(self, path: str) -> bool:
        return path == self.path or path.startswith(self.path + ".")

    def start(self) -> DebugSession:
        if not self.active and self.ended_ns is None:
            self.started_ns = time_ns()
            self.active = True
            self._state.add_session(self)
        return self

    def stop(self) -> None:
        if self.active:
            self.active = False
            self.ended_ns = time_ns()
            self._state.remove_session(self)

    def __enter__(self) -> DebugSession:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> DebugSession:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "active" if self.active else "ended"
        return f"<DebugSession {self.id} {self.path}>={self.level} {state}>"
