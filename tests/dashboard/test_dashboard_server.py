"""The dashboard over HTTP, without a browser: binding and tokens, the
security headers, the pages for a missing or empty database and an unknown
trace, and the numbers behind the metric charts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from alamos.cli import main
from alamos.dashboard.db import Window
from alamos.dashboard.metrics import histogram_quantile, metric_charts
from alamos.dashboard.security import CSP, is_loopback
from alamos.report.sql import SQLExporter
from alamos.report.sql.migrate import ensure_schema

try:
    from seed import AGO, CHECKOUT, seed
except ImportError:
    from tests.dashboard.seed import AGO, CHECKOUT, seed

TOKEN = "t0ken-for-the-tests-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def remote(sqlite_url: str) -> Iterator[str]:
    """``alamos dashboard --host 0.0.0.0 --allow-remote`` in a subprocess."""
    seed(sqlite_url)
    port = _free_port()
    env = {**os.environ, "ALAMOS_DASHBOARD_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alamos.cli",
            "dashboard",
            "--db",
            sqlite_url,
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--allow-remote",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/static/dashboard.css", timeout=2)
            break
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"the dashboard did not start: {proc.stdout.read()}") from None
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


def test_remote_needs_allow_remote() -> None:
    result = CliRunner().invoke(main, ["dashboard", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "not a loopback address" in result.output and "--allow-remote" in result.output
    assert "Traceback" not in result.output


def test_bad_token_is_a_usage_error() -> None:
    args = ["dashboard", "--host", "0.0.0.0", "--allow-remote", "--token", "short"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "--token" in result.output


def test_remote_requires_the_token(remote: str) -> None:
    denied = httpx.get(remote + "/")
    assert denied.status_code == 401
    assert "needs its token" in denied.text
    assert httpx.get(remote + "/static/dashboard.js").status_code == 401
    wrong = httpx.get(remote + "/", headers={"Authorization": "Bearer nope-nope-nope-nope"})
    assert wrong.status_code == 401
    ok = httpx.get(remote + "/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and "shop.api" in ok.text
    # ?token= trades the token for a cookie and drops it from the URL.
    swap = httpx.get(remote + f"/search?status=error&token={TOKEN}")
    assert swap.status_code == 303
    assert swap.headers["location"] == "/search?status=error"
    assert "HttpOnly" in swap.headers["set-cookie"]
    with httpx.Client(base_url=remote) as client:
        client.get(f"/?token={TOKEN}")
        assert client.get("/search").status_code == 200


def test_loopback_refuses_other_host_names(serve: Callable[..., str], sqlite_url: str) -> None:
    seed(sqlite_url)
    base = serve(sqlite_url)
    assert httpx.get(base + "/").status_code == 200
    rebound = httpx.get(base + "/", headers={"Host": "evil.example:8710"})
    assert rebound.status_code == 403
    assert httpx.get(base + "/", headers={"Host": "localhost:8710"}).status_code == 200


def test_headers(serve: Callable[..., str], sqlite_url: str) -> None:
    seed(sqlite_url)
    base = serve(sqlite_url)
    for path in ("/", "/static/dashboard.js", f"/trace/{CHECKOUT}", "/nothing-here"):
        r = httpx.get(base + path)
        assert r.headers["content-security-policy"] == CSP
        assert "unsafe-inline" not in CSP and "script-src 'self'" in CSP
        assert r.headers["x-content-type-options"] == "nosniff"


def test_missing_database_page(serve: Callable[..., str], tmp_path: Path) -> None:
    base = serve(f"sqlite:///{tmp_path / 'nowhere.db'}")
    r = httpx.get(base + "/")
    assert r.status_code == 503
    assert "no SQLite database at" in r.text and "Traceback" not in r.text
    assert not (tmp_path / "nowhere.db").exists()  # not created by reading


def test_no_tables_and_empty_database(serve: Callable[..., str], db_url: str) -> None:
    if db_url.startswith("sqlite"):
        Path(db_url.removeprefix("sqlite:///")).touch()
    base = serve(db_url)
    r = httpx.get(base + "/")
    assert r.status_code == 503 and "has no alamos tables" in r.text
    exporter = SQLExporter(db_url)
    ensure_schema(exporter.engine)  # the tables, and nothing in them
    exporter.close()
    r = httpx.get(base + "/")
    assert r.status_code == 200 and "Nothing recorded yet" in r.text
    r = httpx.get(base + "/search")
    assert r.status_code == 200 and "no trace matches" in r.text


def test_unknown_trace_and_bad_input(serve: Callable[..., str], db_url: str) -> None:
    seed(db_url)
    base = serve(db_url)
    r = httpx.get(base + "/trace/" + "ab" * 16)
    assert r.status_code == 404 and "is not in this database" in r.text
    r = httpx.get(base + "/trace/not-a-trace")
    assert r.status_code == 404 and "is not a trace id" in r.text
    r = httpx.get(base + "/search?min_ms=fast")
    assert r.status_code == 400 and "not a number of milliseconds" in r.text
    r = httpx.get(base + "/?w=2y")
    assert r.status_code == 400 and "unknown window" in r.text
    r = httpx.get(base + "/layer/shop.nothing")
    assert r.status_code == 404 and "Unknown layer" in r.text
    r = httpx.get(base + "/session/0000")
    assert r.status_code == 404


def test_is_loopback() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "192.168.1.2", "::", "example.com", "localhost.example.com"):
        assert not is_loopback(host), host


def test_histogram_quantile() -> None:
    buckets = {0.01: 50.0, 0.1: 160.0, float("inf"): 200.0}
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.01 + 0.09 * 50 / 110)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.01)
    assert histogram_quantile(0.99, buckets) == 0.1  # in +Inf: its lower bound
    assert histogram_quantile(0.5, {1.0: 0.0}) is None


def test_metric_charts(db_url: str) -> None:
    from alamos.dashboard.db import Database

    now = seed(db_url)
    db = Database(db_url)
    window = Window("1h", now - 3600 * 10**9, now)
    with db.connect() as conn:
        charts = {c.name: c for c in metric_charts(conn, "shop.api", window)}
    db.dispose()
    t0 = (now - AGO) / 1e9
    assert charts["requests"].series == {"rate/s": [10.0, 20.0]}
    assert charts["requests"].x == [pytest.approx(t0 + 10), pytest.approx(t0 + 20)]
    assert charts["queue"].series == {"value": [4.0, 9.0, 2.0]}
    hist = charts["latency_seconds"].series
    assert hist["p50"] == [pytest.approx(0.01), pytest.approx(0.01 + 0.09 * 50 / 110)]
    assert hist["p99"] == [0.1, 0.1]


def test_demo_prints_the_dashboard_command() -> None:
    text = (Path(__file__).parents[2] / "scripts" / "demo.sh").read_text()
    assert "alamos dashboard --db" in text
