"""The bounded hand-off from the instrumented threads to the collector's worker.

:meth:`Handoff.put` is the one put of alamos: a finished span, a log item or
a record goes through it, from any thread.  It is ``deque.append`` plus a
length check: no lock, no I/O, no record building (``deque.append`` and
``len`` are atomic under the GIL).  It wakes the worker once per
``batch_size`` items, not once per item: setting a
:class:`threading.Event` takes its lock, which is what made OpenTelemetry's
BatchSpanProcessor contend.  When the queue holds ``limit`` items, a put
drops the item and counts it, never blocking the caller.

The worker side (:meth:`take`, :meth:`wait`) is used by
:class:`alamos.report.pipeline.collector.Collector`.  Queued items know how to
become records (:class:`Item`), so the worker needs to know nothing about
spans or logs.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from alamos.core.records import Record

__all__ = ["Handoff", "Item"]


class Item(Protocol):
    """What goes through the hand-off: anything that can become a record
    (a finished span, a log item, a record itself)."""

    def to_record(self, service: str, node: str) -> Record: ...


class Handoff:
    """A bounded queue of items.  ``on_first_put`` is called (from the
    producing thread) by the first put after creation or :meth:`reset`, to
    start the worker lazily."""

    __slots__ = (
        "_dropped",
        "_idle",
        "_limit",
        "_on_first_put",
        "_q",
        "_wake",
        "batch_size",
        "limit",
    )

    def __init__(self, limit: int, batch_size: int, on_first_put: Callable[[], None]) -> None:
        if batch_size < 1 or limit < 1:
            raise ValueError(
                f"batch_size and max_queue must be at least 1 (got {batch_size} and {limit})"
            )
        self.limit = limit
        self.batch_size = batch_size
        self._on_first_put = on_first_put
        self.reset()

    def reset(self) -> None:
        """Empty, open, with no worker (at creation, and in a forked child:
        the parent's queued items belong to the parent, which exports them)."""
        self._q: deque[Any] = deque()
        self._limit = self.limit
        self._wake = threading.Event()
        self._dropped = itertools.count()
        self._idle = True

    # -- the producers' side (hot path) -------------------------------------

    def put(self, item: Item) -> None:
        """Queue one item.  Never blocks; drops (and counts) it when full."""
        q = self._q
        n = len(q)
        if n < self._limit:
            q.append(item)
            if n == self.batch_size or self._idle:
                self._kick(n)
        else:
            next(self._dropped)  # itertools.count: atomic under the GIL

    def _kick(self, n: int) -> None:
        if n == self.batch_size:
            self._wake.set()
        if self._idle:
            self._idle = False
            self._on_first_put()

    def close(self) -> None:
        """Drop (and count) every item put from now on."""
        self._limit = 0

    def force(self, item: Item) -> None:
        """Queue ``item`` even when closed or full: the last snapshots at close."""
        self._q.append(item)

    # -- the worker's side ---------------------------------------------------

    def wait(self, timeout: float) -> None:
        """Sleep until a full batch is waiting (or :meth:`wake`), at most ``timeout``."""
        if len(self._q) < self.batch_size:
            self._wake.wait(timeout)
        self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    def take(self, n: int) -> list[Any]:
        """Up to ``n`` items, oldest first."""
        pop = self._q.popleft
        return [pop() for _ in range(min(n, len(self._q)))]

    def __len__(self) -> int:
        return len(self._q)

    @property
    def dropped(self) -> int:
        """Items dropped so far (queue full, or put after :meth:`close`)."""
        # itertools.count has no read: its repr is "count(5)".
        text = repr(self._dropped)
        return int(text[text.index("(") + 1 : -1])
