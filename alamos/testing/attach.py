"""Attaching a :class:`~alamos.testing.Recorder` to a tree that already exists.

An application usually makes its root at import time
(``root = alamos.new("shop", db=...)`` in a module).  A test cannot pass it a
recorder then, so it attaches one to the running tree instead::

    with alamos_recorder.attach(shop.root):
        client.get("/orders")
    alamos_recorder.span(name="GET /orders")

While attached, every record the tree makes reaches the recorder at once, in
the recording thread, as in a tree made by ``Recorder.new`` (the tree keeps
its own exporters: its database still gets everything).  Detaching (leaving
the ``with`` block, or the recorder closing) stops that, and leaves the tree
running: it belongs to the application.

Metrics: a module-level tree outlives each test, and its counters keep
counting across tests.  So ``rec.metric`` reads a counter or a histogram of
an attached tree as what it counted *since the attach* (a gauge as its
current value): each test sees its own increments, in any order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from alamos.experiment.experiment import Experiment

if TYPE_CHECKING:
    from alamos.testing.recorder import Recorder

__all__ = ["Attachment", "RecorderSink", "SeriesKey", "series_key"]

#: A metric series: (experiment path, metric name, sorted label items).
SeriesKey = tuple[str, str, tuple[tuple[str, str], ...]]

#: The kinds whose value accumulates, read relative to the attach.
CUMULATIVE = ("counter", "histogram")


def series_key(path: str, name: str, labels: Mapping[str, Any]) -> SeriesKey:
    return (path, name, tuple(sorted((k, str(v)) for k, v in labels.items())))


class RecorderSink:
    """What a tree is given instead of the recorder itself: a synchronous
    exporter that forwards to it, and whose ``close`` does nothing.  A tree
    closes its exporters when it closes; if that were ``Recorder.close``,
    closing one tree would close every other tree of the recorder (and the
    recorder is not an attached tree's to close)."""

    synchronous = True

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.min_level = recorder.min_level
        self.name = recorder.name
        self.export = recorder.export

    def close(self) -> None:
        return None


class Attachment:
    """A recorder attached to a running tree (:meth:`Recorder.attach
    <alamos.testing.Recorder.attach>`): a context manager that detaches on
    exit, giving the recorder.  ``detach()`` may also be called directly,
    more than once."""

    def __init__(self, recorder: Recorder, root: Experiment) -> None:
        self.recorder = recorder
        self.root = root.root
        #: The cumulative metric values at the attach (see the module doc).
        self.baseline: dict[SeriesKey, float] = {}
        #: Once detached: every series' value over the attachment (counters
        #: and histograms since the attach, gauges as they were), so that
        #: ``rec.metric`` still answers after the ``with`` block.
        self.final: dict[SeriesKey, float] | None = None
        self._sink: RecorderSink | None = None
        if any(
            e is recorder or getattr(e, "recorder", None) is recorder for e in self.root.exporters
        ):
            return  # the recorder is fed already: its own tree, or attached twice
        self.baseline = _cumulative_values(self.root)
        self._sink = RecorderSink(recorder)
        self.root.add_exporter(self._sink)

    @property
    def attached(self) -> bool:
        """True until :meth:`detach` (False from the start when the recorder
        was fed already: then this attachment changes nothing)."""
        return self._sink is not None

    def detach(self) -> None:
        sink, self._sink = self._sink, None
        if sink is not None:
            self.root.remove_exporter(sink)
            self.final = _values_since(self.root, self.baseline)

    def __enter__(self) -> Recorder:
        return self.recorder

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        return f"<Attachment of {self.recorder!r} to {self.root!r}, {state}>"


def _cumulative_values(root: Experiment) -> dict[SeriesKey, float]:
    return _values(root, cumulative_only=True)


def _values_since(root: Experiment, baseline: Mapping[SeriesKey, float]) -> dict[SeriesKey, float]:
    values = _values(root, cumulative_only=False)
    return {key: value - baseline.get(key, 0) for key, value in values.items()}


def _values(root: Experiment, cumulative_only: bool) -> dict[SeriesKey, float]:
    """Every series' value (the sum for a histogram); a gauge's with the
    cumulative ones unless ``cumulative_only``.  A metric filtered out of an
    open tree recorded nothing: left out."""
    out: dict[SeriesKey, float] = {}
    for exp in root.walk():
        for metric in exp.metrics:
            if cumulative_only and metric.kind not in CUMULATIVE:
                continue
            if not metric.enabled and not root.closed:
                continue
            for sample in metric.samples():
                value = sample["value"]
                if isinstance(value, int | float) and value == value:  # not NaN
                    out[series_key(exp.path, metric.name, sample["labels"])] = value
    return out
