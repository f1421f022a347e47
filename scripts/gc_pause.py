"""The garbage collector's pause with many spans queued in the hand-off (issue 10, 11(b)).

    .venv/bin/python scripts/gc_pause.py                    # 100,000 queued spans
    .venv/bin/python scripts/gc_pause.py --spans 20000 --repeats 5
    PYTHONPATH=/path/to/other/tree .venv/bin/python scripts/gc_pause.py  # that tree's alamos

Not part of the test suite (it times things).  One root writes to a SQLite
file in a temporary directory, with its worker asleep (``flush_interval`` of
an hour and a ``batch_size`` larger than the queue, so nothing wakes it), so
every span made stays queued, as it does when the worker is behind (a slow
exporter).  The spans are requests of two spans each (a parent with three
attributes, a child with one); one child in a hundred records an error (an
event with its stack trace).

It prints, in milliseconds, wall time and this thread's CPU time (on a
shared machine the wall time includes waiting for a core; the CPU time is
the collector's own work):

* ``empty``: ``gc.collect(2)`` before any span was made (the floor: the
  interpreter, alamos, SQLAlchemy), ``--repeats`` times;
* ``queued``: ``gc.collect(2)`` with every span queued, ``--repeats`` times;
* ``automatic``: the longest collection the interpreter ran by itself while
  the spans were made (from ``gc.callbacks``), and how many of them were
  full (generation 2) collections.

Run it on two trees (``git archive`` one into a temporary directory) to
compare them; the machine's load moves the figures, so compare medians of
runs made one after the other.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _queue_spans(root: Any, n: int) -> None:
    for i in range(n // 2):
        with root.trace.prod("GET /items") as request:
            request.set("http.status", 200)
            request.set("item", i)
            request.set("cached", False)
            with root.trace.prod("sql.query") as query:
                query.set("rows", i % 17)
                if i % 100 == 0:
                    query.error(ValueError(f"row {i} is locked"))


def _ms(samples: list[float]) -> dict[str, float]:
    return {
        "min": round(min(samples) * 1e3, 2),
        "median": round(statistics.median(samples) * 1e3, 2),
        "max": round(max(samples) * 1e3, 2),
    }


def _collect_times(repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (this thread's) seconds of ``repeats`` full collections."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.thread_time()
        gc.collect(2)
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--spans", type=int, default=100_000, help="spans to queue (even)")
    parser.add_argument("--repeats", type=int, default=7, help="timed gc.collect(2) calls")
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    args = parser.parse_args(argv)

    import alamos

    with tempfile.TemporaryDirectory() as tmp:
        root = alamos.new(
            "gcpause",
            db=f"sqlite:///{Path(tmp) / 'alamos.db'}",
            console=False,
            flush_interval=3600.0,
            batch_size=args.spans * 2,
            max_queue=args.spans * 2,
            max_queue_bytes=args.spans * 4096,
            spool_dir=Path(tmp) / "spool",
        )
        gc.collect()
        empty, empty_cpu = _collect_times(args.repeats)

        automatic: list[tuple[int, float]] = []
        started: list[float] = []

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started.append(time.perf_counter())
            elif started:
                automatic.append((info["generation"], time.perf_counter() - started.pop()))

        gc.callbacks.append(on_gc)
        try:
            _queue_spans(root, args.spans)
        finally:
            gc.callbacks.remove(on_gc)
        queued_now = root.stats().queued
        queued, queued_cpu = _collect_times(args.repeats)
        result: dict[str, Any] = {
            "python": sys.version.split()[0],
            "spans_queued": queued_now,
            "empty_ms": _ms(empty),
            "empty_cpu_ms": _ms(empty_cpu),
            "queued_ms": _ms(queued),
            "queued_cpu_ms": _ms(queued_cpu),
            "automatic_longest_ms": round(max((t for _, t in automatic), default=0.0) * 1e3, 2),
            "automatic_full_collections": sum(1 for g, _ in automatic if g == 2),
        }
        root.close(timeout=120)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"Python {result['python']}, {queued_now:,} spans queued")
    for name in ("empty", "queued"):
        for clock in ("", "_cpu"):
            ms = result[f"{name}{clock}_ms"]
            print(
                f"  gc.collect(2), {name:>6}, {'cpu' if clock else 'wall'}: min {ms['min']:.2f}  "
                f"median {ms['median']:.2f}  max {ms['max']:.2f} ms ({args.repeats} runs)"
            )
    print(
        f"  automatic collections while queueing: longest {result['automatic_longest_ms']:.2f} ms, "
        f"{result['automatic_full_collections']} full"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
