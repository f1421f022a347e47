""":meth:`Recorder.metric <alamos.testing.Recorder.metric>`'s lookup: the
value of one metric series, and the failure that lists what exists.

A typo in a metric's name or labels must fail the test with what there is
(``assert None == 1`` explains nothing), as ``rec.span()`` does for spans.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from alamos.core.records import MetricRecord
from alamos.experiment.experiment import Experiment
from alamos.metrics.metric import Metric
from alamos.testing.attach import CUMULATIVE, SeriesKey, series_key

__all__ = [
    "MetricSource",
    "check_labels",
    "combine",
    "find_metric",
    "live_value",
    "unknown_metric",
]

_LISTED = 50  # metrics listed at most in a failure message


@attrs.frozen
class MetricSource:
    """A tree to read live metrics from: one the recorder made, or one it is
    attached to, with the cumulative values at the attach (``baseline``),
    subtracted from what is read."""

    root: Experiment
    baseline: Mapping[SeriesKey, float] = attrs.field(factory=dict)
    attached: bool = False
    #: A detached tree's values over the attachment, read instead of the live ones.
    final: Mapping[SeriesKey, float] | None = None


def find_metric(root: Experiment, path: str, name: str) -> Metric | None:
    exp = root.find(path)
    return None if exp is None else exp.metrics.get(name)


def check_labels(metric: Metric, path: str, labels: Mapping[str, Any]) -> None:
    """An AssertionError when ``labels`` are not the metric's label names."""
    __tracebackhide__ = True
    want = set(metric.labelnames)
    if set(labels) != want:
        have = ", ".join(metric.labelnames) or "no labels"
        given = ", ".join(sorted(labels)) or "none"
        raise AssertionError(
            f"metric {name_of(path, metric.name)} has {have}: "
            f"give exactly those label names (given: {given})"
        )


def live_value(
    metric: Metric, source: MetricSource, path: str, labels: Mapping[str, Any]
) -> float | None:
    """The series' value now, less the source's baseline; ``None`` if it has
    no sample (or, in an open tree, if it is filtered out: it recorded
    nothing).  An attached tree that was closed is read as it was at close,
    one detached from as it was at the detach."""
    if source.final is not None:
        return source.final.get(series_key(path, metric.name, labels))
    if not metric.enabled and not (source.attached and source.root.closed):
        return None
    value = metric.value(**labels)
    if value is None:
        return None
    return value - source.baseline.get(series_key(path, metric.name, labels), 0)


def combine(values: Sequence[tuple[str, float]]) -> float:
    """One value for a series found in several attached trees, as
    ``(kind, value since the attach)``: what they counted, summed (a
    counter, a histogram), or the first one's (a gauge)."""
    kind = values[0][0]
    if kind in CUMULATIVE:
        return sum(v for _, v in values)
    return values[0][1]


def name_of(path: str, name: str) -> str:
    return f"{name!r} of {path!r}"


def unknown_metric(
    path: str, name: str, sources: Sequence[MetricSource], records: Iterable[MetricRecord]
) -> str:
    """The failure message for a metric no tree and no record has."""
    seen: dict[tuple[str, str], str] = {}
    for source in sources:
        for exp in source.root.walk():
            for metric in exp.metrics:
                labels = ", ".join(metric.labelnames)
                off = "" if metric.enabled else ", off"
                seen.setdefault(
                    (exp.path, metric.name),
                    f"{metric.kind}{'; labels: ' + labels if labels else ''}{off}",
                )
    for r in records:
        labels = ", ".join(sorted(r.labels))
        seen.setdefault(
            (r.path, r.name), f"{r.kind}{'; labels: ' + labels if labels else ''}, recorded"
        )
    head = f"no metric {name_of(path, name)}."
    if not seen:
        return f"{head} No metrics exist in the recorder's trees or records."
    listing = [f"{p} {n}  ({what})" for (p, n), what in sorted(seen.items())]
    if len(listing) > _LISTED:
        listing = [*listing[:_LISTED], f"... and {len(listing) - _LISTED} more"]
    shown = "\n  ".join(listing)
    return f"{head} Metrics that exist ({len(seen)}), as path name:\n  {shown}"
