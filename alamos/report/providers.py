"""Component reports: ``exp.attach("config", provider)`` and ``root.report()``.

A provider is a callable returning a dict, or an object with a ``report()``
method.  Providers are user code and may be broken: one that raises gives
``{"error": "..."}`` for its key and never breaks the report.  Whatever a
provider returns is made JSON-serialisable (unknown objects become their
``repr``, non-finite floats become ``None``, keys become ``str``), so a
report can always be stored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from alamos.core.level import Level
from alamos.metrics.metric import Metric

__all__ = ["Provider", "ReportProvider", "call_provider", "jsonable", "metric_summary"]

_MAX_DEPTH = 32


@runtime_checkable
class ReportProvider(Protocol):
    def report(self) -> Mapping[str, Any]: ...


Provider = Callable[[], Mapping[str, Any]] | ReportProvider


def jsonable(value: Any, depth: int = 0, _seen: frozenset[int] = frozenset()) -> Any:
    """A JSON-serialisable copy of ``value``: plain ``str``, ``int``, ``bool``,
    finite ``float`` (others become ``None``), ``dict`` with ``str`` keys and
    ``list``; a level becomes its name, a cycle ``"<cycle>"``, nesting deeper
    than 32 ``"<too deep>"``, anything else its ``repr``."""
    t = type(value)
    if value is None or t is str or t is int or t is bool:
        return value
    if t is float:
        return value if math.isfinite(value) else None
    if isinstance(value, Level):
        return str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return jsonable(float.__float__(value))
    if isinstance(value, str):
        return str.__str__(value)
    if depth >= _MAX_DEPTH:
        return "<too deep>"
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        if id(value) in _seen:
            return "<cycle>"
        seen = _seen | {id(value)}
        if isinstance(value, Mapping):
            return {_key(k): jsonable(v, depth + 1, seen) for k, v in value.items()}
        return [jsonable(v, depth + 1, seen) for v in value]
    return _repr(value)


def _key(key: Any) -> str:
    if type(key) is str:
        return key
    if isinstance(key, Level):
        return str(key)
    if isinstance(key, str):
        return str.__str__(key)
    try:
        return str(key)
    except Exception:
        return _repr(key)


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def call_provider(provider: Any) -> dict[str, Any]:
    """Run one provider; never raises."""
    try:
        if isinstance(provider, ReportProvider):
            out = provider.report()
        elif callable(provider):
            out = provider()
        else:
            return {"error": f"provider {provider!r} is neither callable nor has .report()"}
        if not isinstance(out, Mapping):
            return {"error": f"provider returned {type(out).__name__}, expected a dict"}
        result = jsonable(out)
        assert isinstance(result, dict)
        return result
    except Exception as exc:
        try:
            text = str(exc)
        except Exception:
            text = "<unprintable exception>"
        return {"error": f"{type(exc).__name__}: {text}" if text else type(exc).__name__}


def metric_summary(metric: Metric) -> Any:
    """A metric's current value for a report: a number for an unlabelled
    counter or gauge, ``{"sum", "count"}`` for a histogram, and a list of
    ``{"labels", ...}`` entries when the metric has labels."""
    samples = metric.samples()

    def one(s: dict[str, Any]) -> Any:
        if metric.kind == "histogram":
            return {"sum": jsonable(s["sum"]), "count": jsonable(s["count"])}
        return jsonable(s["value"])

    if not metric.labelnames:
        return one(samples[0]) if samples else None
    return [{"labels": dict(s["labels"]), "value": one(s)} for s in samples]
