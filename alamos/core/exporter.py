"""What an exporter is.

An exporter receives batches of finished records and makes them durable.
Each one has a minimum level (``min_level``): the collector hands it only the
records whose ``export_level`` is at or above it.  That is "export by level":
prod data to the database, debug data to the console, for instance.

Exporters come in two kinds:

* **background** (the default): the root's collector calls ``export`` from
  its worker, through a :class:`alamos.report.pipeline.delivery.Delivery` that retries,
  spools to disk and replays.  ``export`` may block and may raise; it must
  only return once the batch is durable.
* **synchronous** (``synchronous = True``): called in the recording thread at
  the moment a record is made.  Only for in-memory exporters such as
  :class:`alamos.testing.Recorder`; it must be fast and must not raise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from alamos.core.level import Level
from alamos.core.records import Record

__all__ = ["Exporter"]


@runtime_checkable
class Exporter(Protocol):
    """The exporter contract (structural: no base class needed)."""

    #: Records below this level are not given to this exporter.
    min_level: Level
    #: A stable name, used for the spool folder and in warnings.
    name: str
    #: True for in-memory exporters called on the recording thread.
    synchronous: bool

    def export(self, records: Sequence[Record]) -> None:
        """Make ``records`` durable, or raise.  Records may be seen again after a
        failure or on spool replay, so storing must be idempotent by record id."""

    def close(self) -> None:
        """Release resources.  Called once, after the last ``export``."""
