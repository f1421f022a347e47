"""The targets of issue 5 (and the two of issue 2 it repeats or implies).

Each target compares a measured case with its baseline *in the same run*:
the ratio is the median of the per-round ratios (see :mod:`bench.core`).
"""

from __future__ import annotations

from bench.core import Target

__all__ = ["TARGETS"]

TARGETS: list[Target] = [
    Target(
        id="filtered_span",
        operation="filtered-out span (below the threshold)",
        row="filtered_span",
        numerator="filtered_span",
        denominator="trivial_with",
        kind="max",
        limit=2.0,
        text="≤ 2x trivial `with`",
        why="A span below the threshold must cost about what any `with` costs, so that "
        "debug and bench spans can stay in production code.",
    ),
    Target(
        id="recorded_span",
        operation="recorded span, enter + exit, queued for export",
        row="recorded_span",
        numerator="recorded_span",
        denominator="trivial_with",
        kind="max",
        limit=10.0,
        text="≤ 10x trivial `with`",
        why="Ids, timestamps, the current-span context variable and the hand-off to the "
        "collector's queue, all on the instrumented thread; the record is built later "
        "by the worker.",
    ),
    Target(
        id="recorded_span_vs_otel",
        operation="recorded span vs OpenTelemetry",
        row="otel_span",
        numerator="otel_span",
        denominator="recorded_span",
        kind="min",
        limit=15.0,
        text="alamos ≥ 15x faster",
        why="OpenTelemetry's `start_as_current_span` with a BatchSpanProcessor (discarding "
        "exporter, worker idle during the loop as alamos' is) divided by alamos' recorded "
        "span.",
    ),
    Target(
        id="nested_span_pair",
        operation="nested span pair (parent and child)",
        row="nested_span_pair",
        numerator="nested_span_pair",
        denominator="recorded_span",
        kind="max",
        limit=2.2,
        text="≤ 2.2x a recorded span",
        why="A child span costs no more than a root span (it inherits the trace id "
        "instead of drawing one).",
    ),
    Target(
        id="span_3_attributes",
        operation="span with 3 attributes",
        row="span_3_attributes",
        numerator="span_3_attributes",
        denominator="recorded_span",
        kind="max",
        limit=1.5,
        text="≤ 1.5x a recorded span",
        why="Three `span.set` calls (an int, a str, a bool) cost at most half a span.",
    ),
    Target(
        id="filtered_log",
        operation="filtered-out log call",
        row="filtered_log",
        numerator="filtered_log",
        denominator="stdlib_filtered_debug",
        kind="max",
        limit=1.0,
        text="≤ 1x stdlib filtered-out `debug`",
        why="The level is checked before anything else, as one attribute test.",
    ),
    Target(
        id="filtered_log_vs_loguru",
        operation="filtered-out log call vs loguru",
        row="loguru_filtered_debug",
        numerator="filtered_log",
        denominator="loguru_filtered_debug",
        kind="max",
        limit=1.0,
        text="≤ 1x loguru filtered-out `debug`",
        why="Issue 2: a filtered-out call must be cheaper than loguru's own.",
        source="issue 2",
    ),
    Target(
        id="emitted_log",
        operation="emitted log into the pipeline (console output off)",
        row="emitted_log",
        numerator="emitted_log",
        denominator="loguru_info_noop",
        kind="max",
        limit=0.5,
        text="≤ 0.5x loguru `info` to a no-op sink",
        why="loguru builds a large record per call (frame, datetime, process, thread...) "
        "and formats it for the sink; alamos queues a small tuple for the worker.",
    ),
    Target(
        id="counter_inc",
        operation="counter increment (enabled)",
        row="counter_inc",
        numerator="counter_inc",
        denominator="prometheus_counter_inc",
        kind="max",
        limit=1.1,
        text="≤ 1.1x prometheus_client `Counter.inc()`",
        why="An enabled alamos counter's `inc` is prometheus_client's own bound method, "
        "rebound when the filter changes.",
    ),
    Target(
        id="filtered_metric",
        operation="filtered-out metric call",
        row="filtered_metric",
        numerator="filtered_metric",
        denominator="trivial_with",
        kind="max",
        limit=2.0,
        text="≤ 2x trivial `with`",
        why="A filtered-out metric's methods are rebound to a no-op function.",
    ),
    Target(
        id="export_sqlite",
        operation="export throughput, `span.end()` to durable in SQLite",
        row="export_sqlite",
        numerator="export_sqlite",
        denominator="raw_sqlite_executemany",
        kind="min",
        limit=0.70,
        text="≥ 70% of raw `sqlite3.executemany`",
        why="Spans per second through the whole pipeline (span, queue, record, row, "
        "transaction) against the driver inserting the same rows with the same batching.",
    ),
    Target(
        id="export_postgresql",
        operation="export throughput, PostgreSQL",
        row="export_postgresql",
        numerator="export_postgresql",
        denominator="raw_postgresql_copy",
        kind="report",
        limit=None,
        text="reported (vs raw COPY)",
        why="Only when ALAMOS_BENCH_PG_URL names a server; no target.",
    ),
    Target(
        id="memory_per_span",
        operation="memory per queued span with 3 attributes (tracemalloc)",
        row="memory_span_3_attributes",
        numerator="memory_span_3_attributes",
        denominator=None,
        kind="max",
        limit=1024.0,
        text="≤ 1 KiB",
        why="What a queued span holds until the worker takes it; OpenTelemetry's is "
        "several KiB (otel-python #5272).",
    ),
    Target(
        id="memory_vs_otel",
        operation="memory per span, OpenTelemetry / alamos",
        row="memory_otel_span_3_attributes",
        numerator="memory_otel_span_3_attributes",
        denominator="memory_span_3_attributes",
        kind="report",
        limit=None,
        text="reported",
    ),
    Target(
        id="scaling",
        operation="scaling: 2 threads / 1 thread producing spans",
        row="spans_2_threads",
        numerator="spans_2_threads",
        denominator="spans_1_thread",
        kind="report",
        limit=None,
        text="reported",
        why="Aggregate spans per second; under the GIL, 2 threads do not add throughput, "
        "the figure shows they do not lose much either (no lock on the hot path).",
    ),
    Target(
        id="end_to_end",
        operation="recorded span end to end / queued only",
        row="recorded_span_e2e",
        numerator="recorded_span_e2e",
        denominator="recorded_span",
        kind="report",
        limit=None,
        text="reported",
        why="With the worker building records (and the exporter called) in the same "
        "process: the whole CPU cost of a span, not only the instrumented thread's.",
    ),
    Target(
        id="statistics_overhead",
        operation="live span statistics: recorded span end to end, statistics on / off",
        row="recorded_span_e2e",
        numerator="recorded_span_e2e",
        denominator="recorded_span_e2e_nostats",
        kind="max",
        limit=1.15,
        text="≤ 1.15x (at most 15% more)",
        why="The statistics run on the collector's worker (the instrumented thread does "
        "nothing more), batch by batch; the whole process may pay at most 15% more per span "
        "(issue 11).",
    ),
]
