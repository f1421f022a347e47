"""``alamos trace`` and ``alamos traces`` on a real SQLite file written by alamos."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import alamos
from alamos.cli import main
from alamos.cli.traces import clean, parse_since

SECOND = 1_000_000_000


def record_traces(url: str, tmp_path: Path) -> tuple[str, str]:
    """Two traces: a good one (api → cesium, with logs) and a failing one."""
    with alamos.new(
        "api", service="api-svc", node="node-1", db=url, console=False, spool_dir=tmp_path / "sp"
    ) as root:
        cesium = root.sub("cesium")
        with root.trace.prod("GET /write") as good:
            root.log.info("accepted {n} bytes", n=3)
            with cesium.trace.prod("write"):
                cesium.log.warning("slow disk")
        with (
            root.trace.prod("GET /fail") as bad,
            pytest.raises(KeyError),
            cesium.trace.prod("lookup"),
        ):
            raise KeyError("missing")
    return good.trace_id, bad.trace_id


@pytest.fixture
def db(sqlite_url: str, tmp_path: Path) -> tuple[str, str, str]:
    good, bad = record_traces(sqlite_url, tmp_path)
    return sqlite_url, good, bad


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


def test_trace_prints_the_tree(db: tuple[str, str, str]) -> None:
    url, good, _ = db
    code, out = run("trace", good, "--db", url)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == f"trace {good}  spans=2  logs=2  services=api-svc"
    assert re.fullmatch(
        r"GET /write  \[api-svc@node-1\]  api  \d+\.\d{3} ms  unset  span=[0-9a-f]{16}", lines[1]
    )
    assert re.fullmatch(r"  \| INFO      \+\d+\.\d{3} ms  accepted 3 bytes", lines[2])
    assert re.fullmatch(r"  write  \[api-svc@node-1\]  api\.cesium  .*", lines[3])
    assert re.fullmatch(r"    \| WARNING   \+\d+\.\d{3} ms  slow disk", lines[4])
    assert len(lines) == 5


def test_trace_shows_errors(db: tuple[str, str, str]) -> None:
    url, _, bad = db
    code, out = run("trace", bad.upper(), "--db", url)  # upper case is accepted
    assert code == 0, out
    lookup = out.splitlines()[2]
    assert lookup.startswith("  lookup  ")
    assert "  error  " in lookup and "error=KeyError: 'missing'" in lookup


def test_traces_lists_one_line_each(db: tuple[str, str, str]) -> None:
    url, good, bad = db
    code, out = run("traces", "--db", url)
    assert code == 0, out
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [bad, good]  # newest first
    assert re.fullmatch(
        rf"{good}  \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z  GET /write \[api-svc\]  "
        r"services=api-svc  spans=2  \d+\.\d{3} ms  ok",
        lines[1],
    )
    assert lines[0].endswith("  error")


def test_traces_filters(db: tuple[str, str, str]) -> None:
    url, _, bad = db
    assert run("traces", "--db", url, "--errors")[1].split()[0] == bad
    assert len(run("traces", "--db", url, "--errors")[1].splitlines()) == 1
    assert len(run("traces", "--db", url, "--path", "api.cesium")[1].splitlines()) == 2
    code, out = run("traces", "--db", url, "--path", "elsewhere")
    assert code == 0 and out.strip() == "no traces found"
    assert len(run("traces", "--db", url, "--since", "10m")[1].splitlines()) == 2
    assert len(run("traces", "--db", url, "--limit", "1")[1].splitlines()) == 1


def test_since_excludes_old_traces(sqlite_url: str, tmp_path: Path) -> None:
    from alamos.core.context import SpanContext

    record_traces(sqlite_url, tmp_path)
    old = parse_since("2h")
    # A trace that started three hours ago (a remote parent, exported by hand).
    with alamos.new("old", db=sqlite_url, console=False, spool_dir=tmp_path / "sp2") as root:
        ctx = SpanContext("ab" * 16, "cd" * 8, True, None, True)
        span = root.trace.prod("ancient", parent=ctx)
        span.start()
        span.start_ns = old - 3600 * SECOND
        span.end()
    out = run("traces", "--db", sqlite_url)[1]
    assert "ancient" in out and "(root missing)" in out
    assert "ancient" not in run("traces", "--db", sqlite_url, "--since", "90m")[1]


def test_db_defaults(
    db: tuple[str, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, good, _ = db
    monkeypatch.chdir(tmp_path)
    assert run("trace", good, env={"ALAMOS_DB": url})[0] == 0
    # Without ALAMOS_DB: ./alamos.db, which is where the fixture put it.
    assert url.endswith(str(tmp_path / "alamos.db"))
    code, out = run("traces", env={"ALAMOS_DB": ""})
    assert code == 0 and good in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["trace", "xyz"], 2, "'xyz' is not a trace id: expected 32 hex digits"),
        (["trace", "g" * 32], 2, "is not a trace id"),
        (["trace", "ab" * 17], 2, "is not a trace id"),
        (["trace", "ab" * 16], 1, f"no trace {'ab' * 16} in sqlite:///"),
        (["traces", "--since", "10 parsecs"], 2, "invalid duration '10 parsecs'"),
        (["traces", "--since", "-5m"], 2, "e.g. 30s, 10m, 2h"),
        (["traces", "--limit", "0"], 2, "--limit"),
    ],
)
def test_clear_errors(db: tuple[str, str, str], args: list[str], code: int, message: str) -> None:
    got, out = run(*args, "--db", db[0])
    assert got == code, out
    assert message in out
    assert "Traceback" not in out


def test_unreadable_databases(tmp_path: Path) -> None:
    code, out = run("traces", "--db", f"sqlite:///{tmp_path / 'nope.db'}")
    assert code == 1 and "no SQLite database at" in out
    assert not (tmp_path / "nope.db").exists()
    code, out = run("trace", "ab" * 16, "--db", "postgresql://me:s3cret@127.0.0.1:1/x")
    assert code == 1 and "cannot read postgresql+psycopg://me:***@127.0.0.1:1/x" in out
    assert "s3cret" not in out
    code, out = run("traces", "--db", "ftp://host/x")
    assert code == 1 and "not supported" in out


def test_control_characters_are_escaped(sqlite_url: str, tmp_path: Path) -> None:
    root = alamos.new(
        "evil", node="n\x07ode", db=sqlite_url, console=False, spool_dir=tmp_path / "sp"
    )
    with root, root.trace.prod("\x1b[2J\x1b[31mred\u202eevil") as span:
        root.log.error("line1\r\nline2\x1b]0;title\x07\x00")
    for args in (["trace", span.trace_id], ["traces"]):
        code, out = run(*args, "--db", sqlite_url)
        assert code == 0, out
        assert not any(ch in out for ch in "\x1b\x07\x00\r\u202e"), repr(out)
        assert "\\x1b[2J\\x1b[31mred\\u202eevil" in out
    _, out = run("trace", span.trace_id, "--db", sqlite_url)
    assert "line1\\x0d\\x0aline2\\x1b]0;title\\x07" in out
    assert "n\\x07ode" in out
    assert len(out.splitlines()) == 3  # a multi-line message stays on one line


def test_clean() -> None:
    assert clean("plain ünïcode ✓") == "plain ünïcode ✓"
    assert clean("a\tb\nc\x7f\u200b") == "a\\x09b\\x0ac\\x7f\\u200b"
    assert clean("x" * 600) == "x" * 500 + "…"
    assert clean(12) == "12"


def test_parse_since() -> None:
    now = 1_000_000 * SECOND
    assert parse_since("10m", now) == now - 600 * SECOND
    assert parse_since("1.5h", now) == now - 5400 * SECOND
    assert parse_since(" 2d ", now) == now - 2 * 86400 * SECOND
    assert parse_since("500ms", now) == now - SECOND // 2
    assert parse_since("1w", now) == now - 7 * 86400 * SECOND
    for bad in ("", "10", "m", "10y", "ten minutes", "1e3s"):
        with pytest.raises(ValueError, match="invalid duration"):
            parse_since(bad, now)
