"""The console table (rich) and ``docs/performance.md``, both from the results
JSON written by ``python -m bench``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["FINDINGS", "load", "print_table", "render_markdown", "table_rows"]

#: Hand-written notes on the profiles, included in the docs as they are.
FINDINGS = Path(__file__).resolve().parent / "findings.md"

_VERDICT_STYLE = {"PASS": "bold green", "FAIL": "bold red", "REPORTED": "cyan"}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "MiB":
        return f"{value:,.1f}"
    if abs(value) >= 100 or unit in ("spans/s", "rows/s"):
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 10:
        return f"{value:,.1f}x"
    return f"{value:.2f}x"


def table_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per result, then one continuation row per extra target on it.

    Keys: ``name, title, group, median, min, max, unit, status, ratio, range,
    target, verdict, margin`` (strings ready to print, except ``verdict``).
    """
    by_row: dict[str, list[dict[str, Any]]] = {}
    for t in data.get("targets", []):
        by_row.setdefault(t["row"], []).append(t)
    out: list[dict[str, Any]] = []
    for r in data.get("results", []):
        base = {
            "name": r["name"],
            "title": r["title"],
            "group": r["group"],
            "unit": r["unit"],
            "status": r["status"],
            "median": fmt_value(r["median"], r["unit"]),
            "min": fmt_value(r["min"], r["unit"]),
            "max": fmt_value(r["max"], r["unit"]),
            "ratio": "",
            "range": "",
            "target": "",
            "verdict": "",
            "margin": "",
        }
        if r["status"] != "ok":
            base["median"] = r["status"]
            base["unit"] = ""
            base["margin"] = r.get("reason", "")
        targets = by_row.get(r["name"], [])
        if not targets:
            out.append(base)
            continue
        for i, t in enumerate(targets):
            row = base if i == 0 else {k: "" for k in base} | {"name": r["name"]}
            if i:
                row["title"] = f"  ↳ {t['operation']}"
            row["target"] = t["text"]
            row["verdict"] = t["verdict"]
            if t["denominator"] and t["ratio"] is not None:
                row["ratio"] = f"{fmt_ratio(t['ratio'])} {_vs(t)}"
                row["range"] = f"{fmt_ratio(t['low'])}-{fmt_ratio(t['high'])}"
            if t["verdict"] in ("FAIL", "UNAVAILABLE") or not row["margin"]:
                row["margin"] = t.get("margin", "")
            out.append(row)
    return out


def _vs(target: dict[str, Any]) -> str:
    """What the ratio is against, in a few words."""
    if target["row"] == target["numerator"]:
        return f"vs {target['denominator']}"
    return f"= {target['numerator']} / {target['denominator']}"


def print_table(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    # Not a terminal (CI logs, a pipe): wide enough that no column folds.
    console = Console(width=None if sys.stdout.isatty() else 190)
    table = Table(
        title=f"alamos benchmarks ({data['mode']} run, {data['settings']['repeats']} rounds)",
        show_lines=False,
    )
    table.add_column("case", overflow="fold")
    table.add_column("median", justify="right")
    table.add_column("min", justify="right")
    table.add_column("max", justify="right")
    table.add_column("unit")
    table.add_column("ratio (median of rounds)")
    table.add_column("ratio min-max", no_wrap=True)
    table.add_column("target", overflow="fold")
    table.add_column("result")
    group = None
    for row in table_rows(data):
        if row["group"] and row["group"] != group:
            if group is not None:
                table.add_section()
            group = row["group"]
        verdict = row["verdict"]
        style = _VERDICT_STYLE.get(verdict, "")
        shown = verdict
        if verdict == "FAIL" and row["margin"]:
            shown = f"FAIL ({row['margin']})"
        name = row["name"] if not row["title"].startswith("  ↳") else "  ↳"
        table.add_row(
            name,
            row["median"],
            row["min"],
            row["max"],
            row["unit"],
            row["ratio"],
            row["range"],
            row["target"],
            f"[{style}]{shown}[/]" if style else shown,
        )
    console.print(table)
    m = data["machine"]
    console.print(
        f"{m['cpu_model']}, {m['cores']} cores, Python {m['python']}; "
        f"load {data.get('load_before')} -> {data.get('load_after')}; "
        f"{data['elapsed_seconds']:.0f} s"
    )
    counts: dict[str, int] = {}
    for t in data.get("targets", []):
        counts[t["verdict"]] = counts.get(t["verdict"], 0) + 1
    console.print("targets: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))


# ---------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _machine_md(data: dict[str, Any]) -> list[str]:
    m = data["machine"]
    mem = m.get("memory_bytes")
    lines = [
        "| | |",
        "|---|---|",
        f"| CPU | {m['cpu_model']}{' (virtualized)' if m.get('virtualized') else ''} |",
        f"| cores | {m['cores']} ({m.get('usable_cores')} usable by the process) |",
    ]
    if mem:
        lines.append(f"| memory | {mem / 2**30:.1f} GiB |")
    lines += [
        f"| Python | {m['python']} ({m['python_implementation']}) |",
        f"| platform | {m['platform']} |",
        f"| load average (1, 5, 15 min) | before {data.get('load_before')}, "
        f"after {data.get('load_after')} |",
        f"| date | {data['generated']} |",
        f"| run | {data['mode']}: {data['settings']['repeats']} rounds, about "
        f"{data['settings']['target_seconds']} s per repeat, "
        f"{data['elapsed_seconds']:.0f} s in all |",
    ]
    versions = data.get("versions", {})
    shown = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    lines.append(f"| versions | {shown} |")
    return lines


def _results_md(data: dict[str, Any]) -> list[str]:
    lines = [
        "| operation | median | min | max | unit | ratio (median of rounds) | "
        "ratio range | target | result |",
        "|---|--:|--:|--:|---|---|---|---|---|",
    ]
    group = None
    for row in table_rows(data):
        if row["group"] and row["group"] != group:
            group = row["group"]
            lines.append(f"| **{group}** | | | | | | | | |")
        verdict = row["verdict"]
        if verdict == "PASS":
            verdict = "✅ PASS"
        elif verdict == "FAIL":
            verdict = f"❌ FAIL ({row['margin']})" if row["margin"] else "❌ FAIL"
        elif verdict == "REPORTED":
            verdict = "reported"
        elif verdict == "UNAVAILABLE":
            verdict = "n/a"
        title = row["title"]
        if row["name"] and not title.startswith("  ↳"):
            title = f"{title} (`{row['name']}`)"
        lines.append(
            "| "
            + " | ".join(
                _md(x)
                for x in (
                    title,
                    row["median"],
                    row["min"],
                    row["max"],
                    row["unit"],
                    row["ratio"],
                    row["range"],
                    row["target"],
                    verdict,
                )
            )
            + " |"
        )
    return lines


def _targets_md(data: dict[str, Any]) -> list[str]:
    units = {r["name"]: r["unit"] for r in data.get("results", [])}
    lines = []
    for t in data.get("targets", []):
        ratio = t["ratio"]
        if ratio is None:
            got = f"not measured ({t.get('margin') or 'unavailable'})"
        elif t["denominator"]:
            got = (
                f"{fmt_ratio(ratio)} `{t['numerator']}` / `{t['denominator']}` "
                f"(rounds: {fmt_ratio(t['low'])}-{fmt_ratio(t['high'])})"
            )
        else:
            unit = units.get(t["numerator"], "")
            got = f"{ratio:,.0f} {unit} (repeats: {t['low']:,.0f}-{t['high']:,.0f})"
        verdict = t["verdict"] if t["verdict"] != "REPORTED" else "reported"
        margin = f", {t['margin']}" if t.get("margin") and t["ratio"] is not None else ""
        why = f" {t['why']}" if t.get("why") else ""
        lines.append(
            f"- **{t['operation']}**: {t['text']} ({t['source']}).{why} "
            f"Result: **{verdict}**, {got}{margin}."
        )
    return lines


def _missed_md(data: dict[str, Any]) -> list[str]:
    missed = [t for t in data.get("targets", []) if t["verdict"] == "FAIL"]
    if not missed:
        return ["Every target with a threshold was met in this run."]
    lines = ["Targets missed in this run (see the profiler notes below for why):", ""]
    for t in missed:
        lines.append(
            f"- **{t['operation']}**: {fmt_ratio(t['ratio'])} against {t['text']}: {t['margin']}."
        )
    return lines


def _cases_md(data: dict[str, Any]) -> list[str]:
    lines = []
    for r in data.get("results", []):
        if not r.get("code"):
            continue
        lines.append(f"**`{r['name']}`**: {r['title']}.")
        if r.get("note"):
            lines.append(f"{r['note']}")
        info = {k: v for k, v in (r.get("info") or {}).items() if v is not None}
        if info:
            lines.append("Observed: " + ", ".join(f"{k} = {v}" for k, v in info.items()) + ".")
        lines += ["", "```python", r["code"], "```", ""]
    return lines


def _profile_md(data: dict[str, Any]) -> list[str]:
    profile = data.get("profile")
    if not profile:
        return ["(No profile in this run: `python -m bench --profile` adds one.)"]
    lines = [
        "cProfile of each hot path: the functions one operation calls and their share of "
        "its time under the profiler (cProfile's own overhead inflates each call, so the "
        "shares are indicative and the calls per operation exact).",
        "",
    ]
    for name, p in profile.items():
        lines += [
            f"**{p['title']}** (`{name}`, {p['calls_per_op']} profiled calls per operation):",
            "",
            "| function | calls/op | share of time |",
            "|---|--:|--:|",
        ]
        for f in p["functions"]:
            name = f["function"].replace("`", "")
            if "time.thread_time_ns" in name or "time.perf_counter_ns" in name:
                continue  # the loop's clock, once per run
            calls = f"{f['calls_per_op']:g}" if f["calls_per_op"] >= 0.01 else "-"
            lines.append(f"| `{_md(name)}` | {calls} | {f['share']:.0%} |")
        lines.append("")
    return lines


def render_markdown(data: dict[str, Any]) -> str:
    lines = [
        "# Performance",
        "",
        "<!-- Generated by `python -m bench` from bench/results/latest.json; edit "
        "bench/report.py or bench/findings.md instead. -->",
        "",
        "alamos is measured side by side with what a user would otherwise pick, in the same "
        "process and the same run: a trivial `with`, OpenTelemetry's SDK, loguru, the stdlib "
        "`logging` module, prometheus_client and raw `sqlite3`. Absolute times on shared "
        "machines are noise; ratios taken in the same run are not, so every target is a ratio "
        "against a baseline measured alongside.",
        "",
        "From the repository root (`bench/` is not installed with the package):",
        "",
        "```sh",
        "pip install -e '.[bench]'         # opentelemetry-sdk and pyinstrument",
        "python -m bench                   # full run: bench/results/latest.json and this page",
        "python -m bench --quick           # under a minute (CI: the harness only, no thresholds)",
        "python -m bench --only 'export*'  # a subset (with the baselines its targets need)",
        "ALAMOS_BENCH_PG_URL=postgresql://user@host/db python -m bench   # adds PostgreSQL",
        "```",
        "",
        "## Results",
        "",
        *_results_md(data),
        "",
        "Times are ns per operation (median, min and max over the rounds); a ratio is the "
        "median of the per-round ratios of the operation to its baseline, with their range.",
        "",
        "## The machine",
        "",
        *_machine_md(data),
        "",
        "## The targets",
        "",
        *_targets_md(data),
        "",
        *_missed_md(data),
        "",
        "## How it is measured",
        "",
        "- Every operation is compiled into a loop the way `timeit` does it, and written the "
        'way a user writes it (`exp.trace.prod("x")` with `exp` a local variable). The loop '
        "costs the same in every row (`empty_loop`); it is not subtracted, as in `timeit`.",
        "- Each case is calibrated so that one repeat takes about "
        f"{data['settings']['target_seconds']} s, then all cases run in rounds, each round in "
        "an order rotated by one, so that a burst of noise hits a subject and its baseline "
        "alike. A ratio is the median of the per-round ratios.",
        "- The garbage collector is "
        + ("on" if data["settings"].get("gc_in_loop") else "off")
        + " inside timed loops (as in `timeit`), and collected between repeats.",
        "- Micro-benchmarks are timed with "
        + (
            "the thread's CPU time (`time.thread_time_ns`): time the scheduler gives to other "
            "processes on a busy machine is not counted, nor is the work of other threads "
            "(the collector's worker). Throughput and scaling rows use wall time; "
            "`recorded_span_e2e` uses the CPU time of the whole process."
            if "CPU" in str(data["settings"].get("clock", "CPU"))
            else "wall time (`--wall`)."
        ),
        "- Recorded spans go into a real collector queue: each root has a background exporter "
        "that discards the batches and a `max_queue` larger than any repeat; its worker "
        "sleeps through the timed loop (no batch size or interval is reached) and "
        "`root.flush()` drains the queue between repeats, outside the timing. So a row is "
        "the instrumented thread's own cost, with no other thread competing for the GIL or "
        "the caches; it includes holding the repeat's spans in memory. The collector's "
        "`dropped` count is checked after every repeat and must stay 0 (shown below). "
        "OpenTelemetry's BatchSpanProcessor is sized the same way (its defaults, with the "
        "worker exporting during the loop, are `otel_span_default_bsp`). "
        "`recorded_span_e2e` is the other view: the collector's default batching, the "
        "worker draining during the loop, and the CPU time of every thread for the loop "
        "plus the flush, per span.",
        "- The peers are isolated: OpenTelemetry on its own `TracerProvider`, loguru on its "
        "own core with one no-op sink (the global `loguru.logger` and its handlers are left "
        "alone), stdlib logging on a non-propagating logger, prometheus_client on its own "
        "registry. `ALAMOS_*` environment variables are ignored during the run.",
        "- Export throughput: a fresh database per repeat, `db=` on `alamos.new` with the "
        "default batching, N spans then `root.flush()` inside the timing; every span is "
        "then counted in the table, and nothing may have gone to the spool. The raw "
        "baseline writes the very rows alamos stored into the same schema.",
        "",
        "<details><summary>What each case runs</summary>",
        "",
        *_cases_md(data),
        "</details>",
        "",
        "## What the profiler shows",
        "",
    ]
    if FINDINGS.exists():
        lines += [FINDINGS.read_text(encoding="utf-8").strip(), ""]
    lines += _profile_md(data)
    return "\n".join(lines).rstrip() + "\n"


README_START = (
    "<!-- bench:start (generated by `python -m bench` from bench/results/latest.json) -->"
)
README_END = "<!-- bench:end -->"


def render_readme_section(data: dict[str, Any]) -> str:
    """The README's performance section: the table, the machine, the targets.

    The full page (profiles, notes) is docs/performance.md."""
    return "\n".join(
        [
            README_START,
            "",
            *_results_md(data),
            "",
            "Machine and run:",
            "",
            *_machine_md(data),
            "",
            "Targets (issue 5; every ratio is taken in the same run):",
            "",
            *_targets_md(data),
            "",
            README_END,
        ]
    )


def update_readme(readme: Path, data: dict[str, Any]) -> bool:
    """Replace the text between the README's bench markers; False if the
    markers are missing (the README is then left alone)."""
    text = readme.read_text(encoding="utf-8")
    start = text.find("<!-- bench:start")
    end = text.find(README_END)
    if start < 0 or end < start:
        return False
    new = text[:start] + render_readme_section(data) + text[end + len(README_END) :]
    readme.write_text(new, encoding="utf-8")
    return True
