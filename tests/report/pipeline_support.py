"""Shared helpers of the end-to-end pipeline tests (``test_pipeline_*.py``).

Everything goes through the public API (``alamos.new(..., db=URL)``) into a
real SQLite file or a real PostgreSQL database; the helpers here only read
the database back with SQL and wait (with generous hang guards, never timing
assertions).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

import alamos
from alamos.report.sql import normalize_url

ROOT = Path(__file__).resolve().parents[2]
#: A "did not hang" guard: never a performance assertion.
HANG = 120.0


@contextlib.contextmanager
def reader(url: str) -> Iterator[Engine]:
    """An engine to read the test database with (disposed after)."""
    engine = create_engine(normalize_url(url))
    try:
        yield engine
    finally:
        engine.dispose()


def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with reader(url) as engine, engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def scalar(url: str, sql: str, **params: Any) -> Any:
    rows = query(url, sql, **params)
    assert len(rows) == 1, rows
    return rows[0][0]


def count(url: str, table: str, where: str = "", **params: Any) -> int:
    sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
    return int(scalar(url, sql, **params))


def duplicates(url: str, table: str, key: str) -> int:
    """Rows whose ``key`` is not unique (0 when every id is stored once)."""
    return int(scalar(url, f"SELECT count(*) - count(DISTINCT {key}) FROM {table}"))


def broken_parent_links(url: str) -> int:
    """Spans whose parent is not a stored span of the same trace."""
    return int(
        scalar(
            url,
            "SELECT count(*) FROM alamos_spans c WHERE c.parent_span_id IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM alamos_spans p "
            "WHERE p.span_id = c.parent_span_id AND p.trace_id = c.trace_id)",
        )
    )


def broken_log_links(url: str) -> int:
    """Logs made inside a span whose span is not stored (same trace)."""
    return int(
        scalar(
            url,
            "SELECT count(*) FROM alamos_logs l WHERE l.span_id IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM alamos_spans s "
            "WHERE s.span_id = l.span_id AND s.trace_id = l.trace_id)",
        )
    )


def new_root(key: str, url: str | None, spool_dir: Path, **kw: Any) -> alamos.Experiment:
    """A root exporting every level to ``url``, with no periodic snapshots
    (metrics at flush and close only) and no console output."""
    options: dict[str, Any] = {
        "level": "bench",
        "console": False,
        "spool_dir": spool_dir,
        "metrics_interval": 3600,
        "report_interval": 3600,
    }
    options.update(kw)
    if url is not None:
        options["db"] = url
    return alamos.new(key, **options)


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = HANG) -> None:
    """Poll ``predicate`` until true; fail (a hang) after ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"hung: still waiting for {what} after {timeout} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def spool_files(spool_dir: Path) -> list[Path]:
    """The spool files under ``spool_dir`` (every root key and exporter)."""
    return sorted(spool_dir.rglob("spool-*.jsonl"))


def sqlite_file(url: str) -> Path:
    assert url.startswith("sqlite:///"), url
    return Path(url.removeprefix("sqlite:///"))


@contextlib.contextmanager
def sqlite_unusable(url: str) -> Iterator[None]:
    """Make the SQLite database at ``url`` really unusable (root-proof: chmod
    would not stop root from writing): its folder is moved away and a plain
    file put in its place, so nothing can be opened or created there.  Moved
    back on exit."""
    folder = sqlite_file(url).parent
    moved = folder.with_name(folder.name + "-away")
    folder.rename(moved)
    folder.write_text("not a folder: the database is unreachable")
    try:
        yield
    finally:
        folder.unlink()
        moved.rename(folder)


def run_script(
    source: str, *args: str, env: dict[str, str] | None = None, timeout: float = HANG
) -> subprocess.CompletedProcess[str]:
    """Run ``source`` in a fresh interpreter (this venv, alamos importable)."""
    return subprocess.run(
        [sys.executable, "-c", source, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def returns_within(seconds: float, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a thread; fail (instead of hanging) if it has not
    returned after ``seconds``: a "did not hang" guard around a call that
    used to block forever, not a performance assertion."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def main() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    if errors:
        raise errors[0]
    return out[0]
