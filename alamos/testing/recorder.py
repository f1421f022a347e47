"""An in-memory exporter for tests: :class:`Recorder`.

A Recorder is a *synchronous* exporter: records reach it in the recording
thread at the moment they are made, so a test can assert a span right after
its ``with`` block, with no worker to wait for and nothing to flush.

It is also the owner of the trees it makes (:meth:`Recorder.new`): it can
list the spans they started and never ended (:meth:`Recorder.unended`), read
their live metrics (:meth:`Recorder.metric`) and close them
(:meth:`Recorder.close`).  It can also be attached to a tree made elsewhere,
at import time for instance (:meth:`Recorder.attach`, see
:mod:`alamos.testing.attach`).  There is no global state: two recorders, or
two tests, never see each other's records.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict, TypeVar, Unpack

from alamos.core.level import LOG_LEVELS, Level, LevelLike, parse_level
from alamos.core.records import (
    ExperimentRecord,
    LogRecord,
    MetricRecord,
    Record,
    ReportRecord,
    SpanRecord,
)
from alamos.experiment.experiment import Experiment
from alamos.testing.attach import Attachment, RecorderSink
from alamos.testing.match import (
    attributes_match,
    describe_log,
    describe_span,
    path_matcher,
    text_matches,
)
from alamos.testing.metric_lookup import (
    MetricSource,
    check_labels,
    combine,
    find_metric,
    live_value,
    unknown_metric,
)
from alamos.testing.normalize import Times, as_dicts
from alamos.testing.outline import canonical_outline, outline, outline_diff
from alamos.trace.span import Span

__all__ = ["LogFilters", "Recorder", "SpanFilters"]

R = TypeVar("R", bound=Record)

_STATUSES = ("unset", "ok", "error")
_LOG_ORDER = {name: i for i, name in enumerate(LOG_LEVELS)}
_LISTED = 50  # records listed at most in a failure message


class SpanFilters(TypedDict, total=False):
    """The filters of :meth:`Recorder.spans`, for ``span`` and ``assert_tree``."""

    path: str
    name: str
    level: LevelLike
    status: str
    trace_id: str
    attributes: Mapping[str, Any]
    where: Callable[[SpanRecord], bool]


class LogFilters(TypedDict, total=False):
    """The filters of :meth:`Recorder.logs`, for ``log``."""

    level: str
    min_level: str
    path: str
    message: str | re.Pattern[str]
    trace_id: str
    span_id: str
    attributes: Mapping[str, Any]
    where: Callable[[LogRecord], bool]


def _log_level(name: str) -> str:
    upper = name.upper() if isinstance(name, str) else ""
    if upper not in _LOG_ORDER:
        raise ValueError(f"invalid log level {name!r}: use one of {', '.join(LOG_LEVELS)}")
    return upper


def _show(value: Any) -> str:
    return repr(str(value)) if isinstance(value, Level) else repr(value)


def _no_match(what: str, filters: Mapping[str, Any], found: int, have: list[str]) -> str:
    given = ", ".join(f"{k}={_show(v)}" for k, v in filters.items())
    head = f"expected exactly one {what}{' matching ' + given if given else ''}, found {found}."
    if not have:
        return f"{head} No {what}s were recorded."
    listing = have[:_LISTED]
    if len(have) > _LISTED:
        listing.append(f"... and {len(have) - _LISTED} more")
    shown = "\n  ".join(listing)
    return f"{head} Recorded {what}s ({len(have)}):\n  {shown}"


class Recorder:
    """Keeps every record in memory, in order, thread-safe."""

    synchronous = True

    def __init__(self, min_level: LevelLike = "bench", name: str = "recorder") -> None:
        self.min_level = parse_level(min_level)
        self.name = name
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self._trees: list[Experiment] = []
        self._attachments: list[Attachment] = []
        self.closed = False

    # -- the exporter side --------------------------------------------------------

    def export(self, records: Sequence[Record]) -> None:
        with self._lock:
            self._records.extend(records)

    def close(self) -> None:
        """Close every tree this recorder made, and detach it from the trees
        it is attached to (which stay open: they are not its own).
        Idempotent.  Records stay readable, and the final metric and report
        records of each tree are recorded on the way.  If a tree raises on
        close (``strict=True`` with unended spans), the others are still
        closed, then the first error is raised."""
        self.closed = True
        first: BaseException | None = None
        for root in self.trees:
            try:
                root.close()
            except Exception as exc:
                first = first or exc
        self.detach_all()
        if first is not None:
            raise first

    # -- trees made elsewhere -------------------------------------------------------

    def attach(self, root: Experiment) -> Attachment:
        """Record everything the tree of ``root`` (any experiment of it) makes
        from now on, until the returned :class:`~alamos.testing.attach.Attachment`
        is detached: use it as a context manager (``with rec.attach(app_root):``),
        or call ``detach()``; :meth:`close` detaches everything.

        For a tree made elsewhere (at import time, by the application): it
        keeps its own exporters and stays open after the detach.  Counters and
        histograms of the tree are read by :meth:`metric` relative to the
        attach.  Attaching to a tree this recorder already hears (its own, or
        attached already) changes nothing."""
        attachment = Attachment(self, root)
        if attachment.attached:
            with self._lock:
                self._attachments.append(attachment)
        return attachment

    def detach_all(self) -> None:
        """Detach from every tree attached with :meth:`attach`."""
        with self._lock:
            attachments = list(self._attachments)
        for attachment in attachments:
            attachment.detach()

    @property
    def attached(self) -> list[Experiment]:
        """The roots this recorder is attached to now, in attach order."""
        with self._lock:
            return [a.root for a in self._attachments if a.attached]

    # -- making trees ---------------------------------------------------------------

    def new(
        self, key: str, level: object = "bench", *, debug: bool = True, **kw: Any
    ) -> Experiment:
        """An isolated experiment tree wired to this recorder.

        Everything is on by default (``level="bench"``), so a test sees debug
        and bench spans, and ``debug=True`` makes the tree track spans that are
        started and not ended (:meth:`unended`).  Console output is off unless
        ``console=True``.  Other keyword arguments go to :func:`alamos.new`.
        """
        from alamos.experiment.lifecycle import new

        exporters = [RecorderSink(self), *kw.pop("exporters", ())]
        kw.setdefault("console", False)
        root = new(key, level=level, exporters=exporters, debug=debug, **kw)
        with self._lock:
            self._trees.append(root)
        return root

    @property
    def trees(self) -> list[Experiment]:
        """The roots made by :meth:`new`, in creation order."""
        with self._lock:
            return list(self._trees)

    def unended(self) -> list[Span]:
        """Spans started and not ended in this recorder's trees, by start time.

        Only trees made with ``debug=True`` (the default of :meth:`new`) track
        open spans.  ``span.location`` says where each one was started.
        """
        found: list[Span] = []
        for root in self.trees:
            found.extend(root.open_spans.snapshot())
        return sorted(found, key=lambda s: s.start_ns)

    # -- queries --------------------------------------------------------------------

    @property
    def records(self) -> list[Record]:
        """Every record, in the order it was made."""
        with self._lock:
            return list(self._records)

    def _of(self, cls: type[R]) -> list[R]:
        with self._lock:
            return [r for r in self._records if type(r) is cls]

    def spans(
        self,
        *,
        path: str | None = None,
        name: str | None = None,
        level: LevelLike | None = None,
        status: str | None = None,
        trace_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        where: Callable[[SpanRecord], bool] | None = None,
    ) -> list[SpanRecord]:
        """Finished spans matching every given filter, in the order they ended.

        ``path`` may be a subtree (``"server.cesium.*"``) and ``attributes``
        matches partially (see :mod:`alamos.testing.match`).
        """
        in_path = None if path is None else path_matcher(path)
        lvl = None if level is None else parse_level(level)
        if status is not None and status not in _STATUSES:
            raise ValueError(f"invalid span status {status!r}: use 'unset', 'ok' or 'error'")
        out: list[SpanRecord] = []
        for s in self._of(SpanRecord):
            if (
                (name is None or s.name == name)
                and (in_path is None or in_path(s.path))
                and (lvl is None or s.level == lvl)
                and (status is None or s.status == status)
                and (trace_id is None or s.trace_id == trace_id)
                and (attributes is None or attributes_match(attributes, s.attributes))
                and (where is None or where(s))
            ):
                out.append(s)
        return out

    def span(self, **filters: Unpack[SpanFilters]) -> SpanRecord:
        """Exactly one span matching ``filters``; otherwise an AssertionError
        that lists every recorded span, so the failure explains itself."""
        __tracebackhide__ = True
        found = self.spans(**filters)
        if len(found) == 1:
            return found[0]
        have = [describe_span(s) for s in self._of(SpanRecord)]
        raise AssertionError(_no_match("span", filters, len(found), have))

    def logs(
        self,
        *,
        level: str | None = None,
        min_level: str | None = None,
        path: str | None = None,
        message: str | re.Pattern[str] | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        where: Callable[[LogRecord], bool] | None = None,
    ) -> list[LogRecord]:
        """Log records matching every given filter, in the order they were made.

        ``level`` is one level name (any case), ``min_level`` that level or
        above (``min_level="error"`` gives ERROR and CRITICAL).  ``message`` is
        a substring of the formatted message, or a compiled regex (searched).
        """
        exact = None if level is None else _log_level(level)
        floor = None if min_level is None else _LOG_ORDER[_log_level(min_level)]
        in_path = None if path is None else path_matcher(path)
        out: list[LogRecord] = []
        for r in self._of(LogRecord):
            if (
                (exact is None or r.level == exact)
                and (floor is None or _LOG_ORDER.get(r.level, 0) >= floor)
                and (in_path is None or in_path(r.path))
                and (message is None or text_matches(message, r.message))
                and (trace_id is None or r.trace_id == trace_id)
                and (span_id is None or r.span_id == span_id)
                and (attributes is None or attributes_match(attributes, r.attributes))
                and (where is None or where(r))
            ):
                out.append(r)
        return out

    def log(self, **filters: Unpack[LogFilters]) -> LogRecord:
        """Exactly one log matching ``filters``; otherwise an AssertionError
        that lists every recorded log."""
        __tracebackhide__ = True
        found = self.logs(**filters)
        if len(found) == 1:
            return found[0]
        have = [describe_log(r) for r in self._of(LogRecord)]
        raise AssertionError(_no_match("log", filters, len(found), have))

    def metric(self, path: str, name: str, /, **labels: Any) -> float | None:
        """The current value of metric ``name`` of experiment ``path`` for
        ``labels`` (a histogram gives its sum), or ``None`` if that series has
        no sample.  An unknown metric, or labels other than the metric's label
        names, fail with an AssertionError that lists what exists (a typo must
        not read as ``None``).

        The live metric is read first, in the open trees this recorder made
        (the first, in creation order, that has it enabled with a sample for
        these labels), then in the trees it is (or was) attached to: a test
        sees an increment at once, with no export to wait for.  A counter or
        histogram of an attached tree counts what it counted while attached
        (from the attach to the detach, or now), summed over the attachments
        that have it (two live trees may share a path); a gauge is the first
        one's value, an attachment in force first, then the latest detached
        (see :mod:`alamos.testing.attach`).  A filtered-out metric has recorded
        nothing, so it is skipped.  Otherwise the latest recorded
        :class:`MetricRecord` with exactly these labels answers: that covers
        closed trees (a tree records its final metric values when it closes)
        and trees made elsewhere.
        """
        __tracebackhide__ = True
        sources = self._metric_sources()
        known = False
        attached: list[tuple[str, float]] = []
        for source in sources:
            metric = find_metric(source.root, path, name)
            if metric is None:
                continue
            known = True
            check_labels(metric, path, labels)
            value = live_value(metric, source, path, labels)
            if value is not None:
                if not source.attached:
                    return value
                attached.append((metric.kind, value))
        if attached:
            return combine(attached)
        want = {k: str(v) for k, v in labels.items()}
        records = self._of(MetricRecord)
        for record in reversed(records):
            if record.path == path and record.name == name:
                known = True
                if dict(record.labels) == want:
                    return record.value
        if not known:
            raise AssertionError(unknown_metric(path, name, sources, records))
        return None

    def _metric_sources(self) -> list[MetricSource]:
        with self._lock:
            own = [MetricSource(root) for root in self._trees]
            # Attached now, then detached from, the latest first (a gauge is
            # read from the first source that has it).
            live = [a for a in self._attachments if a.attached]
            done = [a for a in reversed(self._attachments) if not a.attached]
        attached = [MetricSource(a.root, a.baseline, attached=True) for a in live]
        detached = [
            MetricSource(a.root, attached=True, final=a.final) for a in done if a.final is not None
        ]
        return [*own, *attached, *detached]

    @property
    def metrics(self) -> list[MetricRecord]:
        """Recorded metric samples (exported when a tree closes or flushes)."""
        return self._of(MetricRecord)

    @property
    def reports(self) -> list[ReportRecord]:
        """Recorded report records (exported when a tree closes or flushes)."""
        return self._of(ReportRecord)

    @property
    def experiments(self) -> list[ExperimentRecord]:
        return self._of(ExperimentRecord)

    # -- shapes and snapshots -------------------------------------------------------

    def outline(self, **filters: Unpack[SpanFilters]) -> str:
        """The span forest of the (matching) recorded spans as an outline;
        see :mod:`alamos.testing.outline`."""
        return "\n".join(outline(self.spans(**filters)))

    def assert_tree(self, expected: str, **filters: Unpack[SpanFilters]) -> None:
        """Assert that the recorded spans (those matching ``filters``, if
        given) form exactly the tree of the indented outline ``expected``.
        On a mismatch the AssertionError shows a unified diff."""
        __tracebackhide__ = True
        want = canonical_outline(expected)
        problem = outline_diff(want, outline(self.spans(**filters)))
        if problem is not None:
            raise AssertionError(problem)

    def as_dicts(self, normalize: bool = True, times: Times = "order") -> list[dict[str, Any]]:
        """Every record as a plain dict (``"record"`` says which kind), in order.  With
        ``normalize=True`` ids, times, locations, service and node are made
        deterministic for snapshot tests; see :mod:`alamos.testing.normalize`."""
        return as_dicts(self.records, normalize=normalize, times=times)

    def clear(self) -> None:
        """Forget every record so far (the trees stay open and keep recording)."""
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return f"<Recorder {len(self._records)} records, min_level={self.min_level}>"
