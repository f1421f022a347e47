"""Three real processes, one request, one trace in one PostgreSQL database.

A → B → C over loopback HTTP: each process runs ``chain_service.py`` with
its own root (``service`` a, b, c) exporting to the same database.  After the
processes are shut down cleanly (SIGTERM: uvicorn stops, the root is closed
and flushed), the test reads the database back and checks the exact tree.
"""

from __future__ import annotations

import itertools
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy import select as sql_select

from alamos.report.query import build_tree, load_trace, recent_traces
from alamos.report.sql import normalize_url
from alamos.report.sql.schema import spans as spans_table

SCRIPT = Path(__file__).with_name("chain_service.py")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 40.0

pytestmark = pytest.mark.postgres


class Service:
    """A chain_service.py subprocess; always killed in teardown."""

    def __init__(self, name: str, db: str, tmp: Path, next_url: str | None) -> None:
        self.name = name
        self.log = (tmp / f"{name}.log").open("w+")
        argv = [sys.executable, str(SCRIPT), name, db, str(tmp / f"spool-{name}")]
        if next_url is not None:
            argv.append(next_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALAMOS_")}
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
            cwd=tmp,
            env=env,
        )
        self.port = int(self._read_line("PORT ", START_TIMEOUT).split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def _read_line(self, prefix: str, timeout: float) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                line = self.proc.stdout.readline().decode()
                if line.startswith(prefix):
                    return line.strip()
                if not line and self.proc.poll() is not None:
                    break
        raise AssertionError(f"{self.name}: no {prefix!r} line\n{self.stderr()}")

    def stderr(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def shutdown(self) -> None:
        """SIGTERM, then wait for a clean exit (the root flushed)."""
        self.proc.send_signal(signal.SIGTERM)
        self._read_line("CLOSED", STOP_TIMEOUT)
        code = self.proc.wait(timeout=STOP_TIMEOUT)
        assert code == 0, f"{self.name} exited with {code}\n{self.stderr()}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.log.close()


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.kill()


def test_three_processes_one_trace(pg_url: str, tmp_path: Path, services: list[Service]) -> None:
    c = Service("c", pg_url, tmp_path, None)
    services.append(c)
    b = Service("b", pg_url, tmp_path, c.url)
    services.append(b)
    a = Service("a", pg_url, tmp_path, b.url)
    services.append(a)

    r = httpx.get(f"{a.url}/chain/0", timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    trace_id = body["trace_id"]
    assert body["downstream"]["trace_id"] == trace_id
    assert body["downstream"]["downstream"]["trace_id"] == trace_id
    assert body["downstream"]["downstream"]["downstream"] is None

    for service in (a, b, c):
        service.shutdown()

    # Exactly one trace in the whole table: nothing leaked into another one.
    engine = create_engine(normalize_url(pg_url))
    try:
        with engine.connect() as conn:
            ids = conn.execute(sql_select(spans_table.c.trace_id).distinct()).scalars().all()
    finally:
        engine.dispose()
    assert ids == [trace_id]

    spans, logs = load_trace(pg_url, trace_id)
    assert len(spans) == 8
    roots = build_tree(spans, logs)
    assert len(roots) == 1 and not roots[0].orphan
    outline = [
        (depth, node.span.service, node.span.path, node.span.name)
        for depth, node in roots[0].walk()
    ]
    assert outline == [
        (0, "a", "a.http", "GET /chain/{hop}"),
        (1, "a", "a.work", "work"),
        (2, "a", "a.client", f"GET 127.0.0.1:{b.port}"),
        (3, "b", "b.http", "GET /chain/{hop}"),
        (4, "b", "b.work", "work"),
        (5, "b", "b.client", f"GET 127.0.0.1:{c.port}"),
        (6, "c", "c.http", "GET /chain/{hop}"),
        (7, "c", "c.work", "work"),
    ]
    chain = [node.span for _, node in roots[0].walk()]
    assert chain[0].parent_id is None
    for parent, child in itertools.pairwise(chain):
        assert child.parent_id == parent.span_id  # across process boundaries too
    assert {s.trace_id for s in spans} == {trace_id}
    assert {s.service for s in spans} == {"a", "b", "c"}
    assert len({s.node for s in spans}) == 3  # three processes (host:pid)
    assert [s.attributes["url.path"] for s in chain if s.path.endswith(".http")] == [
        "/chain/0",
        "/chain/1",
        "/chain/2",
    ]
    assert all(s.status == "unset" for s in spans)

    # Each process's log line is under its own work span.
    assert sorted((lg.service, lg.message) for lg in logs) == [
        ("a", "hop 0 in a"),
        ("b", "hop 1 in b"),
        ("c", "hop 2 in c"),
    ]
    for depth, node in roots[0].walk():
        if node.span.name == "work":
            assert [lg.message for lg in node.logs] == [f"hop {depth // 3} in {node.span.service}"]

    (summary,) = recent_traces(pg_url)
    assert summary.trace_id == trace_id
    assert summary.services == ("a", "b", "c")
    assert summary.span_count == 8 and summary.status == "ok"
    assert summary.root is not None and summary.root.span_id == chain[0].span_id
