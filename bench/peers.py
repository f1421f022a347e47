"""The peers, each set up in isolation so that the harness changes no global
state: OpenTelemetry on its own ``TracerProvider`` (not the global one),
loguru on its own core (not the global ``loguru.logger``), stdlib logging on
a dedicated non-propagating logger, prometheus_client on its own registry."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

__all__ = [
    "isolated_loguru",
    "otel_tracer",
    "prometheus_counter",
    "stdlib_logger",
]


def otel_tracer(*, quiet: bool, queue: int = 1_000_000) -> tuple[Any, Callable[[], None], Any]:
    """``(tracer, flush, provider)``: an OpenTelemetry SDK tracer with a
    BatchSpanProcessor and an exporter that discards every batch.

    ``quiet=True`` sizes the processor like alamos' quiet roots: the worker
    sleeps through the timed loop (no batch reaches the size that wakes it, and
    the schedule delay is an hour), and ``flush()`` exports between repeats, so
    both sides are measured on the instrumented thread only.  ``quiet=False``
    keeps the SDK's defaults (2048-span queue, batches of 512 every 5 s).
    Raises ImportError when opentelemetry-sdk is missing.
    """
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class DiscardSpanExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            return None

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return True

    provider = TracerProvider()
    if quiet:
        processor = BatchSpanProcessor(
            DiscardSpanExporter(),
            max_queue_size=queue,
            max_export_batch_size=queue,
            schedule_delay_millis=3_600_000,
        )
    else:
        processor = BatchSpanProcessor(DiscardSpanExporter())
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("alamos-bench")

    def flush() -> None:
        provider.force_flush()

    return tracer, flush, provider


def isolated_loguru(level: str = "DEBUG") -> tuple[Any, str, Callable[[], None]]:
    """``(logger, how, restore)``: a loguru logger whose only sink is a no-op
    function, at ``level``.

    The logger has its own core, built exactly as loguru builds its global
    ``logger`` (``loguru/__init__.py``), so the user's global logger and its
    handlers are untouched (``how == "isolated core"``).  That constructor is
    private; if it is not there, the fallback is the public way,
    ``logger.remove(); logger.add(lambda m: None)``, and ``restore()`` puts
    loguru's default stderr handler back (``how == "global logger"``).
    """
    try:
        from loguru._logger import Core, Logger

        logger = Logger(
            core=Core(),
            exception=None,
            depth=0,
            record=False,
            lazy=False,
            colors=False,
            raw=False,
            capture=True,
            patchers=[],
            extra={},
        )
        sink_id = logger.add(_noop_sink, level=level)

        def restore_isolated() -> None:
            logger.remove(sink_id)

        return logger, "isolated core", restore_isolated
    except Exception:
        from loguru import logger as global_logger

        global_logger.remove()
        sink_id = global_logger.add(_noop_sink, level=level)

        def restore_global() -> None:
            global_logger.remove(sink_id)
            if sys.stderr is not None:
                global_logger.add(sys.stderr)

        return global_logger, "global logger", restore_global


def _noop_sink(message: object) -> None:
    return None


def stdlib_logger(name: str = "alamos_bench.stdlib") -> logging.Logger:
    """A stdlib logger at INFO (so ``debug`` is filtered out), with a
    NullHandler and no propagation to the root logger."""
    log = logging.getLogger(name)
    log.setLevel(logging.INFO)
    log.propagate = False
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    return log


def prometheus_counter(name: str = "bench_ops") -> Any:
    """A prometheus_client Counter on its own registry."""
    from prometheus_client import CollectorRegistry, Counter

    return Counter(name, "Operations", registry=CollectorRegistry())
