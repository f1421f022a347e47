"""``alamos demo`` records a recording rule (requests by handler and HTTP
status) and prints its live series; they equal what the stored spans say,
and what a backfill of the same rule computes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from alamos.demo.rules import DEMO_RULES, rule_summary
from alamos.rules.backfill import compute

MINUTE = 60_000_000_000


def test_the_demo_prints_its_rule_and_the_numbers_are_the_spans(tmp_path: Path) -> None:
    start = time.time_ns()
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("ALAMOS_DB", None)
    result = subprocess.run(
        [sys.executable, "-m", "alamos.cli", "demo", "--seconds", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    url = f"sqlite:///{tmp_path / 'alamos.db'}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            counted = {
                (name, str(code)): n
                for name, code, n in conn.execute(
                    sa.text(
                        "SELECT name, json_extract(attributes, '$.\"http.response.status_code\"'), "
                        "COUNT(*) FROM alamos_spans WHERE path = 'demo.api' GROUP BY 1, 2"
                    )
                )
            }
    finally:
        engine.dispose()
    live = {
        (s["labels"]["name"], s["labels"]["code"]): s["value"] for s in rule_summary(url, start)
    }
    assert live == {k: float(n) for k, n in counted.items()}
    assert sum(live.values()) > 0
    assert "Recording rule demo_http_requests_total" in result.stdout
    for (name, code), n in counted.items():
        assert re.search(rf"│ {re.escape(name)} +│ {code} +│ +{n:,} │", result.stdout), (name, code)
    records, _ = compute(
        url, DEMO_RULES, since_ns=start, step_ns=MINUTE, until_ns=start + 3 * MINUTE
    )
    filled = {}
    for r in records:  # the last sample of each series
        filled[(r.labels["name"], r.labels["code"])] = r.value
    assert filled == live, json.dumps(sorted(map(str, filled.items())))
