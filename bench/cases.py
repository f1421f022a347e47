"""The micro-benchmarks: ns per operation for alamos and its peers.

Each statement is written the way a user writes it (``exp.trace.prod("x")``
with ``exp`` a local, the peers' objects locals too), and compiled into a
timeit-style loop (:func:`bench.core.timed_loop`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from alamos.core.handoff import COMPACT_AT
from bench.context import NO_COMPACTION, BenchContext, collector_of, quiet_root
from bench.core import Case, ns_per_op, timed_loop
from bench.peers import isolated_loguru, otel_tracer, prometheus_counter, stdlib_logger

__all__ = ["micro", "micro_cases"]


class Trivial:
    """The baseline: a class whose ``with`` does nothing, shaped like the
    stdlib's own :class:`contextlib.nullcontext` (``__exit__(self, *exc)``)."""

    def __enter__(self) -> Trivial:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class Trivial3:
    """The same with ``__exit__(self, et, ev, tb)``: no tuple for the
    arguments, so a little cheaper (reported beside the baseline)."""

    def __enter__(self) -> Trivial3:
        return self

    def __exit__(self, et: object, ev: object, tb: object) -> None:
        return None


def micro(
    ctx: BenchContext,
    name: str,
    title: str,
    group: str,
    stmt: str,
    *,
    setup: str = "",
    env: dict[str, Any] | None = None,
    after: Callable[[], None] | None = None,
    note: str = "",
    max_number: int = 2_000_000,
) -> Case:
    """A case timing ``stmt`` in a compiled loop (see :func:`timed_loop`)."""
    loop = timed_loop(stmt, setup, env)
    return Case(
        name=name,
        title=title,
        group=group,
        measure=ns_per_op(loop, lambda: ctx.gc_in_loop),
        after=after,
        code=_code(stmt),
        note=note,
        max_number=max_number,
    )


def _code(stmt: str) -> str:
    lines = [line.rstrip() for line in stmt.strip().splitlines()]
    return "\n".join(lines)


def _unavailable(name: str, title: str, group: str, why: str) -> Case:
    return Case(name=name, title=title, group=group, unavailable=why)


def _flusher(root: Any, case: list[Case]) -> Callable[[], None]:
    """After each repeat: flush the root (outside the timing) and note
    how many records its collector dropped (must stay 0)."""
    collector = collector_of(root)

    def after() -> None:
        if not root.flush(timeout=120):
            raise RuntimeError(f"flush of {root!r} timed out")
        info = case[0].info
        info["dropped"] = collector.dropped
        info["queue_after_flush"] = collector.queued
        if collector.dropped:
            raise RuntimeError(f"the collector of {root!r} dropped {collector.dropped} records")

    return after


def _alamos_case(
    ctx: BenchContext,
    name: str,
    title: str,
    group: str,
    stmt: str,
    *,
    level: str = "prod",
    setup: str = "",
    extra_env: dict[str, Any] | None = None,
    note: str = "",
    compact_at: int = NO_COMPACTION,
) -> Case:
    """A micro case on its own quiet root (``exp = root.sub("api")``): the
    worker sleeps through the loop and drains the queue between repeats (see
    :func:`bench.context.quiet_root`), so only the instrumented thread is
    measured, and no other thread competes with it for the GIL or the caches."""
    root = quiet_root(ctx, name.replace("_", "-"), level=level, compact_at=compact_at)
    exp = root.sub("api")
    holder: list[Case] = []
    env = {"exp": exp, **(extra_env or {})}
    case = micro(
        ctx,
        name,
        title,
        group,
        stmt,
        setup=setup,
        env=env,
        after=_flusher(root, holder),
        note=note,
        # Every span of a repeat stays queued until the flush.
        max_number=1_000_000,
    )
    holder.append(case)
    return case


def micro_cases(ctx: BenchContext) -> list[Case]:
    cases: list[Case] = []
    add = cases.append

    # -- reference: what the hot paths are built from --------------------------
    cv: ContextVar[int] = ContextVar("bench_cv", default=0)
    add(micro(ctx, "empty_loop", "empty loop iteration (in every row)", "reference", "pass"))
    add(
        micro(
            ctx,
            "contextvar_set_reset",
            "ContextVar set + reset",
            "reference",
            "cv.reset(cv.set(1))",
            env={"cv": cv},
        )
    )
    add(
        micro(
            ctx,
            "time_ns",
            "time.time_ns()",
            "reference",
            "time_ns()",
            env={"time_ns": time.time_ns},
        )
    )
    add(
        micro(
            ctx,
            "getrandbits_64",
            "random.getrandbits(64)",
            "reference",
            "getrandbits(64)",
            env={"getrandbits": random.getrandbits},
        )
    )

    # -- the baseline -------------------------------------------------------------
    add(
        micro(
            ctx,
            "trivial_with",
            "trivial `with` on a class instance",
            "baseline",
            "with obj:\n    pass",
            env={"obj": Trivial()},
            note="The class has `__enter__(self)` returning self and `__exit__(self, *exc)` "
            "returning None, like `contextlib.nullcontext`.",
        )
    )
    add(
        micro(
            ctx,
            "trivial_with_3_args",
            "trivial `with`, `__exit__(self, et, ev, tb)`",
            "baseline",
            "with obj:\n    pass",
            env={"obj": Trivial3()},
            note="Not a baseline of any target: shows how much the baseline's exact shape "
            "matters (every ratio against `trivial_with` scales with it).",
        )
    )

    # -- spans --------------------------------------------------------------------
    add(
        _alamos_case(
            ctx,
            "filtered_span",
            "filtered-out span (debug span, prod threshold)",
            "span",
            'with exp.trace.debug("x"):\n    pass',
        )
    )
    add(
        _alamos_case(
            ctx,
            "recorded_span",
            "recorded span, enter + exit, queued for export",
            "span",
            'with exp.trace.prod("x"):\n    pass',
        )
    )
    add(
        _alamos_case(
            ctx,
            "nested_span_pair",
            "nested span pair (parent and child)",
            "span",
            'with exp.trace.prod("parent"):\n    with exp.trace.prod("child"):\n        pass',
        )
    )
    add(
        _alamos_case(
            ctx,
            "span_3_attributes",
            "span with 3 attributes (span.set x3)",
            "span",
            'with exp.trace.prod("x") as span:\n'
            '    span.set("bytes", 1024)\n'
            '    span.set("table", "users")\n'
            '    span.set("hit", True)',
        )
    )
    add(
        _alamos_case(
            ctx,
            "span_3_attributes_backlog",
            "span with 3 attributes, queued behind a backlog (compact form)",
            "span",
            'with exp.trace.prod("x") as span:\n'
            '    span.set("bytes", 1024)\n'
            '    span.set("table", "users")\n'
            '    span.set("hit", True)',
            compact_at=0,
            note="As span_3_attributes, with every span put as its compact form, as it is "
            "once COMPACT_AT (10,000) items are queued: the instrumented thread's cost "
            "behind a backlog (alamos.core.handoff, 'Compaction').",
        )
    )
    add(
        _alamos_case(
            ctx,
            "span_3_attributes_kwarg",
            "span with 3 attributes (attributes={...})",
            "span",
            'with exp.trace.prod("x", attributes={"bytes": 1024, "table": "users", "hit": True}):\n'
            "    pass",
        )
    )
    add(_e2e_case(ctx))
    add(_e2e_case(ctx, stats=False))
    try:
        tracer, flush, _ = otel_tracer(quiet=True)
        add(
            micro(
                ctx,
                "otel_span",
                "OpenTelemetry start_as_current_span, BatchSpanProcessor",
                "span",
                'with tracer.start_as_current_span("x"):\n    pass',
                env={"tracer": tracer},
                after=flush,
                note="The SDK's own TracerProvider and a BatchSpanProcessor exporting to a "
                "discarding exporter, sized like alamos' quiet roots: its worker sleeps "
                "through the loop and exports between repeats.",
                max_number=200_000,
            )
        )
        tracer_d, flush_d, _ = otel_tracer(quiet=False)
        add(
            micro(
                ctx,
                "otel_span_default_bsp",
                "OpenTelemetry span, BatchSpanProcessor defaults (worker live)",
                "span",
                'with tracer.start_as_current_span("x"):\n    pass',
                env={"tracer": tracer_d},
                after=flush_d,
                note="The SDK's defaults (2048-span queue, batches of 512): its worker "
                "exports while the loop runs.",
                max_number=200_000,
            )
        )
    except ImportError as exc:
        why = f"opentelemetry-sdk is not installed ({exc}): pip install '.[bench]'"
        add(_unavailable("otel_span", "OpenTelemetry span", "span", why))
        add(_unavailable("otel_span_default_bsp", "OpenTelemetry span (defaults)", "span", why))

    # -- logs -----------------------------------------------------------------------
    add(
        _alamos_case(
            ctx,
            "filtered_log",
            "filtered-out log call (debug, prod threshold)",
            "log",
            'exp.log.debug("opened {} files", 3)',
        )
    )
    add(
        micro(
            ctx,
            "stdlib_filtered_debug",
            "stdlib logging, filtered-out debug",
            "log",
            'log.debug("opened %d files", 3)',
            env={"log": stdlib_logger()},
        )
    )
    lg_filtered, how, restore = isolated_loguru(level="INFO")
    ctx.on_close(restore)
    add(
        micro(
            ctx,
            "loguru_filtered_debug",
            "loguru, filtered-out debug",
            "log",
            'logger.debug("opened {} files", 3)',
            env={"logger": lg_filtered},
            note=f"loguru logger: {how}, one no-op sink at INFO.",
        )
    )
    add(
        _alamos_case(
            ctx,
            "emitted_log",
            "emitted log into the pipeline (console off)",
            "log",
            'exp.log.info("opened {} files", 3)',
        )
    )
    lg, how, restore = isolated_loguru(level="DEBUG")
    ctx.on_close(restore)
    add(
        micro(
            ctx,
            "loguru_info_noop",
            "loguru info to a no-op sink",
            "log",
            'logger.info("opened {} files", 3)',
            env={"logger": lg},
            note=f"loguru logger: {how}, one sink: a function that does nothing.",
        )
    )

    # -- metrics -----------------------------------------------------------------------
    mroot = quiet_root(ctx, "metrics")
    mexp = mroot.sub("api")
    writes = mexp.metrics.counter("writes", "Writes accepted")
    debug_writes = mexp.metrics.counter("debug_writes", "Writes (debug)", level="debug")
    add(
        micro(
            ctx,
            "counter_inc",
            "counter increment (enabled)",
            "metric",
            "writes.inc()",
            env={"writes": writes},
        )
    )
    add(
        micro(
            ctx,
            "prometheus_counter_inc",
            "prometheus_client Counter.inc()",
            "metric",
            "counter.inc()",
            env={"counter": prometheus_counter()},
        )
    )
    add(
        micro(
            ctx,
            "filtered_metric",
            "filtered-out metric call (debug counter, prod threshold)",
            "metric",
            "writes.inc()",
            env={"writes": debug_writes},
        )
    )
    return cases


def _e2e_case(ctx: BenchContext, stats: bool = True) -> Case:
    """A recorded span with the collector's default batching (the worker drains
    while the loop runs) and a discarding exporter, flush included in the time:
    what a span costs the process, record building by the worker included.

    ``stats=False`` is the same with the live statistics switched off
    (``stats_interval=None``): the two in the same rounds give the statistics'
    share of the whole-process cost (target ``statistics_overhead``)."""
    root = quiet_root(
        ctx,
        "e2e" if stats else "e2e-nostats",
        batch_size=512,
        flush_interval=0.5,
        max_queue=100_000,
        compact_at=COMPACT_AT,  # the defaults, all of them
        stats_interval=60.0 if stats else None,  # 60.0: alamos.new's default
    )
    exp = root.sub("api")
    loop = timed_loop('with exp.trace.prod("x"):\n    pass', env={"exp": exp})
    collector = collector_of(root)
    suffix = "" if stats else "_nostats"
    without = "" if stats else ", statistics off"
    case = Case(
        name=f"recorded_span_e2e{suffix}",
        title="recorded span, end to end: CPU of every thread (worker and flush included)"
        + without,
        group="span",
        code='with exp.trace.prod("x"):\n    pass\n# ... then root.flush()',
        note="Default batching (512 / 0.5 s), worker running during the loop, discarding "
        "exporter; the process's CPU time (every thread: the loop, the collector's worker, "
        "the delivery thread) for the loop and the flush, divided by the spans"
        + (
            "; live statistics on (the default: 60 s windows)."
            if stats
            else "; stats_interval=None (no live statistics)."
        ),
        max_number=40_000,
    )

    def measure(number: int) -> float:
        t0 = time.process_time_ns()
        loop(number)
        if not root.flush(timeout=120):
            raise RuntimeError("flush timed out")
        elapsed = time.process_time_ns() - t0
        case.info["dropped"] = collector.dropped
        if collector.dropped:
            raise RuntimeError(f"the collector dropped {collector.dropped} records")
        return elapsed / number

    case.measure = measure
    return case


def scaling_cases(ctx: BenchContext) -> list[Case]:
    """Spans per second from 1 thread, then from 2 threads at once."""
    import threading

    per_thread = 20_000 if ctx.quick else 60_000
    cases = []
    for threads in (1, 2):
        root = quiet_root(ctx, f"scaling-{threads}")
        exp = root.sub("api")
        holder: list[Case] = []
        after = _flusher(root, holder)

        def produce(n: int, exp: Any = exp) -> None:
            for _ in range(n):
                with exp.trace.prod("x"):
                    pass

        def measure(number: int, threads: int = threads, produce: Any = produce) -> float:
            barrier = threading.Barrier(threads + 1)

            def worker() -> None:
                barrier.wait()
                produce(number)

            pool = [threading.Thread(target=worker) for _ in range(threads)]
            for t in pool:
                t.start()
            barrier.wait()
            t0 = time.perf_counter_ns()
            for t in pool:
                t.join()
            elapsed = time.perf_counter_ns() - t0
            return threads * number / (elapsed / 1e9)

        plural = "s" if threads > 1 else ""
        case = Case(
            name=f"spans_{threads}_thread{plural}",
            title=f"recorded spans per second, {threads} producing thread{plural}",
            group="scaling",
            measure=measure,
            unit="spans/s",
            higher_is_better=True,
            calibrate=False,
            number=per_thread,
            after=after,
            code=f"# {threads} thread(s), each:\nfor _ in range({per_thread}):\n"
            '    with exp.trace.prod("x"):\n        pass',
            note="Aggregate throughput of all threads (wall time from a barrier to the last join).",
        )
        holder.append(case)
        cases.append(case)
    return cases
