"""``alamos stats``: the merged statistics as a table and as JSON, exact
numbers from stored rows on SQLite and PostgreSQL; usage errors exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from alamos.cli import main
from alamos.report.sql import SQLExporter
from alamos.stats.live import LiveStats

from .support import MINUTE, T0, span


def run(*args: str) -> tuple[int, str, str]:
    env = {"FORCE_COLOR": None, "TTY_COMPATIBLE": None, "NO_COLOR": "1"}
    result = CliRunner().invoke(main, list(args), env=env)
    assert not (result.exception and not isinstance(result.exception, SystemExit)), result.exc_info
    return result.exit_code, result.stdout, result.stderr


def store(url: str) -> None:
    live = LiveStats(MINUTE, lambda: ("svc", "n1"), ("bytes",))
    spans = [
        span(0, T0 + 1, 1_000_000, attributes={"bytes": 10}),
        span(1, T0 + 2, 3_000_000, attributes={"bytes": 30}),
        span(2, T0 + MINUTE + 3, 2_000_000, status="error"),
        span(3, T0 + 4, 4_000_000, path="svc.db", name="query"),
        span(4, T0 + 5, 6_000_000, path="svc.db", name="query"),
    ]
    live.observe(spans[:2])
    live.observe(spans[2:])
    exporter = SQLExporter(url)
    exporter.export(live.emit())
    exporter.close()


def test_json_by_name_and_by_path(db_url: str) -> None:
    store(db_url)
    code, out, err = run("stats", "--db", db_url, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [(d["path"], d["name"], d["count"], d["errors"]) for d in doc] == [
        ("svc.api", "write", 3, 1),
        ("svc.db", "query", 2, 0),
    ]
    write = doc[0]
    assert (write["mean_ns"], write["min_ns"], write["max_ns"], write["rows"]) == (
        2_000_000.0,
        1_000_000,
        3_000_000,
        2,
    )
    assert write["stddev_ns"] == pytest.approx((2e12 / 3) ** 0.5)
    assert write["error_rate"] == pytest.approx(1 / 3)
    assert write["p50_ns"] == pytest.approx(2_000_000, rel=0.01)
    assert write["attributes"]["bytes"] == {
        "count": 2, "sum": 40.0, "mean": 20.0, "m2": 200.0, "min": 10.0, "max": 30.0,
    }  # fmt: skip
    code, out, _ = run("stats", "--db", db_url, "--json", "--by", "path", "--path", "svc.db")
    assert [(d["path"], d["name"], d["count"], d["mean_ns"]) for d in json.loads(out)] == [
        ("svc.db", None, 2, 5_000_000.0)
    ]


def test_table(sqlite_url: str) -> None:
    store(sqlite_url)
    code, out, err = run("stats", "--db", sqlite_url)
    assert code == 0, err
    assert "Span statistics (3 rows, 2 window(s))" in out
    line = next(x for x in out.splitlines() if "write" in x)
    cells = [c.strip() for c in line.strip("│").split("│")]
    assert cells[:5] == ["svc.api", "write", "3", "33.3%", "2.000"]
    assert cells[-2:] == ["3.000", "bytes 20.0"]
    # Everything is older than an hour: nothing to show.
    code, out, err = run("stats", "--db", sqlite_url, "--since", "1h")
    assert code == 0 and out == "" and "no statistics" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "10 parsecs"], "invalid duration '10 parsecs'"),
        (["--by", "status"], "Invalid value for '--by'"),
        (["--path", ""], "a path is an experiment's dotted path"),
    ],
)
def test_usage_errors_exit_2(sqlite_url: str, args: list[str], message: str) -> None:
    store(sqlite_url)
    code, out, err = run("stats", "--db", sqlite_url, *args)
    assert code == 2, out + err
    assert message in err and "Traceback" not in out + err


def test_unreadable_databases(tmp_path: Path) -> None:
    code, _, err = run("stats", "--db", f"sqlite:///{tmp_path}/missing.db")
    assert code == 1 and "no SQLite database" in err
    code, _, err = run("stats", "--db", "mysql://x/y")
    assert code == 1 and "unsupported database URL" in err
