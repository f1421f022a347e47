"""``alamos logs``, ``alamos metrics``, span attributes in ``alamos trace``,
``--db`` as a file path and the database errors (issue 14, problem 8), on a
real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

import alamos
from alamos.cli import main

ROOT = Path(__file__).resolve().parents[2]
HANG = 120.0  # a "did not hang" guard, never a timing assertion
WHEN = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
MS = re.compile(r"\+\d+\.\d{3} ms")
SPAN = re.compile(r"span=[0-9a-f]{16}")
DURATION = re.compile(r"  \d+\.\d{3} ms  ")


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


def masked(out: str, trace_id: str = "") -> str:
    out = WHEN.sub("TIME", out)
    out = MS.sub("+MS", out)
    out = SPAN.sub("span=ID", out)
    out = DURATION.sub("  DUR  ", out)
    return out.replace(trace_id, "TID") if trace_id else out


def record(url: str, tmp_path: Path) -> str:
    """A trace with attributes and an event, three logs and four metrics, of
    which some series change after a first flush.  Returns the trace id."""
    with alamos.new(
        "shop",
        node="n1",
        db=url,
        level="debug",
        console=False,
        spool_dir=tmp_path / "spool",
    ) as root:
        repo = root.sub("repo")
        queries = repo.metrics.counter("queries", "Queries run", labelnames=["table"])
        carts = root.metrics.gauge("carts", "Open carts")
        seconds = repo.metrics.histogram("seconds", "Query time")
        attributes = {"http.request.method": "GET", "url.path": "/orders a"}
        with root.trace.prod("GET /orders", attributes=attributes) as request:
            root.log.info("request {n}", n=1)
            with repo.trace.debug("select") as select:
                select.set("rows", 3)
                select.event("cache miss", key="orders")
                queries.labels("orders").inc(2)
                repo.log.warning("slow Query on {table}", table="orders")
        root.log.error("disk almost full")
        carts.set(5)
        assert root.flush(HANG)
        queries.labels("orders").inc()
        queries.labels("items").inc()
        carts.set(4)
        seconds.observe(0.25)
        seconds.observe(0.5)
    return request.trace_id


@pytest.fixture
def db(db_url: str, tmp_path: Path) -> tuple[str, str]:
    return db_url, record(db_url, tmp_path)


def test_trace_shows_attributes_and_events_with_v(db: tuple[str, str]) -> None:
    url, tid = db
    code, out = run("trace", tid, "--db", url)
    assert code == 0, out
    assert masked(out, tid).splitlines() == [
        "trace TID  spans=2  logs=2  services=shop",
        "GET /orders  [shop@n1]  shop  DUR  unset  span=ID",
        '  @ http.request.method="GET" url.path="/orders a"',
        "  | INFO      +MS  request 1",
        "  select  [shop@n1]  shop.repo  DUR  unset  span=ID",
        "    @ rows=3",
        "    | WARNING   +MS  slow Query on orders",
    ]
    code, out = run("trace", tid, "--db", url, "-v")
    assert code == 0, out
    lines = masked(out, tid).splitlines()
    assert lines[5:8] == [
        "    @ rows=3",
        '    * cache miss  +MS  key="orders"',
        "    | WARNING   +MS  slow Query on orders",
    ]
    assert len(lines) == 8


def test_logs_lists_and_filters(db: tuple[str, str]) -> None:
    url, tid = db
    code, out = run("logs", "--db", url)
    assert code == 0, out
    assert masked(out, tid).splitlines() == [
        "TIME  INFO      shop  request 1  trace=TID",
        "TIME  WARNING   shop.repo  slow Query on orders  trace=TID",
        "TIME  ERROR     shop  disk almost full",
    ]

    def lines(*args: str) -> list[str]:
        code, out = run("logs", "--db", url, *args)
        assert code == 0, out
        return [line.split("  ")[-1 if "trace=" not in line else -2] for line in out.splitlines()]

    assert lines("--level", "warning") == ["slow Query on orders", "disk almost full"]
    assert lines("--level", "ERROR") == ["disk almost full"]
    assert lines("--path", "shop.repo") == ["slow Query on orders"]
    assert lines("--path", "shop") == ["request 1", "slow Query on orders", "disk almost full"]
    assert lines("--trace", tid.upper()) == ["request 1", "slow Query on orders"]
    assert lines("--grep", "QUERY") == ["slow Query on orders"]
    assert lines("--grep", "100%_") == ["no logs found"]  # % and _ are not wildcards
    assert lines("--since", "1h") == ["request 1", "slow Query on orders", "disk almost full"]
    assert lines("--limit", "2") == ["slow Query on orders", "disk almost full"]  # the newest
    code, out = run("logs", "--db", url, "--path", "nowhere")
    assert code == 0 and out.strip() == "no logs found"


def test_metrics_shows_the_latest_sample_of_each_series(db: tuple[str, str]) -> None:
    url, _ = db
    code, out = run("metrics", "--db", url)
    assert code == 0, out
    assert masked(out).splitlines() == [
        'shop  alamos_dropped_records{reason="close_timeout"}  counter  0  [shop@n1]  TIME',
        'shop  alamos_dropped_records{reason="closed"}  counter  0  [shop@n1]  TIME',
        'shop  alamos_dropped_records{reason="exporter_and_spool_failed"}  counter  0  '
        "[shop@n1]  TIME",
        'shop  alamos_dropped_records{reason="queue_full"}  counter  0  [shop@n1]  TIME',
        'shop  alamos_dropped_records{reason="rejected"}  counter  0  [shop@n1]  TIME',
        "shop  carts  gauge  4  [shop@n1]  TIME",
        'shop.repo  queries{table="items"}  counter  1  [shop@n1]  TIME',
        'shop.repo  queries{table="orders"}  counter  3  [shop@n1]  TIME',
        "shop.repo  seconds  histogram  count=2 sum=0.75  [shop@n1]  TIME",
    ]
    code, out = run("metrics", "--db", url, "--path", "shop.repo", "--name", "queries")
    assert code == 0, out
    assert [line.split("  ")[1:4] for line in out.splitlines()] == [
        ['queries{table="items"}', "counter", "1"],
        ['queries{table="orders"}', "counter", "3"],
    ]
    code, out = run("metrics", "--db", url, "--name", "nope")
    assert code == 0 and out.strip() == "no metrics found"


def test_db_is_a_file_path_for_every_command(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tid = record(sqlite_url, tmp_path)  # tmp_path/alamos.db
    (tmp_path / "alamos.db").rename(tmp_path / "telemetry.db")
    monkeypatch.chdir(tmp_path)
    for args in (
        ["trace", tid],
        ["traces"],
        ["logs"],
        ["metrics"],
        ["budgets", "--frame", "GET /orders"],
    ):
        for db in ("telemetry.db", str(tmp_path / "telemetry.db"), "./telemetry.db"):
            code, out = run(*args, "--db", db)
            assert code == 0, (args, db, out)
            assert out.strip(), (args, db)
        code, out = run(*args, env={"ALAMOS_DB": "telemetry.db"})
        assert code == 0, (args, out)


@pytest.mark.parametrize("command", [["logs"], ["metrics"], ["traces"], ["trace", "ab" * 16]])
def test_no_database_says_how_to_point_at_one(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ALAMOS_DB", raising=False)
    how = (
        "Point at the database with --db (a file path such as telemetry.db, or a URL: "
        "sqlite:///path/to/file.db, postgresql://user@host/dbname) or the ALAMOS_DB "
        "environment variable."
    )
    code, out = run(*command)
    assert code == 1
    assert out.splitlines() == [
        f"Error: no SQLite database at {tmp_path}/alamos.db (from sqlite:///{tmp_path}/alamos.db)",
        "No --db was given and ALAMOS_DB is not set, so sqlite:///alamos.db was tried.",
        how,
    ]
    code, out = run(*command, env={"ALAMOS_DB": "gone.db"})
    assert code == 1
    assert out.splitlines()[1:] == ["The database came from ALAMOS_DB.", how]
    code, out = run(*command, "--db", "gone.db")
    assert code == 1
    assert out.splitlines()[1:] == [how]
    assert not (tmp_path / "gone.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["logs", "--level", "loud"], "invalid log level 'loud': use one of trace, debug"),
        (["logs", "--trace", "xyz"], "'xyz' is not a trace id"),
        (["logs", "--since", "soon"], "invalid duration 'soon'"),
        (["logs", "--limit", "0"], "--limit"),
        (["logs", "--interval", "0"], "--interval"),
        (["metrics", "--nme", "x"], "No such option '--nme'. Did you mean '--name'?"),
        (["trace", "ab" * 16, "--verbos"], "No such option '--verbos'"),
    ],
)
def test_usage_errors_exit_2(db: tuple[str, str], args: list[str], message: str) -> None:
    code, out = run(*args, "--db", db[0])
    assert code == 2, out
    assert message in out
    assert "Traceback" not in out


def test_logs_follow_prints_new_rows(db_url: str, tmp_path: Path) -> None:
    tid = record(db_url, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "alamos.cli", "logs", "--db", db_url, "-f", "--interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()

    def take(n: int) -> list[str]:
        return [masked(lines.get(timeout=HANG), tid) for _ in range(n)]

    try:
        assert take(3) == [
            "TIME  INFO      shop  request 1  trace=TID",
            "TIME  WARNING   shop.repo  slow Query on orders  trace=TID",
            "TIME  ERROR     shop  disk almost full",
        ]
        with alamos.new("shop", db=db_url, console=False, spool_dir=tmp_path / "spool2") as later:
            later.sub("repo").log.warning("new row {n}", n=1)
            assert later.flush(HANG)
            later.log.info("new row {n}", n=2)
        assert take(2) == [
            "TIME  WARNING   shop.repo  new row 1",
            "TIME  INFO      shop  new row 2",
        ]
        assert lines.empty()
    finally:
        proc.terminate()
        proc.wait(HANG)
    assert proc.stderr is not None
    assert "Traceback" not in proc.stderr.read()
