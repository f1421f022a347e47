"""An in-memory exporter for tests: :class:`Recorder`.

A Recorder is a *synchronous* exporter: records reach it in the recording
thread at the moment they are made, so a test can assert a span right after
its ``with`` block, with no worker to wait for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from alamos.experiment.experiment import Experiment
from alamos.experiment.level import LevelLike, parse_level
from alamos.report.records import (
    ExperimentRecord,
    LogRecord,
    MetricRecord,
    Record,
    ReportRecord,
    SpanRecord,
)

__all__ = ["Recorder"]


def _describe_span(s: SpanRecord) -> str:
    return f"{s.path}:{s.name} [{s.level}, {s.status}]"


def _describe_log(r: LogRecord) -> str:
    return f"{r.path} {r.level}: {r.message!r}"


class Recorder:
    """Keeps every record in memory, in order, thread-safe."""

    synchronous = True

    def __init__(self, min_level: LevelLike = "bench", name: str = "recorder") -> None:
        self.min_level = parse_level(min_level)
        self.name = name
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self.closed = False

    # -- the exporter side --------------------------------------------------------

    def export(self, records: Sequence[Record]) -> None:
        with self._lock:
            self._records.extend(records)

    def close(self) -> None:
        self.closed = True

    # -- making trees ---------------------------------------------------------------

    def new(self, key: str, level: object = "bench", **kw: Any) -> Experiment:
        """An isolated experiment tree wired to this recorder (everything on by
        default).  Other keyword arguments go to :func:`alamos.new`."""
        from alamos.experiment.lifecycle import new

        exporters = [self, *kw.pop("exporters", ())]
        kw.setdefault("console", False)
        return new(key, level=level, exporters=exporters, **kw)

    # -- queries --------------------------------------------------------------------

    @property
    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def _of(self, cls: type[Any]) -> list[Any]:
        with self._lock:
            return [r for r in self._records if type(r) is cls]

    def spans(
        self,
        *,
        name: str | None = None,
        path: str | None = None,
        level: LevelLike | None = None,
        status: str | None = None,
        trace_id: str | None = None,
        where: Callable[[SpanRecord], bool] | None = None,
    ) -> list[SpanRecord]:
        """Finished spans matching every given filter, in end order."""
        lvl = None if level is None else parse_level(level)
        out = []
        for s in self._of(SpanRecord):
            if name is not None and s.name != name:
                continue
            if path is not None and s.path != path:
                continue
            if lvl is not None and s.level != lvl:
                continue
            if status is not None and s.status != status:
                continue
            if trace_id is not None and s.trace_id != trace_id:
                continue
            if where is not None and not where(s):
                continue
            out.append(s)
        return out

    def span(self, **filters: Any) -> SpanRecord:
        """Exactly one span matching ``filters``; fails listing what there is."""
        found = self.spans(**filters)
        if len(found) == 1:
            return found[0]
        have = [_describe_span(s) for s in self._of(SpanRecord)]
        listing = "\n  ".join(have) if have else "(no spans recorded)"
        raise AssertionError(
            f"expected exactly one span matching {filters}, found {len(found)}. "
            f"Recorded spans:\n  {listing}"
        )

    def logs(
        self,
        *,
        level: str | None = None,
        path: str | None = None,
        message: str | None = None,
        trace_id: str | None = None,
    ) -> list[LogRecord]:
        """Log records matching every given filter (``message`` is a substring)."""
        out = []
        for r in self._of(LogRecord):
            if level is not None and r.level != level.upper():
                continue
            if path is not None and r.path != path:
                continue
            if message is not None and message not in r.message:
                continue
            if trace_id is not None and r.trace_id != trace_id:
                continue
            out.append(r)
        return out

    def log(self, **filters: Any) -> LogRecord:
        found = self.logs(**filters)
        if len(found) == 1:
            return found[0]
        have = [_describe_log(r) for r in self._of(LogRecord)]
        listing = "\n  ".join(have) if have else "(no logs recorded)"
        raise AssertionError(
            f"expected exactly one log matching {filters}, found {len(found)}. "
            f"Recorded logs:\n  {listing}"
        )

    @property
    def metrics(self) -> list[MetricRecord]:
        return self._of(MetricRecord)

    @property
    def reports(self) -> list[ReportRecord]:
        return self._of(ReportRecord)

    @property
    def experiments(self) -> list[ExperimentRecord]:
        return self._of(ExperimentRecord)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return f"<Recorder {len(self._records)} records, min_level={self.min_level}>"


