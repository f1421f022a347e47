"""The README's "Web servers" example, run as written (issue 14, problems 2, 3
and 7): its test under pytest with the alamos plugin, and its app under a
real ``uvicorn --workers 2`` with ``PROMETHEUS_MULTIPROC_DIR``: one scrape
shows the sum of both workers, and after SIGTERM the SQLite database holds
every span and the final metric samples of both workers."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
BLOCKS = {
    name: code
    for code, name in re.findall(r"```python\n(# (\w+\.py)\n.*?)```", README, re.S)
    if name in ("shop.py", "test_shop.py")
}
ROUTE = "/items/{item_id}"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALAMOS_", "PROMETHEUS_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(tmp_path)])
    env["ALAMOS_CONSOLE"] = "0"
    env["ALAMOS_SPOOL_DIR"] = str(tmp_path / "spool")
    return {**env, **extra}


def test_the_readme_has_the_example() -> None:
    assert sorted(BLOCKS) == ["shop.py", "test_shop.py"]
    assert "lifespan(root)" in BLOCKS["shop.py"]
    assert "alamos.metrics.asgi_app(root)" in BLOCKS["shop.py"]
    assert "uvicorn shop:app --host 0.0.0.0 --port 8000 --workers 4" in README


def test_the_readme_test_passes_under_the_plugin(tmp_path: Path) -> None:
    for name, code in BLOCKS.items():
        (tmp_path / name).write_text(code)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_shop.py"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b\d passed", result.stdout), result.stdout  # per anyio backend


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _uvicorn(
    tmp_path: Path, module: str, code: str, **env: str
) -> tuple[str, subprocess.Popen[bytes]]:
    """``module:app`` (``code``) under a real ``uvicorn --workers 2`` on a free
    port, once it answers ``GET /``; the caller stops it."""
    (tmp_path / f"{module}.py").write_text(code)
    port = _free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", f"{module}:app", "--host", "127.0.0.1"),
            *("--port", str(port), "--workers", "2", "--log-level", "warning"),
        ],
        cwd=tmp_path,
        env=_env(tmp_path, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/", timeout=2)
            return url, proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out = proc.communicate()[0].decode(errors="replace")
            pytest.fail(f"uvicorn did not start (exit {proc.returncode}):\n{out}")
        time.sleep(0.1)


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path, str]]:
    """The README's app under ``uvicorn --workers 2`` (a real process)."""
    prom = tmp_path / "prom"
    prom.mkdir()
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    url, proc = _uvicorn(
        tmp_path, "shop", BLOCKS["shop.py"], ALAMOS_DB=db, PROMETHEUS_MULTIPROC_DIR=str(prom)
    )
    try:
        assert httpx.get(f"{url}/items/1", timeout=10).status_code == 200
        yield url, proc, prom, db
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def _pids(prom: Path) -> set[str]:
    """The workers that recorded a request: each writes its own histogram file."""
    return {p.stem.rsplit("_", 1)[1] for p in prom.glob("histogram_*.db")}


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_two_uvicorn_workers_one_scrape_is_the_sum_and_sigterm_loses_nothing(
    shop: tuple[str, subprocess.Popen[bytes], Path, str],
) -> None:
    url, proc, prom, db = shop
    found = 1  # the readiness probe
    missing = 0
    # New connections until both workers have served some: the kernel hands
    # each connection to either worker.
    deadline = time.monotonic() + 60
    while len(_pids(prom)) < 2 or found + missing < 40:
        assert time.monotonic() < deadline, f"one worker served everything ({_pids(prom)})"
        if (found + missing) % 3 == 2:
            assert httpx.get(f"{url}/items/3", timeout=10).status_code == 404
            missing += 1
        else:
            assert httpx.get(f"{url}/items/2", timeout=10).status_code == 200
            found += 1
    # Every worker counts a request after sending its response: wait for the
    # last ones, then any scrape (either worker) shows both workers' sum.
    total = ("shop_repo_lookups_total", (("found", "true"),))
    deadline = time.monotonic() + 10
    while _scrape(url).get(total) != found and time.monotonic() < deadline:
        time.sleep(0.05)
    duration = "shop_http_http_server_request_duration_seconds_count"
    for _ in range(4):
        samples = _scrape(url)
        assert samples[total] == found
        assert samples[("shop_repo_lookups_total", (("found", "false"),))] == missing
        ok = (
            duration,
            (
                ("error_type", ""),
                ("http_request_method", "GET"),
                ("http_response_status_code", "200"),
                ("http_route", ROUTE),
            ),
        )
        assert samples[ok] == found

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, proc.communicate()[0].decode(errors="replace")

    engine = sa.create_engine(db)
    try:
        with engine.connect() as conn:
            spans = conn.execute(
                sa.text(
                    "SELECT node, COUNT(*) FROM alamos_spans WHERE path = 'shop.http' "
                    "AND name = :name GROUP BY node"
                ),
                {"name": f"GET {ROUTE}"},
            ).all()
            loads = conn.execute(
                sa.text("SELECT COUNT(*) FROM alamos_spans WHERE name = 'load'")
            ).scalar_one()
            rows = conn.execute(
                sa.text(
                    "SELECT node, labels, value, ts_ns FROM alamos_metrics "
                    "WHERE path = 'shop.repo' AND name = 'lookups' ORDER BY ts_ns"
                )
            ).all()
    finally:
        engine.dispose()
    assert len(spans) == 2  # both workers' spans, each with its own node
    assert sum(n for _, n in spans) == found + missing == loads
    latest: dict[tuple[str, str], float] = {}
    for node, labels, value, _ in rows:
        labels = json.loads(labels) if isinstance(labels, str) else labels
        latest[(node, labels["found"])] = value
    assert {node for node, _ in latest} == {node for node, _ in spans}
    assert sum(v for (_, f), v in latest.items() if f == "true") == found
    assert sum(v for (_, f), v in latest.items() if f == "false") == missing


SERVE_APP = """
import contextlib

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import alamos
from alamos.asgi import AlamosMiddleware, lifespan

root = alamos.new("svc")
started = root.metrics.counter("started", "Workers started")


@contextlib.asynccontextmanager
async def serve_metrics(app):
    alamos.metrics.serve(root, port=PORT)  # every worker runs this: one gets the port
    started.inc()
    yield


async def hello(request):
    return PlainTextResponse("hello")


app = AlamosMiddleware(
    Starlette(routes=[Route("/", hello)], lifespan=lifespan(root, inner=serve_metrics)),
    root.sub("http"),
)
"""


def test_serve_in_every_worker_does_not_break_the_server(tmp_path: Path) -> None:
    """Problem 2: with serve() in the lifespan of `uvicorn --workers 2`, the
    second worker raised OSError (address in use) and uvicorn stopped."""
    prom = tmp_path / "prom"
    prom.mkdir()
    metrics_port = _free_port()
    code = SERVE_APP.replace("PORT", str(metrics_port))
    url, proc = _uvicorn(tmp_path, "svc", code, PROMETHEUS_MULTIPROC_DIR=str(prom))
    try:
        # Both workers have started (each counted itself) and the one that
        # got the port serves both workers' sum.
        deadline = time.monotonic() + 30
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        while samples.get(("svc_started_total", ())) != 2.0:
            assert time.monotonic() < deadline, samples
            time.sleep(0.1)
            try:
                samples = _scrape(f"http://127.0.0.1:{metrics_port}")
            except httpx.TransportError:
                continue
        assert httpx.get(f"{url}/", timeout=10).text == "hello"
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0].decode(errors="replace")
    assert proc.returncode == 0, out
    assert "is taken, probably by another worker" in out
    assert "Traceback" not in out
