"""``alamos demo``, run for real: a server over loopback, clients, export to a
real database, and a summary read back with SQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from alamos.demo.summary import DEMO_FRAMES, frame_budgets, summarise
from alamos.report.sql import normalize_url

LAYERS = {"demo.api", "demo.cesium", "demo.client", "demo.storage", "demo.storage.wal"}


def _run_demo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("ALAMOS_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "alamos.cli", "demo", "--seconds", "1", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def test_demo_on_the_embedded_default_writes_alamos_db_and_summarises(tmp_path: Path) -> None:
    result = _run_demo(tmp_path)
    assert result.returncode == 0, result.stderr
    db = tmp_path / "alamos.db"
    assert db.exists(), "the demo must write ./alamos.db by default"
    out = result.stdout
    assert "Per-layer summary" in out
    for layer in LAYERS:
        assert layer in out
    for column in ("spans", "p50 ms", "p99 ms", "errors", "logs"):
        assert column in out
    # The printed numbers are the database's: compare with our own SQL.
    (spans,) = _rows(f"sqlite:///{db}", "SELECT COUNT(*) FROM alamos_spans WHERE path='demo.api'")
    assert spans[0] > 0
    assert f"{spans[0]}" in out
    # Every request is one trace through every layer: client → api → cesium.
    orphans = _rows(
        f"sqlite:///{db}",
        "SELECT COUNT(*) FROM alamos_spans s WHERE s.path = 'demo.api' AND NOT EXISTS "
        "(SELECT 1 FROM alamos_spans p WHERE p.span_id = s.parent_span_id "
        " AND p.path = 'demo.client' AND p.trace_id = s.trace_id)",
    )
    assert orphans == [(0,)]
    _assert_budget_table(out, f"sqlite:///{db}")


def _assert_budget_table(out: str, url: str) -> None:
    """The frame-budget table is printed, with the demo's budgets and the
    database's frame counts."""
    assert "Frame budgets" in out
    table = out[out.index("Frame budgets") :]
    for column in ("frame", "budget", "frames", "count", "total ms", "mean ms", "share"):
        assert column in table
    for budget in ("cesium", "storage", "wal"):
        assert f" {budget} " in table
    for frame in DEMO_FRAMES:
        ((n,),) = _rows(url, f"SELECT COUNT(*) FROM alamos_spans WHERE name = '{frame}'")
        assert isinstance(n, int) and n > 0
        assert re.search(rf"{re.escape(frame)} +│ \(frame\) +│ +{n:,} ", table), (frame, n)


def test_budget_summary_of_an_empty_database_says_so(tmp_path: Path) -> None:
    from rich.console import Console

    from alamos.cli.demo import _print_budgets
    from alamos.report.sql.migrate import ensure_schema

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = sa.create_engine(normalize_url(url))
    ensure_schema(engine)
    engine.dispose()
    assert [r.frame.frames for r in frame_budgets(url, 0)] == [0, 0]
    console = Console(width=120, record=True)
    _print_budgets(console, url, 0)
    assert (
        "Frame budgets: no 'GET /kv/{key}' or 'PUT /kv/{key}' frames recorded"
        in console.export_text()
    )


def test_summary_percentiles_and_errors_come_from_sql(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = sa.create_engine(normalize_url(url))
    from alamos.report.sql.migrate import ensure_schema
    from alamos.report.sql.schema import spans

    ensure_schema(engine)
    rows = [
        {
            "span_id": f"{i:016x}", "trace_id": f"{i:032x}", "parent_span_id": None,
            "path": "demo.api", "name": "GET", "level": "prod", "start_ns": 1000 + i,
            "end_ns": 1000 + i + i * 1_000_000, "duration_ns": i * 1_000_000,
            "status": "error" if i % 10 == 0 else "ok", "error": None, "attributes": {},
            "events": [], "service": "demo-api", "node": "n", "session_id": None,
            "location": None,
        }
        for i in range(1, 101)
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(spans.insert(), rows)
    engine.dispose()
    summary = summarise(url, 0, "demo%")
    (layer,) = summary["layers"]
    assert layer["path"] == "demo.api"
    assert layer["spans"] == 100
    assert layer["p50_ns"] == 50 * 1_000_000
    assert layer["p99_ns"] == 99 * 1_000_000
    assert layer["errors"] == 10
    assert summarise(url, 10_000, "demo%")["layers"] == []  # only this run's records


def test_demo_with_workers_is_one_trace_across_processes(tmp_path: Path) -> None:
    db = tmp_path / "multi.db"
    result = _run_demo(tmp_path, "--workers", "3", "--db", f"sqlite:///{db}")
    assert result.returncode == 0, result.stderr
    url = f"sqlite:///{db}"
    services = {r[0] for r in _rows(url, "SELECT DISTINCT service FROM alamos_spans")}
    assert services == {"demo-api", "demo-storage-1", "demo-storage-2"}
    # Each storage-side server span has its parent in the api process, same trace.
    broken = _rows(
        url,
        "SELECT COUNT(*) FROM alamos_spans s WHERE s.path = 'demo.storage_server' AND NOT EXISTS "
        "(SELECT 1 FROM alamos_spans p WHERE p.span_id = s.parent_span_id "
        " AND p.trace_id = s.trace_id AND p.service = 'demo-api')",
    )
    assert broken == [(0,)]
    (n,) = _rows(url, "SELECT COUNT(*) FROM alamos_spans WHERE path = 'demo.storage_server'")
    assert n[0] > 0


@pytest.mark.postgres
def test_demo_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    result = _run_demo(tmp_path, "--db", pg_url, "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "Per-layer summary" in result.stdout
    _assert_budget_table(result.stdout, pg_url)
    services = {r[0] for r in _rows(pg_url, "SELECT DISTINCT service FROM alamos_spans")}
    assert services == {"demo-api", "demo-storage-1"}
    assert not (tmp_path / "alamos.db").exists()


def test_bad_options_fail_clearly(tmp_path: Path) -> None:
    result = _run_demo(tmp_path, "--workers", "0")
    assert result.returncode == 2
    assert "--workers" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "mysql://x"], "unsupported database URL 'mysql://x'"),
        (["--level", "prod,bad path=debug"], "invalid level filter"),
    ],
)
def test_bad_db_or_level_is_a_usage_error_not_a_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = _run_demo(tmp_path, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_without_the_demo_extra_it_says_which_extra_to_install(tmp_path: Path) -> None:
    # A Python where uvicorn cannot be imported, as without `alamos[demo]`.
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['uvicorn'] = None\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-m", "alamos.cli", "demo", "--seconds", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "pip install 'alamos[demo]'" in result.stderr
    assert "Traceback" not in result.stderr
