"""The ``put`` a tree's instruments hand their records to.

A tree with only background exporters gives its instruments the hand-off's
own ``put`` (``deque.append`` and a length check, see
:mod:`alamos.core.handoff`): nothing else runs on the recording thread.  A
tree with synchronous exporters (a :class:`~alamos.testing.Recorder`) gives
them a function that builds each record at once, hands it to every
synchronous exporter whose level it reaches, then to the hand-off.

The synchronous exporters can change while the tree runs
(:meth:`RootState.add_sink <alamos.experiment.root.RootState.add_sink>`,
used by ``Recorder.attach``): the root then builds a new ``put`` here and
pushes it to every instrument with the scope (see :mod:`alamos.core.scope`),
so a tree with nothing attached keeps the fast path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from alamos.core.exporter import Exporter
from alamos.core.handoff import Item, Put

if TYPE_CHECKING:
    from alamos.experiment.root import RootState

__all__ = ["discard", "make_put"]


def make_put(state: RootState, sinks: Sequence[Exporter]) -> Put:
    """The ``put`` of a tree whose synchronous exporters are ``sinks``."""
    collector = state.collector
    if not sinks:
        return collector.handoff.put if collector is not None else discard
    handoff_put = collector.handoff.put if collector is not None else None
    sinks = tuple(sinks)

    def put(item: Item, extra: int = 0, /) -> None:
        record = item.to_record(state.service, state.node)
        level = record.export_level
        for sink in sinks:
            if level >= sink.min_level:
                sink.export((record,))
        if handoff_put is not None:
            handoff_put(record, extra)

    return put


def discard(item: Any, extra: int = 0, /) -> None:
    return None
