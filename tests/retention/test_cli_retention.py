"""``alamos gc``, ``hold``, ``unhold``, ``holds`` on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from alamos.cli import main

from .history import TRACES, snapshot, trace_ids, write_history

NOW = time.time_ns()
POLICY_ARGS = [
    "--ttl", "7d", "--ttl", "debug=1d", "--keep-last", "2", "--keep-errors", "30d",
    "--keep-slowest", "1",
]  # fmt: skip


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_gc_dry_run_then_gc(db_url: str) -> None:
    # The history is 'now' minus its ages; the CLI counts from its own now,
    # a few seconds later: no trace is that close to a boundary.
    write_history(db_url, NOW)
    before = snapshot(db_url)
    code, out = run("gc", "--db", db_url, *POLICY_ARGS, "--dry-run", "--json")
    assert code == 0, out
    dry = json.loads(out)
    assert snapshot(db_url) == before
    assert dry["traces"] == {
        "hold": 1, "ttl": 5, "last": 3, "errors": 1, "slowest": 2, "spike": 0, "delete": 6,
    }  # fmt: skip
    assert dry["rows"] == {
        "spans": 10, "logs": 9, "holds": 1, "metrics": 3, "reports": 1,
        "statistics:alamos_span_stats": 0, "statistics:alamos_span_stats_1h": 0,
        "statistics:alamos_log_stats": 0, "statistics:alamos_spikes": 0,
    }  # fmt: skip
    code, out = run("gc", "--db", db_url, *POLICY_ARGS, "--dry-run")
    assert code == 0
    assert "dry run: nothing was changed" in out and "GET /kv" in out
    code, out = run("gc", "--db", db_url, *POLICY_ARGS, "--batch-size", "4")
    assert code == 0, out
    assert "Rows deleted" in out and "dry run" not in out
    left = trace_ids(db_url)
    assert {t.trace_id for t in TRACES if t.fate != "delete" and not t.logs_only} == set(left)


def test_hold_unhold_holds(db_url: str) -> None:
    write_history(db_url, NOW)
    u4 = next(t for t in TRACES if t.name == "u4").trace_id
    code, out = run("hold", u4.upper(), "--db", db_url, "--reason", "ticket 12", "--until", "1d")
    assert code == 0 and out.startswith(f"held {u4} until ")
    code, out = run("holds", "--db", db_url)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert lines[0].startswith(f"{u4}  active") and lines[0].endswith("ticket 12")
    assert sum(" expired " in x for x in lines) == 1  # t8's
    code, out = run("gc", "--db", db_url, *POLICY_ARGS, "--json")
    assert json.loads(out)["traces"]["hold"] == 2
    assert u4 in trace_ids(db_url)
    code, out = run("unhold", u4, "--db", db_url)
    assert (code, out) == (0, f"released {u4}\n")
    code, out = run("unhold", u4, "--db", db_url)
    assert code == 1 and "is not held" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ttl", "7 days"], "invalid --ttl '7 days'"),
        (["--ttl", "-1d"], "invalid --ttl '-1d'"),
        (["--ttl", "spam=1d"], "unknown kind 'spam'"),
        (["--keep-errors", "1y"], "invalid --keep-errors '1y'"),
        (["--keep-last", "-1"], "-1 is not in the range x>=0"),
        (["--keep-slowest", "-5"], "-5 is not in the range x>=0"),
        (["--batch-size", "0"], "0 is not in the range x>=1"),
    ],
)
def test_bad_options_exit_2_and_delete_nothing(
    sqlite_url: str, args: list[str], message: str
) -> None:
    write_history(sqlite_url, NOW)
    before = snapshot(sqlite_url)
    code, out = run("gc", "--db", sqlite_url, "--ttl", "1d", *args)
    assert code == 2 and message in out, out
    assert "Traceback" not in out
    assert snapshot(sqlite_url) == before


def test_a_missing_or_empty_database_exits_2(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'nope.db'}"
    for cmd in (["gc", "--ttl", "1d"], ["holds"], ["hold", "1" * 32], ["unhold", "1" * 32]):
        code, out = run(*cmd, "--db", missing)
        assert code == 2 and "no SQLite database at" in out, (cmd, out)
        assert not (tmp_path / "nope.db").exists()
    empty = tmp_path / "empty.db"
    empty.touch()
    code, out = run("gc", "--db", f"sqlite:///{empty}", "--ttl", "1d")
    assert code == 2 and "has no alamos tables" in out
    code, out = run("hold", "not-a-trace", "--db", f"sqlite:///{empty}")
    assert code == 2 and "is not a trace id" in out
