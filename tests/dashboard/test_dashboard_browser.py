"""Every page of the dashboard in a real browser (Debian's chromium through
Playwright), on a SQLite file and on PostgreSQL, over the known database of
``seed.py``: no console error, charts drawn, filters, links, the waterfall
of the 3-service trace, and injection payloads shown as text.

Screenshots go to ``ALAMOS_DASHBOARD_SHOTS`` when it is set (the README's
are made from ``alamos demo`` data by scripts/dashboard_screenshots.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

try:
    from seed import (
        CHECKOUT,
        CHECKOUT_CRITICAL,
        CHECKOUT_DEPTH,
        CHECKOUT_ORDER,
        EVIL,
        IDS,
        IMG,
        ORPHAN,
        SCRIPT,
        SESSION,
    )
except ImportError:
    from tests.dashboard.seed import (
        CHECKOUT,
        CHECKOUT_CRITICAL,
        CHECKOUT_DEPTH,
        CHECKOUT_ORDER,
        EVIL,
        IDS,
        IMG,
        ORPHAN,
        SCRIPT,
        SESSION,
    )

# Reads the pixels of each chart's canvas: true when some are not transparent.
CANVAS_DRAWN = """
() => Array.from(document.querySelectorAll('figure.chart')).map(fig => {
  const c = fig.querySelector('canvas');
  if (!c) return {id: fig.id, drawn: false};
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
  return {id: fig.id, drawn: painted > 500, rendered: fig.dataset.rendered,
          axes: JSON.parse(fig.dataset.axes || '[]'),
          legend: Array.from(fig.querySelectorAll('.u-legend .u-label')).map(e => e.textContent)};
})
"""


def _shot(page: Any, name: str, backend: Any) -> None:
    where = os.environ.get("ALAMOS_DASHBOARD_SHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        page.page.screenshot(path=str(Path(where) / f"{name}-{backend[0]}.png"), full_page=True)


def _charts_ok(page: Any, expected: int) -> list[dict[str, Any]]:
    charts = page.page.evaluate(CANVAS_DRAWN)
    assert len(charts) == expected
    for c in charts:
        assert c["rendered"] == "1", c
        assert c["drawn"], f"chart {c['id']} has a blank canvas"
        assert c["axes"][0] == "time (UTC)" and c["axes"][1], c
        assert len(c["legend"]) >= 2, c
    return charts


def _rows(page: Any) -> dict[str, dict[str, str]]:
    return page.page.evaluate(
        """() => Object.fromEntries(
            Array.from(document.querySelectorAll('tr.layer-row')).map(tr => [
                tr.dataset.path,
                Object.fromEntries(Array.from(tr.querySelectorAll('td[data-col]'))
                    .map(td => [td.dataset.col, td.textContent.trim()]))]))"""
    )


def test_tree(page: Any, backend: Any) -> None:
    page.open("/")
    rows = _rows(page)
    assert list(rows) == ["shop", "shop.api", "shop.cart", "shop.db", "shop.evil"]
    assert rows["shop.api"] == {"spans": "103", "errors": "5", "p50": "50.0 ms", "p99": "100.0 ms"}
    assert rows["shop.cart"]["spans"] == "3"
    assert rows["shop.db"] == {"spans": "2", "errors": "1", "p50": "3.000 ms", "p99": "30.0 ms"}
    api = page.page.locator("tr[data-path='shop.api']")
    assert api.locator(".lvl").all_inner_texts() == ["I 3", "W 1", "E 2"]
    assert api.locator("svg.sparkline polyline").count() == 1
    _shot(page, "tree", backend)
    # Filters: the level (prod drops the debug span and the DEBUG logs)...
    page.page.select_option("select[name=level]", "prod")
    page.page.click("#tree-filters button")
    page.page.wait_for_selector("body[data-ready='1']")
    assert "level=prod" in page.page.url
    rows = _rows(page)
    assert rows["shop.cart"]["spans"] == "2"
    cart = page.page.locator("tr[data-path='shop.cart'] .lvl").all_inner_texts()
    assert cart == ["I 1"]
    # ...and the service.
    page.open("/?service=cart")
    assert list(_rows(page)) == ["shop", "shop.cart"]
    assert page.errors == []


def test_tree_row_opens_layer(page: Any) -> None:
    page.open("/?w=24h")
    page.page.click("tr[data-path='shop.api'] td.num >> nth=0")  # the row, not its link
    page.page.wait_for_url("**/layer/shop.api?w=24h")
    page.page.wait_for_selector("body[data-ready='1']")
    assert page.page.inner_text("#layer-title") == "shop.api"
    assert page.errors == []


def test_layer(page: Any, backend: Any) -> None:
    page.open("/layer/shop.api")
    # latency, throughput, errors, then the counter, gauge and histogram
    charts = _charts_ok(page, 6)
    titles = page.page.locator("figure.chart figcaption").all_inner_texts()
    assert titles[3:] == ["latency_seconds (quantile)", "queue (value)", "requests (per second)"]
    assert charts[0]["legend"][1:] == ["p50 ms", "p99 ms"]
    slowest = page.page.locator("#slowest tbody tr")
    assert slowest.count() == 10
    assert slowest.nth(0).locator("td").nth(1).inner_text() == "100.0 ms"
    errors = page.page.locator("#errors tbody tr")
    assert errors.count() == 5
    assert page.page.locator("#logs tbody tr").count() == 6
    # The report as a collapsible JSON tree.
    report = page.page.locator("#reports details").first
    assert report.get_attribute("open") is not None
    assert "pools" in page.page.inner_text("#reports")
    report.locator("summary").first.click()
    assert report.get_attribute("open") is None
    _shot(page, "layer", backend)
    # The log filters: level, then text.
    page.page.select_option("select[name=log_level]", "WARNING")
    page.page.click("#log-filters button")
    page.page.wait_for_selector("body[data-ready='1']")
    assert page.page.locator("#logs tbody tr").count() == 3
    page.page.fill("input[name=q]", "error 5")
    page.page.click("#log-filters button")
    page.page.wait_for_selector("body[data-ready='1']")
    assert page.page.locator("#logs td.msg").all_inner_texts() == ["api error 5"]
    # A slow span's link leads to its trace.
    page.open("/layer/shop.api")
    link = page.page.locator("#slowest a.tid").nth(0)
    href = link.get_attribute("href")
    link.click()
    page.page.wait_for_url("**" + href)
    page.page.wait_for_selector("#waterfall")
    assert page.errors == []


def test_waterfall(page: Any, backend: Any) -> None:
    page.open(f"/trace/{CHECKOUT}")
    rows = page.page.evaluate(
        """() => Array.from(document.querySelectorAll('.wf-row')).map(r => {
            const bar = r.querySelector('.wf-bar').getBoundingClientRect();
            return {span: r.dataset.span, depth: +r.dataset.depth,
                    critical: r.classList.contains('critical'),
                    error: r.classList.contains('error'),
                    colour: r.querySelector('.wf-bar').className,
                    x: bar.left, w: bar.width};
        })"""
    )
    letters = {v: k for k, v in IDS.items()}
    assert [letters[r["span"]] for r in rows] == CHECKOUT_ORDER
    assert [r["depth"] for r in rows] == CHECKOUT_DEPTH
    assert {letters[r["span"]] for r in rows if r["critical"]} == CHECKOUT_CRITICAL
    assert [letters[r["span"]] for r in rows if r["error"]] == ["C"]
    by = {letters[r["span"]]: r for r in rows}
    # Bars to scale: A spans 100 ms from 0; B starts at 10 ms and lasts 50.
    unit = by["A"]["w"] / 100
    assert abs(by["B"]["x"] - by["A"]["x"] - 10 * unit) < 2
    assert abs(by["B"]["w"] - 50 * unit) < 2
    assert abs(by["D"]["x"] - by["A"]["x"] - 65 * unit) < 2
    # Coloured by service: web, cart and store each their own colour.
    assert by["A"]["colour"] == by["D"]["colour"] == by["F"]["colour"]
    assert len({by["A"]["colour"], by["B"]["colour"], by["C"]["colour"]}) == 3
    assert by["B"]["colour"] == by["E"]["colour"]
    assert page.page.locator("#orphans").count() == 0
    # Selecting a span shows its attributes, events, error, stack and logs.
    page.page.click(f".wf-row[data-span='{IDS['C']}']")
    detail = page.page.locator(f"#detail-{IDS['C']}")
    assert detail.is_visible()
    text = detail.inner_text()
    assert "RuntimeError: boom" in text and "Traceback" in text and "retry" in text
    page.page.click(f".wf-row[data-span='{IDS['A']}']")
    assert not detail.is_visible()
    text = page.page.inner_text(f"#detail-{IDS['A']}")
    assert "alice" in text and "api info 1" in text and "api error 6" in text
    _shot(page, "trace", backend)
    # Its layer link.
    page.page.click(f"#detail-{IDS['A']} a[href^='/layer/']")
    page.page.wait_for_url("**/layer/shop.api")
    assert page.errors == []


def test_orphan_warning(page: Any) -> None:
    page.open(f"/trace/{ORPHAN}")
    assert "missing parent" in page.page.inner_text("#orphans")
    assert page.page.locator(".wf-row.orphan").count() == 1
    assert page.errors == []


def test_search(page: Any, backend: Any) -> None:
    page.open("/search")
    results = page.page.locator("#results tbody tr")
    assert results.count() == 25
    assert page.page.locator("#next").count() == 1
    first = results.nth(0).inner_text()
    page.page.click("#next")
    page.page.wait_for_selector("body[data-ready='1']")
    assert "page=1" in page.page.url and results.nth(0).inner_text() != first
    _shot(page, "search", backend)

    def search(**fields: str) -> list[str]:
        page.open("/search")
        for name, value in fields.items():
            if name == "status":
                page.page.select_option("select[name=status]", value)
            else:
                page.page.fill(f"input[name={name}]", value)
        page.page.click("#search-form button")
        page.page.wait_for_selector("body[data-ready='1']")
        hrefs = page.page.locator("#results a.tid").evaluate_all("a => a.map(x => x.href)")
        return sorted(h.rsplit("/", 1)[1] for h in hrefs)

    assert search(name="checkout") == [CHECKOUT]
    assert search(attr="user=alice") == [CHECKOUT]
    assert search(attr="item=7") == [f"{7:032x}"]
    assert search(min_ms="95", path="shop.api") == sorted(
        [CHECKOUT] + [f"{i:032x}" for i in range(95, 101)]
    )
    assert search(status="error") == sorted([CHECKOUT] + [f"{i:032x}" for i in range(20, 101, 20)])
    assert search(path="shop.db") == sorted([CHECKOUT, ORPHAN])
    assert page.errors == []


def test_injection_shows_as_text(page: Any, backend: Any) -> None:
    page.open("/")
    page.open("/layer/shop.evil")
    assert IMG in page.page.inner_text("#slowest")
    assert IMG in page.page.inner_text("#logs") and SCRIPT in page.page.inner_text("#logs")
    reports = page.page.inner_text("#reports")
    assert IMG in reports and SCRIPT in reports
    page.open(f"/trace/{EVIL}")
    page.page.click(".wf-row")
    detail = page.page.inner_text("#details")
    assert IMG in detail and SCRIPT in detail
    assert IMG in page.page.inner_text("#waterfall")
    page.open("/search?name=" + IMG.replace(" ", "+").replace("=", "%3D"))
    assert page.page.input_value("input[name=name]") == IMG
    assert page.page.locator("#results a.tid").count() == 1
    # Nothing became markup: no <img>, no script but the dashboard's two files.
    for path in ("/layer/shop.evil", f"/trace/{EVIL}"):
        page.open(path)
        assert page.page.locator("img").count() == 0
        srcs = page.page.locator("script").evaluate_all("s => s.map(x => x.getAttribute('src'))")
        assert srcs == ["/static/vendor/uplot/uPlot.iife.min.js", "/static/dashboard.js"]
    page.page.wait_for_timeout(200)  # let any onerror fire: the fixture checks for dialogs
    assert page.errors == []


def test_analysis(page: Any, backend: Any) -> None:
    page.open("/analysis?frame=GET+/checkout&w=24h")
    assert "GET /checkout" in page.page.inner_text("#frame-summary")
    budgets = page.page.locator("#budget-table tbody tr td:first-child").all_inner_texts()
    assert set(budgets) == {"cart.total", "cache.get", "SELECT items", "render", "audit"}
    _charts_ok(page, 1)
    page.page.select_option("select[name=frame]", "GET /item")
    page.page.click("#frame-form button")
    page.page.wait_for_selector("body[data-ready='1']")
    assert "100 frames" in page.page.inner_text("#frame-summary")
    _shot(page, "analysis", backend)
    assert page.errors == []


def test_sessions(page: Any, backend: Any) -> None:
    page.open("/sessions")
    rows = page.page.locator("#sessions tbody tr")
    assert rows.count() == 1
    cells = rows.nth(0).locator("td").all_inner_texts()
    assert cells[0] == SESSION and cells[1] == "shop.cart"
    assert cells[5:] == ["1", "0", "4"]
    _shot(page, "sessions", backend)
    rows.nth(0).locator("a").click()
    page.page.wait_for_selector("#session-traces")
    assert page.page.locator("#session-logs tbody tr").count() == 4
    page.page.locator("#session-traces a.tid").click()
    page.page.wait_for_selector("#waterfall")
    assert page.page.locator(".wf-row").count() == 1
    assert page.errors == []


def test_refresh_toggle(page: Any) -> None:
    page.open("/")
    page.page.check("#auto-refresh")
    page.open("/search")
    assert page.page.is_checked("#auto-refresh")  # remembered across pages
    page.page.uncheck("#auto-refresh")
    assert page.errors == []
