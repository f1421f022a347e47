"""The analysis page's sections in Chromium, on a SQLite file and on
PostgreSQL: the span statistics of the window (a layer, per name or per
layer), the stored spikes linking to their traces, the recording rules'
latest series (with ``--rules``, and the note without), and the frame
budgets over the window's newest frames.

The database is ``seed.py``'s, plus what a tree and the commands would have
written for its spans: statistics rows (each service's spans through the
tree's own :class:`~alamos.stats.live.LiveStats`), the live series of two
rules (a :class:`~alamos.rules.RuleEngine` of the tree rooted at ``shop``),
the same rules backfilled (``alamos rules backfill``), and the spikes of the
``GET /item`` frames stored (``alamos budgets --store-spikes``).

The ``GET /item`` frames last 1, 2, ... 100 ms in start order, so a frame of
i ms is a spike (over 1.3 times the mean of the 32 before it, i - 16.5 ms)
for i = 33 to 71: 39 spikes; among the newest 40 frames (61 to 100 ms),
11.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alamos.core.records import SpanRecord
from alamos.report.query import store_spikes
from alamos.report.sql import SQLExporter
from alamos.rules import RuleEngine, RuleSet
from alamos.rules.backfill import backfill
from alamos.stats.live import LiveStats

try:
    from seed import AGO, records, seed
except ImportError:
    from tests.dashboard.seed import AGO, records, seed

RULES_TOML = """
[[rules]]
metric = "item_requests"
name = "GET /item"
group_by = ["status"]

[[rules]]
metric = "item_seconds"
aggregation = "duration_histogram"
name = "GET /item"
buckets = [0.05, 0.1]
"""
MINUTE = 60 * 1_000_000_000


def seed_analysis(url: str, rules: RuleSet) -> None:
    now = seed(url)
    spans = [r for r in records(now) if isinstance(r, SpanRecord)]
    rows: list[Any] = []
    for service, node in sorted({(s.service, s.node) for s in spans}):
        live = LiveStats(MINUTE, lambda s=service, n=node: (s, n))
        live.observe([s for s in spans if s.service == service])
        rows += live.emit()
    engine = RuleEngine(rules, path="shop")
    engine.observe(spans)
    rows += engine.full("web", "n1")
    exporter = SQLExporter(url)
    try:
        exporter.export(rows)
    finally:
        exporter.close()
    backfill(url, rules, since_ns=now - AGO - 5 * MINUTE, step_ns=MINUTE)
    assert store_spikes(url, "GET /item") == 39


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = tmp_path_factory.mktemp("rules") / "rules.toml"
    path.write_text(RULES_TOML)
    return path


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def analysis_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, rules_file: Path
) -> Iterator[tuple[str, str]]:
    rules = RuleSet.from_toml(rules_file)
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('analysis') / 'alamos.db'}"
        seed_analysis(url, rules)
        yield request.param, url
        return
    server = request.getfixturevalue("pg_server")
    url = server.create_database("alamos_dash_analysis")
    seed_analysis(url, rules)
    yield request.param, url
    server.drop_database(url)


def _shot(page: Any, name: str, backend: str) -> None:
    where = os.environ.get("ALAMOS_DASHBOARD_SHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        page.page.screenshot(path=str(Path(where) / f"{name}-{backend}.png"), full_page=True)


def _table(page: Any, selector: str) -> list[list[str]]:
    return page.page.evaluate(
        """sel => Array.from(document.querySelectorAll(sel + ' tbody tr')).map(
            tr => Array.from(tr.querySelectorAll('td')).map(td => td.textContent.trim()))""",
        selector,
    )


def _ms(text: str) -> float:
    value, unit = text.split()
    return float(value.replace(",", "")) * (1000 if unit == "s" else 1)


def test_statistics(serve: Any, page_at: Any, analysis_db: tuple[str, str]) -> None:
    page = page_at(serve(analysis_db[1]))
    page.open("/analysis?frame=GET+/item")
    lines = _table(page, "#stats-table")
    assert [line[:2] for line in lines[:1]] == [["shop.api", "GET /item"]]
    item = lines[0]
    # 100 frames of 1..100 ms, 5 in error: mean 50.5 ms, population stddev
    # sqrt((100^2 - 1) / 12) = 28.87 ms; p50 and p99 from the sketch, within 1%.
    assert item[2:5] == ["100", "5.0%", "50.5 ms"]
    assert item[5] == "28.9 ms" and item[8] == "100.0 ms"
    assert math.isclose(_ms(item[6]), 50, rel_tol=0.01)
    assert math.isclose(_ms(item[7]), 99, rel_tol=0.01)
    counts = {(line[0], line[1]): line[2] for line in lines}
    assert counts[("shop.cart", "cart.total")] == "2"
    assert sum(int(c) for c in counts.values()) == 109  # every stored span
    assert "statistics rows" in page.page.inner_text("#stats-rows")
    # The layer filter, then per layer.
    page.page.select_option("#stats-form select[name=path]", "shop.cart")
    page.page.click("#stats-form button")
    page.page.wait_for_selector("body[data-ready='1']")
    assert "path=shop.cart" in page.page.url
    lines = _table(page, "#stats-table")
    assert [(line[0], line[1], line[2]) for line in lines] == [
        ("shop.cart", "cart.total", "2"),
        ("shop.cart", "cache.get", "1"),
    ]
    page.page.select_option("#stats-form select[name=path]", "")
    page.page.select_option("#stats-form select[name=by]", "path")
    page.page.click("#stats-form button")
    page.page.wait_for_selector("body[data-ready='1']")
    by_path = {line[0]: line[1] for line in _table(page, "#stats-table")}
    assert by_path == {"shop.api": "103", "shop.cart": "3", "shop.db": "2", "shop.evil": "1"}
    # The frame choice survives the statistics form, and a layer link leads there.
    assert "GET /item" in page.page.inner_text("#frame-summary")
    page.page.click("#stats-table a >> text=shop.db")
    page.page.wait_for_url("**/layer/shop.db?w=1h")
    assert page.errors == []


def test_stored_spikes(serve: Any, page_at: Any, analysis_db: tuple[str, str]) -> None:
    page = page_at(serve(analysis_db[1]))
    page.open("/analysis")
    rows = _table(page, "#spikes-table")
    assert len(rows) == 39
    # Newest first: the frame of 71 ms, against the mean of 39..70 ms.
    assert rows[0][:2] == ["GET /item", "shop.api"]
    assert rows[0][3:6] == ["71.0 ms", "54.5 ms", "1.30"]
    assert [r[3] for r in rows[-2:]] == ["34.0 ms", "33.0 ms"]
    link = page.page.locator("#spikes-table a.tid").first
    assert link.get_attribute("href") == f"/trace/{71:032x}"
    link.click()
    page.page.wait_for_selector("#waterfall")
    assert page.page.locator(".wf-row").count() == 1
    assert "71.0 ms" in page.page.inner_text("#waterfall")
    assert page.errors == []


def test_recording_rules(
    serve: Any, page_at: Any, analysis_db: tuple[str, str], rules_file: Path
) -> None:
    base = serve(analysis_db[1], rules=RuleSet.from_toml(rules_file), rules_file=str(rules_file))
    page = page_at(base)
    page.open("/analysis")
    assert page.page.locator("#rules-missing").count() == 0
    assert str(rules_file) in page.page.inner_text("#rules")
    titles = page.page.locator("#rules h3 code").all_inner_texts()
    assert titles == ["item_requests", "item_seconds"]
    counter, histogram = (
        page.page.evaluate(
            """i => Array.from(document.querySelectorAll('table.rule-series')[i]
                .querySelectorAll('tbody tr')).map(tr => Array.from(tr.querySelectorAll('td'))
                .map(td => td.textContent.trim()))""",
            i,
        )
        for i in (0, 1)
    )
    # Backfilled (path "rules", service alamos-rules) and live (the tree's
    # root path, service and node) agree.
    assert [(r[0], r[1], r[2], r[4]) for r in counter] == [
        ("rules", "alamos-rules / backfill", 'status="error"', "5"),
        ("rules", "alamos-rules / backfill", 'status="ok"', "95"),
        ("shop", "web / n1", 'status="error"', "5"),
        ("shop", "web / n1", 'status="ok"', "95"),
    ]
    # 100 observations summing 1 + 2 + ... + 100 ms = 5.05 s.
    assert [(r[0], r[4], r[5], r[6]) for r in histogram] == [
        ("rules", "100", "5.05", "0.0505"),
        ("shop", "100", "5.05", "0.0505"),
    ]
    _shot(page, "analysis-rules", analysis_db[0])
    assert page.errors == []
    # Without --rules, the section says how to get it.
    page = page_at(serve(analysis_db[1]))
    page.open("/analysis")
    assert "--rules FILE" in page.page.inner_text("#rules-missing")
    assert page.errors == []


def test_budgets_over_the_newest_frames(
    serve: Any, page_at: Any, analysis_db: tuple[str, str]
) -> None:
    page = page_at(serve(analysis_db[1], budget_frames=40))
    page.open("/analysis?frame=GET+/item")
    summary = page.page.inner_text("#frame-summary")
    assert "40 frames, mean 80.5 ms (min 61.0 ms, max 100.0 ms), 11 spikes" in summary
    assert "newest 40 of the window's 100 frames" in page.page.inner_text("#frames-limited")
    page.page.click("#all-frames")
    page.page.wait_for_selector("body[data-ready='1']")
    assert "frames=all" in page.page.url
    summary = page.page.inner_text("#frame-summary")
    assert "100 frames, mean 50.5 ms (min 1.000 ms, max 100.0 ms), 39 spikes" in summary
    assert page.page.locator("#frames-limited").count() == 0
    # A frame with fewer frames than the limit is whole: no note.
    page.open("/analysis?frame=GET+/checkout")
    assert page.page.locator("#frames-limited").count() == 0
    budgets = page.page.locator("#budget-table tbody tr td:first-child").all_inner_texts()
    assert set(budgets) == {"cart.total", "cache.get", "SELECT items", "render", "audit"}
    assert page.errors == []


def test_rules_option_errors(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from alamos.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text('[[rules]]\nmetric = "9 bad"\n')
    db = tmp_path / "a.db"
    result = CliRunner().invoke(main, ["dashboard", "--db", str(db), "--rules", str(bad)])
    assert result.exit_code == 2, result.output
    assert "--rules" in result.output and "metric" in result.output
    assert "Traceback" not in result.output
    missing = tmp_path / "missing.toml"
    result = CliRunner().invoke(main, ["dashboard", "--db", str(db), "--rules", str(missing)])
    assert result.exit_code == 2 and "missing.toml" in result.output
