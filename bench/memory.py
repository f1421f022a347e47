"""Memory per queued span, measured with :mod:`tracemalloc`.

N spans with 3 attributes are recorded into a quiet root, so that every one
of them is still in the collector's queue when memory is read: the figure is
what one queued span holds (the span object, its attribute dict and values,
its share of the queue), after a full garbage collection.  OpenTelemetry is
measured the same way, its spans held in the BatchSpanProcessor's queue.

The bounded queue's ceiling is ``max_queue`` (the ``alamos.new`` default)
times the bytes per span: what a stalled exporter can cost at most.
"""

from __future__ import annotations

import gc
import inspect
import tracemalloc
from collections.abc import Callable

import alamos
from bench.context import BenchContext, collector_of, quiet_root
from bench.core import Case
from bench.peers import otel_tracer

__all__ = ["ceiling_case", "default_max_queue", "memory_cases"]


def default_max_queue() -> int:
    default = inspect.signature(alamos.new).parameters["max_queue"].default
    return int(default)


def _bytes_per(make: Callable[[int], None]) -> Callable[[int], float]:
    def measure(number: int) -> float:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            make(number)
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        return (after - before) / number

    return measure


def memory_cases(ctx: BenchContext) -> list[Case]:
    n = 3_000 if ctx.quick else 20_000
    root = quiet_root(ctx, "memory")
    exp = root.sub("api")
    collector = collector_of(root)

    def alamos_spans(number: int) -> None:
        trace = exp.trace
        for i in range(number):
            with trace.prod("write") as span:
                span.set("bytes", 1024 + i)
                span.set("table", "users")
                span.set("hit", True)
        if collector.queued < number:
            raise RuntimeError("spans left the queue during the measurement")

    def flush() -> None:
        root.flush(timeout=120)

    code = (
        'with exp.trace.prod("write") as span:\n'
        '    span.set("bytes", 1024 + i)\n'
        '    span.set("table", "users")\n'
        '    span.set("hit", True)'
    )
    cases = [
        Case(
            name="memory_span_3_attributes",
            title="memory per queued span with 3 attributes (tracemalloc)",
            group="memory",
            measure=_bytes_per(alamos_spans),
            unit="B/span",
            calibrate=False,
            number=n,
            after=flush,
            alone=True,
            code=code,
            note=f"{n} spans held in the collector's queue; net traced bytes after gc.",
        )
    ]
    try:
        tracer, otel_flush, _ = otel_tracer(quiet=True)
    except ImportError as exc:
        why = f"opentelemetry-sdk is not installed ({exc})"
        cases.append(
            Case("memory_otel_span_3_attributes", "OTel memory", "memory", unavailable=why)
        )
        return cases

    def otel_spans(number: int) -> None:
        for i in range(number):
            with tracer.start_as_current_span("write") as span:
                span.set_attribute("bytes", 1024 + i)
                span.set_attribute("table", "users")
                span.set_attribute("hit", True)

    cases.append(
        Case(
            name="memory_otel_span_3_attributes",
            title="OpenTelemetry memory per queued span with 3 attributes",
            group="memory",
            measure=_bytes_per(otel_spans),
            unit="B/span",
            calibrate=False,
            number=n,
            after=otel_flush,
            alone=True,
            code=code.replace("exp.trace.prod", "tracer.start_as_current_span").replace(
                "span.set(", "span.set_attribute("
            ),
            note=f"{n} spans held in the BatchSpanProcessor's queue.",
        )
    )
    return cases


def ceiling_case(memory: Case) -> Case:
    """The queue's ceiling, derived from the bytes per span."""
    max_queue = default_max_queue()
    return Case(
        name="memory_queue_ceiling",
        title=f"bounded queue ceiling: max_queue ({max_queue:,}) x bytes per span",
        group="memory",
        unit="MiB",
        calibrate=False,
        values=[v * max_queue / 2**20 for v in memory.values],
        derived_from=memory.name,
        code=f"alamos.new(..., max_queue={max_queue})  # the default",
        note="What a stalled exporter can hold in memory at most, for spans like these "
        "(beyond it, records are dropped and counted, the caller never blocks).",
        info={"max_queue": max_queue},
    )
