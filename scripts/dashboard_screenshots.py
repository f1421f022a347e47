"""The README's dashboard screenshots, from `alamos demo` data.

    python scripts/dashboard_screenshots.py [--out docs/dashboard] [--seconds 4]

Runs ``alamos demo --workers 2`` (so traces cross two processes and two
services) into a fresh SQLite file, stores the spikes of its ``PUT /kv``
frames (as ``alamos budgets --store-spikes`` would; the frame is the most frequent
root span name), serves the dashboard
over it on 127.0.0.1 with the demo's recording rule (``--rules``), and
photographs each page with Debian's chromium through
Playwright (``/usr/bin/chromium``, or ``$ALAMOS_TEST_CHROMIUM``).
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote_plus

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard")
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    import uvicorn
    from playwright.sync_api import sync_playwright

    from alamos.dashboard import create_app
    from alamos.demo.rules import DEMO_RULES
    from alamos.report.query import store_spikes

    work = Path(tempfile.mkdtemp(prefix="alamos-shots-"))
    db_file = work / "alamos.db"
    url = f"sqlite:///{db_file}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "alamos.cli",
            "demo",
            "--seconds",
            str(args.seconds),
            "--workers",
            "2",
            "--db",
            url,
        ],
        check=True,
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    conn = sqlite3.connect(db_file)
    trace_id = conn.execute(
        "SELECT trace_id FROM alamos_spans GROUP BY trace_id "
        "ORDER BY COUNT(DISTINCT service) DESC, COUNT(*) DESC, MAX(status = 'error') DESC "
        "LIMIT 1"
    ).fetchone()[0]
    # The frame: the most frequent root span name (what the page offers first).
    frame = conn.execute(
        "SELECT name FROM alamos_spans WHERE parent_span_id IS NULL "
        "GROUP BY name ORDER BY COUNT(*) DESC, name LIMIT 1"
    ).fetchone()[0]
    conn.close()
    store_spikes(url, frame)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(url, rules=DEMO_RULES, rules_file="the demo's rules"), log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    args.out.mkdir(parents=True, exist_ok=True)
    shots = [
        ("tree", "/?w=15m", "light", None),
        ("layer", "/layer/demo.api?w=15m", "light", None),
        ("trace", f"/trace/{trace_id}", "light", ".wf-row >> nth=2"),
        ("trace-dark", f"/trace/{trace_id}", "dark", ".wf-row >> nth=1"),
        ("search", "/search?w=15m&status=error", "light", None),
        ("analysis", f"/analysis?w=15m&frame={quote_plus(frame)}", "light", None),
        ("analysis-sections", f"/analysis?w=15m&frame={quote_plus(frame)}", "light", "#statistics"),
        ("analysis-rules", f"/analysis?w=15m&frame={quote_plus(frame)}", "light", "#rules"),
        ("sessions", "/sessions?w=15m", "light", None),
    ]
    chromium = os.environ.get("ALAMOS_TEST_CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for name, path, scheme, click in shots:
            # The analysis page's sections below the budgets: a taller page.
            height = 1000 if name == "analysis-sections" else 820
            page = browser.new_page(viewport={"width": 1300, "height": height}, color_scheme=scheme)
            page.goto(base + path)
            page.wait_for_selector("body[data-ready='1']")
            if click in ("#statistics", "#rules"):  # the sections below the budgets
                page.evaluate("s => document.querySelector(s).scrollIntoView()", click)
            elif click:
                page.click(click)
            page.screenshot(path=str(args.out / f"{name}.png"))
            page.close()
            print(f"{args.out / name}.png")
        browser.close()
    server.should_exit = True
    thread.join(10)


if __name__ == "__main__":
    main()
