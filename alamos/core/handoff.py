"""The bounded hand-off from the instrumented threads to the collector's worker.

:meth:`Handoff.put` is the one put of alamos: a finished span, a log item or
a record goes through it, from any thread.  It is ``deque.append`` plus a
length check: no lock, no I/O, no record building (``deque.append`` and
``len`` are atomic under the GIL).  It wakes the worker once per
``batch_size`` items, not once per item: setting a
:class:`threading.Event` takes its lock, which is what made OpenTelemetry's
BatchSpanProcessor contend.  When the queue holds ``limit`` items, a put
drops the item and counts it, never blocking the caller.

**Bytes.**  The queue is bounded in bytes as well as in items, by an
estimate that costs nothing on the hot path: every item counts
:data:`ITEM_BYTES` (a span with a few attributes holds about 550 bytes), and
an item holding long text (a long log message, a span with long attribute
values) is put with its ``extra`` bytes, the size of that text in memory
(:func:`alamos.core.attributes.text_size`).  Those rare puts take a lock and
shrink the item limit by what they hold, so the common put stays one length
check: at most ``max_bytes`` are estimated to be queued, and a put past it
is dropped and counted like a put into a full queue (``queue_full``).

**Compaction** (issue 10, 11(b)).  A queued span or log item is an object
the garbage collector tracks, and a full collection visits every one: with
100,000 spans queued (the worker behind) a ``gc.collect(2)`` took 66-68 ms
of CPU, against 30-32 ms with nothing queued (``scripts/gc_pause.py``, on a
shared 2-core VM).  So once :data:`COMPACT_AT` items are queued, a put
stores an item that has a compact form (:class:`Compact`: spans, log
items) as that form instead: a flat tuple of ``str``, ``int``, ``float``,
``bool`` and ``None``, which the collector untracks at its next collection
and never visits again (:mod:`alamos.trace.compact` says why flat).  Then
the same collection took 38-40 ms, and queueing the 100,000 spans brought on
no full collection (two before).

The common put pays nothing for it: the length it compares anyway is
compared with the lower of the two limits (``_fast``), and only a put past
it looks any further (callgrind, a recorded span: 13,638 instructions
against 13,621 before).  Compaction waits for :data:`COMPACT_AT` because it
costs the instrumented thread a third more per span or more (27,300
instructions against 19,800 for a span with 3 attributes, the span object
now freed on that thread; bench ``span_3_attributes_backlog``: +35-43%),
a cost only a backlog is worth.

The worker side (:meth:`take`, :meth:`wait`, :meth:`records`) is used by
:class:`alamos.report.pipeline.collector.Collector`.  Queued items know how to
become records (:class:`Item`, and :class:`Compact` for their compact
form), so the worker needs to know nothing about spans or logs.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from alamos.core.records import Record

__all__ = [
    "COMPACT_AT",
    "DEFAULT_MAX_BYTES",
    "ITEM_BYTES",
    "Compact",
    "Handoff",
    "Item",
    "Put",
    "check_max_bytes",
]

#: The fixed estimate of one queued item, in bytes: a span with three
#: attributes holds 552 (bench/: memory_span_3_attributes), a log item less.
ITEM_BYTES = 512
#: The default bound of the queued bytes (``alamos.new(max_queue_bytes=...)``).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: Queued items past which a put stores an item's compact form (module doc,
#: "Compaction").  The queue stays far below it while the worker keeps up
#: (it is woken every ``batch_size`` items); the items queued below it add
#: at most about 5 ms to a full collection (scripts/gc_pause.py).
COMPACT_AT = 10_000


class Item(Protocol):
    """What goes through the hand-off: anything that can become a record
    (a finished span, a log item, a record itself)."""

    def to_record(self, service: str, node: str) -> Record: ...


class Compact(Item, Protocol):
    """An item with a compact form that the garbage collector does not track
    (see the module doc, "Compaction")."""

    def compact(self, kind: int) -> tuple[Any, ...]:
        """This item as a tuple whose first value is ``kind`` and whose other
        values are ``str``, ``int``, ``float``, ``bool``, ``None`` or tuples of
        those, none of them shared with code that could change them."""
        ...

    @staticmethod
    def from_compact(fields: tuple[Any, ...], service: str, node: str) -> Record:
        """The record of the item that :meth:`compact` gave ``fields``."""
        ...


class Put(Protocol):
    """What the instruments hand items to: :meth:`Handoff.put`, or a
    function with the same signature.  ``extra`` is the item's estimated
    bytes beyond :data:`ITEM_BYTES` (0 for most items)."""

    def __call__(self, item: Item, extra: int = 0, /) -> None: ...


class Handoff:
    """A bounded queue of items.  ``on_first_put`` is called (from the
    producing thread) by the first put after creation or :meth:`reset`, to
    start the worker lazily."""

    __slots__ = (
        "_closed",
        "_converters",
        "_dropped",
        "_extra",
        "_fast",
        "_idle",
        "_kinds",
        "_limit",
        "_lock",
        "_on_first_put",
        "_q",
        "_sized",
        "_wake",
        "batch_size",
        "compact_at",
        "limit",
        "max_bytes",
    )

    def __init__(
        self,
        limit: int,
        batch_size: int,
        on_first_put: Callable[[], None],
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if batch_size < 1 or limit < 1:
            raise ValueError(
                f"batch_size and max_queue must be at least 1 (got {batch_size} and {limit})"
            )
        check_max_bytes(max_bytes)
        self.limit = limit
        self.max_bytes = max_bytes
        self.batch_size = batch_size
        self.compact_at = COMPACT_AT
        self._on_first_put = on_first_put
        #: The compact kind of each item class put past ``compact_at`` (-1:
        #: it has no compact form), and each kind's ``from_compact``.
        self._kinds: dict[type, int] = {}
        self._converters: list[Callable[[tuple[Any, ...], str, str], Record]] = []
        self.reset()

    def set_max_bytes(self, max_bytes: int) -> None:
        """Bound the queued bytes (estimated, see the module doc)."""
        check_max_bytes(max_bytes)
        with self._lock:  # the one lock of the hand-off: sized puts only
            self.max_bytes = max_bytes
            self._update_limit()

    def set_compact_at(self, n: int) -> None:
        """Store the compact form of the items put once ``n`` are queued (0:
        of every item; see the module doc, "Compaction")."""
        if type(n) is not int or n < 0:
            raise ValueError(f"compact_at must be an int >= 0, got {n!r}")
        with self._lock:
            self.compact_at = n
            self._update_limit()

    def reset(self) -> None:
        """Empty, open, with no worker (at creation, and in a forked child:
        the parent's queued items belong to the parent, which exports them)."""
        self._q: deque[Any] = deque()
        self._closed = False
        #: The queued sized items (by id) and their extra bytes, and the total.
        self._sized: dict[int, int] = {}
        self._extra = 0
        self._lock = threading.Lock()  # a forked child must not inherit it held
        self._update_limit()
        self._wake = threading.Event()
        self._dropped = itertools.count()
        self._idle = True

    def _update_limit(self) -> None:
        """The item limit: ``limit``, lowered so that the queued items at
        :data:`ITEM_BYTES` each plus the extra bytes of the sized ones stay
        within ``max_bytes`` (0 once closed); and the limit of the common
        put, which also stops at ``compact_at``."""
        if self._closed:
            self._limit = 0
        else:
            self._limit = min(self.limit, max(0, (self.max_bytes - self._extra) // ITEM_BYTES))
        self._fast = min(self._limit, self.compact_at)

    # -- the producers' side (hot path) -------------------------------------

    def put(self, item: Item, extra: int = 0, /) -> None:
        """Queue one item.  Never blocks; drops (and counts) it when full.

        ``extra``: the item's estimated bytes beyond :data:`ITEM_BYTES`
        (long text it holds); such a put goes through :meth:`_put_sized`.
        """
        q = self._q
        n = len(q)
        # _fast is _limit, or compact_at if lower: the common put compares
        # the length once, as it did before compaction existed.
        if n < self._fast and not extra:
            q.append(item)
            if n == self.batch_size or self._idle:
                self._kick(n)
        elif extra:
            self._put_sized(item, extra)
        elif n < self._limit:
            q.append(self._compacted(item))
            if n == self.batch_size or self._idle:
                self._kick(n)
        else:
            next(self._dropped)  # itertools.count: atomic under the GIL

    def _compacted(self, item: Item) -> Any:
        """``item``'s compact form, or ``item`` if its class has none."""
        kind = self._kinds.get(type(item))
        if kind is None:
            kind = self._register(type(item))
        if kind < 0:
            return item
        compact: Compact = item  # type: ignore[assignment]
        return compact.compact(kind)

    def _register(self, cls: type) -> int:
        """The compact kind of ``cls`` (a new one, the first time; -1 if
        ``cls`` has no compact form).  Once per class: it takes the lock."""
        with self._lock:
            kind = self._kinds.get(cls)
            if kind is None:
                convert = getattr(cls, "from_compact", None)
                if callable(getattr(cls, "compact", None)) and callable(convert):
                    kind = len(self._converters)
                    self._converters.append(convert)
                else:
                    kind = -1
                self._kinds[cls] = kind
            return kind

    def _put_sized(self, item: Item, extra: int) -> None:
        """Queue an item holding ``extra`` bytes of long text, if the bytes
        allow it.  Rare and big, so it may take a lock: its bytes must be
        counted exactly, and the worker takes them off in :meth:`take`."""
        if len(self._q) >= self.compact_at:
            item = self._compacted(item)  # before the lock: it may take it
        with self._lock:
            q = self._q
            n = len(q)
            if self._closed or n >= self.limit:
                fits = False
            else:
                fits = (n + 1) * ITEM_BYTES + self._extra + extra <= self.max_bytes
            if fits:
                key = id(item)
                self._sized[key] = self._sized.get(key, 0) + extra
                self._extra += extra
                self._update_limit()
                q.append(item)  # after the registration: take() must find it
        if not fits:
            next(self._dropped)
        elif n == self.batch_size or self._idle:
            self._kick(n)

    def _kick(self, n: int) -> None:
        if n == self.batch_size:
            self._wake.set()
        if self._idle:
            self._idle = False
            self._on_first_put()

    def close(self) -> None:
        """Drop (and count) every item put from now on."""
        with self._lock:
            self._closed = True
            self._update_limit()

    # -- the worker's side ---------------------------------------------------

    def wait(self, timeout: float) -> None:
        """Sleep until a full batch is waiting (or :meth:`wake`), at most ``timeout``."""
        if len(self._q) < self.batch_size:
            self._wake.wait(timeout)
        self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    def take(self, n: int) -> list[Any]:
        """Up to ``n`` items, oldest first (their bytes are no longer counted)."""
        pop = self._q.popleft
        items = [pop() for _ in range(min(n, len(self._q)))]
        if self._sized:  # some queued item holds long text: find the taken ones
            with self._lock:
                sized = self._sized
                for item in items:
                    extra = sized.pop(id(item), None)
                    if extra is not None:
                        self._extra -= extra
                self._update_limit()
        return items

    def records(self, items: list[Any], service: str, node: str) -> list[Record]:
        """The records of ``items`` from :meth:`take` (compact forms included)."""
        converters = self._converters
        return [
            item.to_record(service, node)
            if type(item) is not tuple
            else converters[item[0]](item, service, node)
            for item in items
        ]

    @property
    def queued_bytes(self) -> int:
        """The estimated bytes queued now (see the module doc)."""
        return len(self._q) * ITEM_BYTES + self._extra

    def __len__(self) -> int:
        return len(self._q)

    @property
    def dropped(self) -> int:
        """Items dropped so far (queue full, or put after :meth:`close`)."""
        # itertools.count has no read: its repr is "count(5)".
        text = repr(self._dropped)
        return int(text[text.index("(") + 1 : -1])


def check_max_bytes(max_bytes: int) -> None:
    """``max_queue_bytes`` must hold at least one item's fixed estimate."""
    if type(max_bytes) is not int or max_bytes < ITEM_BYTES:
        raise ValueError(
            f"max_queue_bytes must be an int of at least {ITEM_BYTES} (the estimate of one "
            f"queued item), got {max_bytes!r}"
        )
