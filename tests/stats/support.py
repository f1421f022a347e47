"""Spans with chosen times and the reference statistics computed from them."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

from alamos.core.level import Level
from alamos.core.records import SpanRecord

#: A minute boundary: windows of 60 s start here.
T0 = 1_700_000_040_000_000_000
MINUTE = 60_000_000_000


def span(
    i: int,
    start_ns: int,
    duration_ns: int,
    *,
    path: str = "svc.api",
    name: str = "write",
    status: str = "unset",
    level: Level = Level.PROD,
    attributes: dict[str, Any] | None = None,
) -> SpanRecord:
    return SpanRecord(
        trace_id=f"{i + 1:032x}",
        span_id=f"{i + 1:016x}",
        parent_id=None,
        path=path,
        name=name,
        level=level,
        start_ns=start_ns,
        end_ns=start_ns + duration_ns,
        status=status,
        error_text="E: x" if status == "error" else None,
        attributes=attributes or {},
        events=(),
        service="svc",
        node="n1",
    )


def workload(n: int, windows: int = 5, seed: int = 7) -> list[SpanRecord]:
    """``n`` spans over ``windows`` minutes from :data:`T0`: two names, two
    paths, every 7th an error, durations log-normal around 20 us, ``bytes``
    on most (ints) and ``ratio`` (floats) on some."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        start = T0 + rng.randrange(windows * MINUTE)
        attributes: dict[str, Any] = {}
        if i % 5:
            attributes["bytes"] = rng.randrange(0, 1 << 20)
        if i % 4 == 1 or i % 4 == 2:
            attributes["ratio"] = rng.random() * 100
        if i % 11 == 0:
            attributes["bytes"] = "not a number"  # ignored
        out.append(
            span(
                i,
                start,
                max(1, int(rng.lognormvariate(10, 1))),
                path="svc.api" if i % 3 else "svc.db",
                name="write" if i % 2 else "read",
                status="error" if i % 7 == 0 else "ok",
                attributes=attributes,
            )
        )
    return out


def reference(durations: Sequence[int]) -> dict[str, Any]:
    """count, sum, min, max exactly; mean and m2 exactly, then as floats."""
    n = len(durations)
    total = sum(durations)
    mean = Fraction(total, n)
    m2 = sum((Fraction(d) - mean) ** 2 for d in durations)
    return {
        "count": n,
        "sum": total,
        "min": min(durations),
        "max": max(durations),
        "mean": float(mean),
        "m2": float(m2),
    }


def attribute_reference(spans: Iterable[SpanRecord], name: str) -> dict[str, Any]:
    values = [
        s.attributes[name]
        for s in spans
        if type(s.attributes.get(name)) in (int, float) and math.isfinite(s.attributes[name])
    ]
    n = len(values)
    mean = Fraction(sum(Fraction(v) for v in values), n)
    m2 = sum((Fraction(v) - mean) ** 2 for v in values)
    return {
        "count": n,
        "sum": float(sum(Fraction(v) for v in values)),
        "mean": float(mean),
        "m2": float(m2),
        "min": min(values),
        "max": max(values),
    }


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-6)
