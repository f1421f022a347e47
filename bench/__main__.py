"""``python -m bench``: run the benchmarks, print the table, write the JSON and
render ``docs/performance.md``.  ``python -m bench --help`` for the options."""

from __future__ import annotations

import argparse
import fnmatch
import gc
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import RESULTS_DIR, core
from bench.core import Case, Config, evaluate, run, summarize
from bench.machine import load_average, machine_info, versions
from bench.targets import TARGETS

DOCS = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
README = Path(__file__).resolve().parent.parent / "README.md"
LATEST = RESULTS_DIR / "latest.json"
PARTIAL = RESULTS_DIR / "partial.json"

#: The suites, in run order, with the cases each one makes (so that --only
#: can skip building a suite whose cases are not wanted).
SUITES: list[tuple[str, tuple[str, ...]]] = [
    (
        "micro",
        (
            "empty_loop",
            "contextvar_set_reset",
            "time_ns",
            "getrandbits_64",
            "trivial_with",
            "trivial_with_3_args",
            "filtered_span",
            "recorded_span",
            "nested_span_pair",
            "span_3_attributes",
            "span_3_attributes_backlog",
            "span_3_attributes_kwarg",
            "recorded_span_e2e",
            "recorded_span_e2e_nostats",
            "otel_span",
            "otel_span_default_bsp",
            "filtered_log",
            "stdlib_filtered_debug",
            "loguru_filtered_debug",
            "emitted_log",
            "loguru_info_noop",
            "counter_inc",
            "prometheus_counter_inc",
            "filtered_metric",
        ),
    ),
    ("scaling", ("spans_1_thread", "spans_2_threads")),
    (
        "export",
        (
            "export_sqlite",
            "export_sqlite_3_attributes",
            "raw_sqlite_executemany",
            "raw_sqlite_one_transaction",
            "export_postgresql",
            "raw_postgresql_copy",
        ),
    ),
    ("memory", ("memory_span_3_attributes", "memory_otel_span_3_attributes")),
]

ALL_NAMES = [name for _, names in SUITES for name in names] + ["memory_queue_ceiling"]


def select(patterns: Sequence[str] | None) -> list[str]:
    """The case names to run: those matching a pattern (exact name or glob),
    plus the baselines of the targets whose row they are."""
    if not patterns:
        return list(ALL_NAMES)
    wanted: set[str] = set()
    for pattern in patterns:
        for part in pattern.split(","):
            part = part.strip()
            if part:
                wanted.update(n for n in ALL_NAMES if fnmatch.fnmatchcase(n, part))
    unknown = [
        p
        for pat in patterns
        for p in pat.split(",")
        if p.strip() and not any(fnmatch.fnmatchcase(n, p.strip()) for n in ALL_NAMES)
    ]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; --list shows the names")
    for t in TARGETS:
        if t.row in wanted or t.numerator in wanted:
            wanted.add(t.numerator)
            if t.denominator:
                wanted.add(t.denominator)
    if "memory_queue_ceiling" in wanted:
        wanted.add("memory_span_3_attributes")
    return [n for n in ALL_NAMES if n in wanted]


def _builders() -> dict[str, Callable[[Any], list[Case]]]:
    from bench.cases import micro_cases, scaling_cases
    from bench.export import export_cases
    from bench.memory import memory_cases

    return {
        "micro": micro_cases,
        "scaling": scaling_cases,
        "export": export_cases,
        "memory": memory_cases,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark alamos against its peers (issue 5). Prints a table, writes "
        "JSON and renders docs/performance.md from it.",
    )
    p.add_argument("--quick", action="store_true", help="fewer, shorter repeats (< 1 minute)")
    p.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only these cases (names or globs, comma-separated or repeated), plus the "
        "baselines of their targets",
    )
    p.add_argument("--list", action="store_true", help="list the case names and exit")
    p.add_argument("--repeats", type=int, help="rounds (default 15, quick 5)")
    p.add_argument(
        "--seconds", type=float, help="time per repeat of a case (default 0.12, quick 0.015)"
    )
    p.add_argument(
        "--json",
        type=Path,
        help="where to write the results (default bench/results/latest.json for a full run, "
        "bench/results/partial.json otherwise)",
    )
    p.add_argument(
        "--docs",
        type=Path,
        help="where to render the markdown (default docs/performance.md for a full run, "
        "bench/results/partial.md otherwise)",
    )
    p.add_argument("--no-docs", action="store_true", help="do not render the markdown")
    p.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="cProfile the hot paths into the results (default: on for a full run)",
    )
    p.add_argument("--gc", action="store_true", help="keep the GC on inside timed loops")
    p.add_argument(
        "--wall",
        action="store_true",
        help="time the micro-benchmarks with wall time instead of the thread's CPU time",
    )
    p.add_argument(
        "--render",
        nargs="?",
        const=LATEST,
        type=Path,
        metavar="JSON",
        help="only render the markdown from a results file (default latest.json)",
    )
    p.add_argument("--no-table", action="store_true", help="do not print the table")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.report import print_table, render_markdown, update_readme

    if args.list:
        for name in ALL_NAMES:
            print(name)
        return 0
    if args.render is not None:
        from bench.report import load

        data = load(args.render)
        docs = args.docs or DOCS
        docs.parent.mkdir(parents=True, exist_ok=True)
        docs.write_text(render_markdown(data), encoding="utf-8")
        print(f"rendered {docs}")
        if args.docs is None and update_readme(README, data):
            print(f"rendered the performance section of {README}")
        return 0

    names = select(args.only)
    full = not args.quick and not args.only
    config = Config(
        repeats=args.repeats or (5 if args.quick else 15),
        target_seconds=args.seconds or (0.015 if args.quick else 0.12),
        alone_repeats=3,
        quick=args.quick,
        gc_in_loop=args.gc,
    )
    if args.wall:
        core.use_wall_clock()
    profile = args.profile if args.profile is not None else full
    json_path = args.json or (LATEST if full else PARTIAL)
    docs_path = (
        None if args.no_docs else (args.docs or (DOCS if full else PARTIAL.with_suffix(".md")))
    )

    data = measure(names, config, profile=profile, argv=sys.argv[1:] if argv is None else argv)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if not args.no_table:
        print_table(data)
    print(f"results: {json_path}")
    if docs_path is not None:
        docs_path.parent.mkdir(parents=True, exist_ok=True)
        docs_path.write_text(render_markdown(data), encoding="utf-8")
        print(f"docs: {docs_path}")
        if full and args.docs is None and update_readme(README, data):
            print(f"readme: {README} (performance section)")
    errors = [r for r in data["results"] if r["status"] == "error"]
    for r in errors:
        print(f"error in {r['name']}: {r['reason']}", file=sys.stderr)
    return 1 if errors else 0


def measure(
    names: Sequence[str], config: Config, *, profile: bool, argv: Sequence[str]
) -> dict[str, Any]:
    """Build the selected cases, run them, and return the results as JSON data."""
    from bench.context import BenchContext
    from bench.memory import ceiling_case

    started = time.monotonic()
    load_before = load_average()
    ctx = BenchContext(quick=config.quick, gc_in_loop=config.gc_in_loop)
    ctx.isolate_env()
    wanted = set(names)
    cases: list[Case] = []
    profile_data: dict[str, Any] | None = None
    try:
        builders = _builders()
        for suite, suite_names in SUITES:
            if not wanted.intersection(suite_names):
                continue
            _progress(f"setting up {suite}")
            try:
                built = builders[suite](ctx)
            except Exception as exc:  # a suite that cannot start is reported, not fatal
                why = f"setup failed: {type(exc).__name__}: {exc}"
                built = [Case(n, n, suite, unavailable=why) for n in suite_names]
            cases.extend(c for c in built if c.name in wanted)
        run(cases, config, progress=_progress)
        by_name = {c.name: c for c in cases}
        memory = by_name.get("memory_span_3_attributes")
        if "memory_queue_ceiling" in wanted and memory is not None and memory.ok:
            ceiling = ceiling_case(memory)
            cases.append(ceiling)
            by_name[ceiling.name] = ceiling
        if profile:
            from bench.profile import profile_hot_paths

            _progress("profiling the hot paths")
            gc.collect()
            profile_data = profile_hot_paths(ctx, n=20_000 if config.quick else 100_000)
        results = evaluate(
            [t for t in TARGETS if t.row in by_name or t.numerator in by_name], by_name
        )
    finally:
        ctx.close()
    _progress("")
    order = {n: i for i, n in enumerate(ALL_NAMES)}
    cases.sort(key=lambda c: order.get(c.name, len(order)))
    return {
        "schema": 1,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if config.quick else "full",
        "argv": list(argv),
        "selected": list(names),
        "elapsed_seconds": round(time.monotonic() - started, 1),
        "load_before": load_before,
        "load_after": load_average(),
        "machine": machine_info(),
        "versions": versions(),
        "settings": {
            "repeats": config.repeats,
            "target_seconds": config.target_seconds,
            "alone_repeats": config.alone_repeats,
            "gc_in_loop": config.gc_in_loop,
            "clock": core.clock_name(),
            "ignored_env": sorted(ctx.ignored_env),
        },
        "results": [summarize(c) for c in cases],
        "targets": [_target_json(r) for r in results],
        "profile": profile_data,
    }


def _target_json(r: Any) -> dict[str, Any]:
    t = r.target
    return {
        "id": t.id,
        "operation": t.operation,
        "row": t.row,
        "numerator": t.numerator,
        "denominator": t.denominator,
        "kind": t.kind,
        "limit": t.limit,
        "text": t.text,
        "why": t.why,
        "source": t.source,
        "verdict": r.verdict,
        "ratio": r.ratio,
        "low": r.low,
        "high": r.high,
        "pairs": r.pairs,
        "margin": r.margin,
    }


def _progress(message: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\x1b[K{message}")
        sys.stderr.flush()
    elif message:
        sys.stderr.write(f"bench: {message}\n")


if __name__ == "__main__":
    raise SystemExit(main())
