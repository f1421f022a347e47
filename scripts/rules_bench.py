"""Worker cost of recording rules: ``RuleEngine.observe`` on batches of 512
span records (the collector's batch size), per rule and for the four rules
together.

    .venv/bin/python scripts/rules_bench.py [--spans 100000] [--rounds 5]

Not part of the test suite.  The rules run on the collector's worker, never
on an instrumented thread: this is the CPU the worker spends per span on top
of building and delivering its record (tens of µs), not a cost the
application's threads pay.  Prints the median of ``--rounds`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

from alamos.core.level import Level
from alamos.core.records import SpanRecord
from alamos.rules import Rule, RuleEngine, RuleSet

RULES = [
    Rule("requests", group_by=["name", "status"]),
    Rule("kv_seconds", aggregation="duration_histogram", buckets=[0.001, 0.01], name_glob="* /kv"),
    Rule("kv_busy_seconds", aggregation="duration_sum", name_regex="(GET|PUT) /kv"),
    Rule(
        "put_bytes",
        aggregation="sum(bytes)",
        group_by=["route=http.route"],
        attributes={"http.method": "PUT"},
        path="svc.api*",
    ),
]


def spans(n: int) -> list[SpanRecord]:
    names = ["GET /kv", "PUT /kv", "scan"]
    out = []
    for i in range(n):
        attributes = {
            "http.method": "PUT" if i % 3 == 1 else "GET",
            "http.route": f"/kv/{i % 8}",
            "bytes": i,
        }
        out.append(
            SpanRecord(
                f"{i + 1:032x}",
                f"{i + 1:016x}",
                None,
                "svc.api",
                names[i % 3],
                Level.PROD,
                i,
                i + 1_000_000,
                "ok",
                None,
                attributes,
                (),
                "svc",
                "n1",
            )
        )
    return out


def per_span_us(rules: list[Rule], batches: list[list[SpanRecord]], rounds: int) -> float:
    n = sum(len(b) for b in batches)
    times = []
    for _ in range(rounds):
        engine = RuleEngine(RuleSet(rules), path="svc")
        start = time.perf_counter()
        for batch in batches:
            engine.observe(batch)
        times.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    records = spans(args.spans)
    batches = [records[i : i + 512] for i in range(0, len(records), 512)]
    for rule in RULES:
        print(f"{rule.metric:16} {per_span_us([rule], batches, args.rounds):.2f} µs a span")
    print(f"{'all four':16} {per_span_us(RULES, batches, args.rounds):.2f} µs a span")


if __name__ == "__main__":
    main()
