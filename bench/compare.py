"""Compare the benchmark ratios of two source trees, measured in one run.

Absolute times on this (shared, noisy) machine are only comparable within one
time window, and so are the target ratios: a ratio from yesterday's
``latest.json`` says little about today's.  So this runs ``python -m bench``
on both trees, *interleaved*: each round runs the "before" tree then the
"after" tree (the order alternates from round to round), every run with the
same interpreter, ``cwd`` and ``PYTHONPATH`` set to its tree, so that each tree
is measured with its own ``alamos`` and its own ``bench``.  It then reports,
for every target ratio and every case median, the median over the rounds of
each tree, the after/before change and the spread of the rounds.

Run from the repository root::

    python -m bench.compare --before /work/before --after . --rounds 3
    python -m bench.compare --before ../old --after . --quick --only 'recorded_span*'

It takes ``2 x rounds`` benchmark runs: about 1.5 minutes each for a full
run without the profile (10 minutes for 3 rounds), about 11 s with
``--quick``.  The results go to ``bench/results/compare.json`` and
``compare.md``.  Comparing a tree with itself shows the noise: the changes
should hover around 0% (within a few % for most ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TREES = ("before", "after")


@dataclass
class Series:
    """One ratio or case median: its value in every round, for each tree."""

    name: str
    unit: str = ""
    #: ``lower`` or ``higher`` when one direction is better, else ``""``.
    better: str = ""
    values: dict[str, list[float]] = field(default_factory=lambda: {t: [] for t in TREES})

    def median(self, tree: str) -> float | None:
        vals = self.values[tree]
        return statistics.median(vals) if vals else None

    def change(self) -> float | None:
        """after / before - 1, in percent."""
        before, after = self.median("before"), self.median("after")
        if before is None or after is None or before == 0:
            return None
        return (after / before - 1) * 100

    def to_json(self) -> dict[str, Any]:
        vals = self.values
        return {
            "name": self.name,
            "unit": self.unit,
            "better": self.better,
            "before": vals["before"],
            "after": vals["after"],
            "before_median": self.median("before"),
            "after_median": self.median("after"),
            "change_percent": self.change(),
            "before_spread": [min(vals["before"]), max(vals["before"])] if vals["before"] else None,
            "after_spread": [min(vals["after"]), max(vals["after"])] if vals["after"] else None,
        }


def ratio_name(target: dict[str, Any]) -> str:
    """``numerator / denominator`` (stabler across trees than the target id)."""
    if target.get("denominator"):
        return f"{target['numerator']} / {target['denominator']}"
    return str(target["numerator"])


def collect(series: dict[str, Series], data: dict[str, Any], tree: str, *, ratios: bool) -> None:
    """Add one run's target ratios (or case medians) to ``series``."""
    if ratios:
        units = {r["name"]: r.get("unit", "") for r in data.get("results", [])}
        for t in data.get("targets", []):
            if t.get("ratio") is None:
                continue
            name = ratio_name(t)
            unit = "x" if t.get("denominator") else units.get(t["numerator"], "")
            better = {"max": "lower", "min": "higher"}.get(t.get("kind", ""), "")
            s = series.setdefault(name, Series(name, unit=unit, better=better))
            s.values[tree].append(float(t["ratio"]))
    else:
        for r in data.get("results", []):
            if r.get("status") != "ok" or r.get("median") is None:
                continue
            better = "higher" if r.get("higher_is_better") else "lower"
            s = series.setdefault(
                r["name"], Series(r["name"], unit=r.get("unit", ""), better=better)
            )
            s.values[tree].append(float(r["median"]))


def subprocess_env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    return env


def check_tree(tree: Path) -> str:
    """Fail unless ``alamos`` and ``bench`` import from inside ``tree`` when run
    the way the benchmarks will be; return alamos.__file__."""
    code = "import alamos, bench; print(alamos.__file__); print(bench.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tree,
        env=subprocess_env(tree),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for path in out:
        if not Path(path).resolve().is_relative_to(tree):
            raise SystemExit(f"{path} is not inside {tree}: PYTHONPATH did not win")
    return out[0]


def git_head(tree: Path) -> str | None:
    """The tree's commit, with ``+dirty`` if it has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def run_bench(tree: Path, bench_args: Sequence[str], json_path: Path) -> dict[str, Any]:
    """One ``python -m bench`` run in ``tree``; its results JSON."""
    cmd = [sys.executable, "-m", "bench", "--json", str(json_path), *bench_args]
    proc = subprocess.run(
        cmd, cwd=tree, env=subprocess_env(tree), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0 or not json_path.exists():
        sys.stderr.write(proc.stderr[-3000:])
        if not json_path.exists():
            raise SystemExit(f"{' '.join(cmd)} failed in {tree} (exit {proc.returncode})")
        print(f"  warning: exit {proc.returncode} (some case failed), results kept")
    data: dict[str, Any] = json.loads(json_path.read_text(encoding="utf-8"))
    return data


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if unit == "x":
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"
    if abs(value) < 10:
        return f"{value:.2f}"
    return f"{value:,.0f}"


def spread(values: list[float], unit: str) -> str:
    return f"{fmt(min(values), unit)}-{fmt(max(values), unit)}" if values else "—"


def table_md(title: str, series: dict[str, Series]) -> list[str]:
    lines = [
        f"### {title}",
        "",
        "| name | unit | better | before | after | change | before min-max | after min-max |",
        "|---|---|---|--:|--:|--:|--:|--:|",
    ]
    for s in series.values():
        change = s.change()
        lines.append(
            f"| {s.name} | {s.unit} | {s.better} | {fmt(s.median('before'), s.unit)} "
            f"| {fmt(s.median('after'), s.unit)} "
            f"| {'—' if change is None else f'{change:+.1f}%'} "
            f"| {spread(s.values['before'], s.unit)} | {spread(s.values['after'], s.unit)} |"
        )
    return lines


def render_md(report: dict[str, Any], ratios: dict[str, Series], cases: dict[str, Series]) -> str:
    b, a = report["trees"]["before"], report["trees"]["after"]
    lines = [
        "# Benchmark comparison, before vs after (same run)",
        "",
        f"- before: `{b['path']}` ({b['commit']}), after: `{a['path']}` ({a['commit']})",
        f"- {report['rounds']} rounds, alternating which tree goes first; each run: "
        f"`python -m bench {' '.join(report['bench_args'])}`",
        f"- {report['generated']}, {report['elapsed_seconds']:.0f} s in all",
        "- before/after: median over the rounds; change: after / before - 1; "
        "min-max: over the rounds",
        "",
        *table_md("Target ratios", ratios),
        "",
        *table_md("Case medians", cases),
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.compare",
        description="Run the benchmarks of two source trees interleaved in one run and "
        "compare their ratios.",
    )
    p.add_argument("--before", type=Path, required=True, help="the baseline source tree")
    p.add_argument("--after", type=Path, required=True, help="the changed source tree")
    p.add_argument("--rounds", type=int, default=3, help="runs of each tree (default 3)")
    p.add_argument("--quick", action="store_true", help="pass --quick to each bench run")
    p.add_argument("--repeats", type=int, help="bench --repeats (default 15, quick 5)")
    p.add_argument("--seconds", type=float, help="bench --seconds (default: bench's)")
    p.add_argument("--only", action="append", metavar="NAME", help="bench --only (repeatable)")
    p.add_argument("--json", type=Path, default=RESULTS_DIR / "compare.json")
    p.add_argument("--md", type=Path, default=RESULTS_DIR / "compare.md")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    for label, tree in trees.items():
        if not (tree / "bench" / "__main__.py").is_file():
            raise SystemExit(f"--{label} {tree}: no bench/__main__.py there")

    bench_args = ["--no-docs", "--no-profile", "--no-table"]
    bench_args += ["--repeats", str(args.repeats or (5 if args.quick else 15))]
    if args.quick:
        bench_args.append("--quick")
    if args.seconds:
        bench_args += ["--seconds", str(args.seconds)]
    for only in args.only or []:
        bench_args += ["--only", only]

    info: dict[str, dict[str, Any]] = {}
    for label, tree in trees.items():
        info[label] = {"path": str(tree), "commit": git_head(tree), "alamos": check_tree(tree)}
        print(f"{label}: {tree} ({info[label]['commit']}), alamos from {info[label]['alamos']}")

    ratios: dict[str, Series] = {}
    cases: dict[str, Series] = {}
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        for rnd in range(args.rounds):
            order = TREES if rnd % 2 == 0 else TREES[::-1]
            for label in order:
                t0 = time.monotonic()
                data = run_bench(trees[label], bench_args, Path(tmp) / f"{rnd}-{label}.json")
                seconds = time.monotonic() - t0
                collect(ratios, data, label, ratios=True)
                collect(cases, data, label, ratios=False)
                load = (data.get("load_before"), data.get("load_after"))
                print(f"round {rnd + 1}/{args.rounds} {label}: {seconds:.0f} s, load {load}")
                runs.append({"round": rnd + 1, "tree": label, "seconds": round(seconds, 1)})

    report: dict[str, Any] = {
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": sys.executable,
        "trees": info,
        "rounds": args.rounds,
        "bench_args": bench_args,
        "elapsed_seconds": round(time.monotonic() - started, 1),
        "runs": runs,
        "ratios": [s.to_json() for s in ratios.values()],
        "cases": [s.to_json() for s in cases.values()],
    }
    markdown = render_md(report, ratios, cases)
    for path, text in (
        (args.json, json.dumps(report, indent=2, ensure_ascii=False) + "\n"),
        (args.md, markdown),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print()
    print(markdown)
    print(f"results: {args.json}, {args.md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
