"""The benchmark harness (``python -m bench``) works: it runs, writes JSON of
the documented shape and renders the docs from it.

These tests never assert a timing or a threshold: CI machines are noisy, and
the thresholds are for full runs on a quiet machine (docs/performance.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # `bench` is a top-level package of the repository

from bench.__main__ import ALL_NAMES, select  # noqa: E402
from bench.core import Case, Target, evaluate, summarize, timed_loop  # noqa: E402
from bench.report import render_markdown, table_rows  # noqa: E402

RESULT_KEYS = {
    "name",
    "title",
    "group",
    "unit",
    "status",
    "median",
    "min",
    "max",
    "repeats",
    "values",
}
VERDICTS = {"PASS", "FAIL", "REPORTED", "UNAVAILABLE"}


def _run_bench(
    tmp_path: Path, *args: str
) -> tuple[dict[str, Any], str, subprocess.CompletedProcess[str]]:
    out_json = tmp_path / "results.json"
    out_md = tmp_path / "performance.md"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--repeats",
            "2",
            "--seconds",
            "0.002",
            "--json",
            str(out_json),
            "--docs",
            str(out_md),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    md = out_md.read_text() if out_md.exists() else ""
    return json.loads(out_json.read_text()), md, proc


def test_quick_run_writes_json_and_docs(tmp_path: Path) -> None:
    data, md, proc = _run_bench(tmp_path, "--only", "filtered_span")
    assert data["schema"] == 1
    assert data["mode"] == "quick"
    machine = data["machine"]
    for key in ("cpu_model", "cores", "python", "platform"):
        assert machine[key], key
    assert data["settings"]["repeats"] == 2
    names = [r["name"] for r in data["results"]]
    # The subject and the baseline its target needs.
    assert names == ["trivial_with", "filtered_span"]
    for r in data["results"]:
        assert set(r) >= RESULT_KEYS, r
        assert r["status"] == "ok"
        assert r["unit"] == "ns/op"
        assert len(r["values"]) == r["repeats"] == 2
        assert r["min"] <= r["median"] <= r["max"]
    (target,) = data["targets"]
    assert target["id"] == "filtered_span"
    assert target["verdict"] in VERDICTS
    assert target["numerator"] == "filtered_span"
    assert target["denominator"] == "trivial_with"
    assert target["pairs"] == 2
    assert target["low"] <= target["ratio"] <= target["high"]
    # The docs are rendered from the JSON.
    assert md.startswith("# Performance")
    for heading in ("## Results", "## The machine", "## The targets", "## What the profiler shows"):
        assert heading in md
    assert "`filtered_span`" in md
    assert machine["cpu_model"] in md
    # The table was printed.
    assert "filtered_span" in proc.stdout


def test_render_only_from_json(tmp_path: Path) -> None:
    data, md, _ = _run_bench(tmp_path, "--only", "trivial_with", "--no-docs", "--no-table")
    assert md == ""
    assert [r["name"] for r in data["results"]] == ["trivial_with"]
    assert data["targets"] == []
    out = tmp_path / "rendered.md"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--render",
            str(tmp_path / "results.json"),
            "--docs",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "trivial `with`" in out.read_text()


def test_list_names() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    listed = proc.stdout.split()
    assert "recorded_span" in listed
    assert "export_sqlite" in listed
    assert listed == ALL_NAMES


def test_select_adds_the_baselines() -> None:
    assert select(["recorded_span"]) == ["trivial_with", "recorded_span"]
    chosen = select(["otel_span"])
    assert "recorded_span" in chosen and "otel_span" in chosen
    assert set(select(["export_sqlite"])) >= {"export_sqlite", "raw_sqlite_executemany"}
    assert select(None) == ALL_NAMES
    with pytest.raises(SystemExit):
        select(["no_such_case"])


def test_timed_loop_runs_the_statement() -> None:
    calls: list[int] = []
    loop = timed_loop("append(1)", env={"append": calls.append})
    elapsed = loop(5)
    assert calls == [1] * 5
    assert elapsed >= 0


def _case(name: str, values: list[float], **kw: Any) -> Case:
    return Case(name=name, title=name, group="g", values=values, **kw)


def test_evaluate_pairs_rounds_and_verdicts() -> None:
    cases = {
        "base": _case("base", [100.0, 200.0, 100.0]),
        "fast": _case("fast", [150.0, 300.0, 150.0]),
        "slow": _case("slow", [300.0, 600.0, 300.0]),
        "mem": _case("mem", [500.0, 510.0, 505.0]),
        "missing": Case(name="missing", title="m", group="g", unavailable="no peer"),
    }
    targets = [
        Target("a", "a", "fast", "fast", "base", "max", 2.0, "≤ 2x"),
        Target("b", "b", "slow", "slow", "base", "max", 2.0, "≤ 2x"),
        Target("c", "c", "slow", "slow", "base", "min", 2.5, "≥ 2.5x"),
        Target("d", "d", "mem", "mem", None, "max", 1024.0, "≤ 1 KiB"),
        Target("e", "e", "fast", "fast", "base", "report", None, "reported"),
        Target("f", "f", "missing", "missing", "base", "max", 1.0, "≤ 1x"),
    ]
    res = {r.target.id: r for r in evaluate(targets, cases)}
    assert res["a"].verdict == "PASS" and res["a"].ratio == pytest.approx(1.5)
    assert res["b"].verdict == "FAIL" and "over the limit" in res["b"].margin
    assert res["c"].verdict == "PASS"
    assert res["d"].verdict == "PASS" and res["d"].ratio == 505.0
    assert res["e"].verdict == "REPORTED"
    assert res["f"].verdict == "UNAVAILABLE" and "no peer" in res["f"].margin


def test_render_handles_every_status() -> None:
    ok = summarize(_case("trivial_with", [190.0, 200.0]))
    bad = summarize(
        Case(name="export_postgresql", title="pg", group="export", unavailable="no url")
    )
    failed = summarize(Case(name="x", title="x", group="span", error="boom"))
    data = {
        "mode": "quick",
        "generated": "2026-01-01 00:00 UTC",
        "elapsed_seconds": 1.0,
        "load_before": [0.1, 0.1, 0.1],
        "load_after": [0.1, 0.1, 0.1],
        "machine": {
            "cpu_model": "Test CPU",
            "cores": 2,
            "usable_cores": 2,
            "python": "3.11.0",
            "python_implementation": "CPython",
            "platform": "Linux",
        },
        "versions": {"alamos": "0.1.0"},
        "settings": {"repeats": 2, "target_seconds": 0.01, "gc_in_loop": False},
        "results": [ok, bad, failed],
        "targets": [
            {
                "id": "pg",
                "operation": "export throughput, PostgreSQL",
                "row": "export_postgresql",
                "numerator": "export_postgresql",
                "denominator": "raw_postgresql_copy",
                "kind": "report",
                "limit": None,
                "text": "reported",
                "why": "",
                "source": "issue 5",
                "verdict": "UNAVAILABLE",
                "ratio": None,
                "low": None,
                "high": None,
                "pairs": 0,
                "margin": "no url",
            }
        ],
        "profile": None,
    }
    md = render_markdown(data)
    assert "Test CPU" in md
    assert "unavailable" in md and "error" in md
    rows = table_rows(data)
    assert [r["name"] for r in rows] == ["trivial_with", "export_postgresql", "x"]


def test_export_unavailable_without_the_sql_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.context import BenchContext
    from bench.export import export_cases

    monkeypatch.setitem(sys.modules, "alamos.report.sql", None)  # import fails
    ctx = BenchContext(quick=True)
    try:
        cases = export_cases(ctx)
    finally:
        ctx.close()
    assert cases and all(c.unavailable for c in cases)
    assert "SQLExporter" in (cases[0].unavailable or "")


def test_isolated_loguru_leaves_the_global_logger_alone() -> None:
    from loguru import logger

    from bench.peers import isolated_loguru

    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="DEBUG")
    try:
        isolated, how, restore = isolated_loguru()
        isolated.info("only to the no-op sink")
        restore()
        logger.info("to the global logger")
    finally:
        logger.remove(sink)
    assert how == "isolated core"
    assert len(seen) == 1 and "to the global logger" in seen[0]


def test_readme_section_is_replaced_between_the_markers(tmp_path: Path) -> None:
    from bench.report import README_END, update_readme

    data = json.loads((ROOT / "bench" / "results" / "latest.json").read_text())
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\nbefore\n<!-- bench:start -->\nold table\n<!-- bench:end -->\nafter\n")
    assert update_readme(readme, data)
    text = readme.read_text()
    assert "old table" not in text
    assert text.startswith("# x\n\nbefore\n<!-- bench:start")
    assert text.endswith(README_END + "\nafter\n")
    assert "| operation | median |" in text and "Targets (issue 5" in text
    assert data["machine"]["cpu_model"] in text
    # Rendering twice gives the same README (the markers survive).
    assert update_readme(readme, data)
    assert readme.read_text() == text
    # No markers: the file is left alone.
    plain = tmp_path / "PLAIN.md"
    plain.write_text("# nothing to replace\n")
    assert not update_readme(plain, data)
    assert plain.read_text() == "# nothing to replace\n"


def test_the_repository_readme_has_the_generated_section() -> None:
    text = (ROOT / "README.md").read_text()
    assert "<!-- bench:start" in text and "<!-- bench:end -->" in text
