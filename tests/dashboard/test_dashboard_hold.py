"""The trace page's hold button, on a SQLite file and on PostgreSQL: clicked in
Chromium it holds the trace (a row of ``alamos_holds``, through
alamos.retention) and the page shows the hold; released, the row is gone.  A
form on another origin, posted by the browser, and requests without or with
a foreign ``Origin`` are refused (403) and change nothing; a dashboard that
serves other machines also wants its token."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from alamos.retention import hold, list_holds

try:
    from seed import CHECKOUT, ORPHAN
except ImportError:
    from tests.dashboard.seed import CHECKOUT, ORPHAN

DAY_NS = 86_400 * 1_000_000_000
TOKEN = "t0ken-for-the-hold-tests-0123456789"


@pytest.fixture(autouse=True)
def no_holds(backend: Any) -> Iterator[None]:
    """Each test starts and ends without holds."""
    yield
    from alamos.retention import unhold

    for h in list_holds(backend[1]):
        unhold(backend[1], h.trace_id)


def test_hold_and_release_in_the_browser(page: Any, backend: Any) -> None:
    url = backend[1]
    page.open(f"/trace/{CHECKOUT}")
    assert page.page.locator("#unhold-form").count() == 0
    page.page.fill("#hold-form input[name=reason]", "post-mortem <b>#12</b>")
    page.page.select_option("#hold-form select[name=for]", "7d")
    before = time.time_ns()
    page.page.click("#hold-form button")
    page.page.wait_for_selector("#unhold-form")
    page.page.wait_for_selector("body[data-ready='1']")
    after = time.time_ns()
    assert page.page.url.endswith(f"/trace/{CHECKOUT}")  # redirected back (303)
    (held,) = list_holds(url)
    assert held.trace_id == CHECKOUT and held.reason == "post-mortem <b>#12</b>"
    assert held.until_ns is not None and before + 7 * DAY_NS <= held.until_ns <= after + 7 * DAY_NS
    assert page.page.inner_text("#hold-reason") == "post-mortem <b>#12</b>"  # as text
    until = time.strftime("%Y-%m-%d", time.gmtime(held.until_ns / 1e9))
    assert page.page.inner_text("#hold-until").startswith(f"until {until} ")
    assert page.page.locator("#hold b").count() == 0
    # The waterfall is still there, and another trace is not held.
    assert page.page.locator(".wf-row").count() == 6
    page.open(f"/trace/{ORPHAN}")
    assert page.page.locator("#hold-form").count() == 1
    # Release it.
    page.open(f"/trace/{CHECKOUT}")
    page.page.click("#unhold-form button")
    page.page.wait_for_selector("#hold-form")
    assert list_holds(url) == []
    # Held until released (no duration), with no reason given.
    page.page.click("#hold-form button")
    page.page.wait_for_selector("#unhold-form")
    (held,) = list_holds(url)
    assert held.until_ns is None and held.reason == "held from the dashboard"
    assert page.page.inner_text("#hold-until") == "until released"
    assert page.errors == []


class _Evil(BaseHTTPRequestHandler):
    """Another site: a page whose form posts to the dashboard."""

    target = ""

    def do_GET(self) -> None:
        body = (
            f'<!doctype html><form method="post" action="{self.target}">'
            '<input type="hidden" name="action" value="hold">'
            '<input type="hidden" name="reason" value="evil">'
            '<button id="go" type="submit">win a prize</button></form>'
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def evil_site(site: str) -> Iterator[str]:
    handler = type("Evil", (_Evil,), {"target": f"{site}/trace/{CHECKOUT}/hold"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_cross_site_form_is_refused(browser: Any, evil_site: str, backend: Any) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(evil_site)
        with page.expect_navigation() as nav:
            page.click("#go")
        response = nav.value
        assert response is not None and response.status == 403
        assert "Forbidden" in page.inner_text("body")
    finally:
        context.close()
    assert list_holds(backend[1]) == []


def test_origin_check_over_http(site: str, backend: Any) -> None:
    url = backend[1]
    post = f"{site}/trace/{CHECKOUT}/hold"
    form = {"action": "hold", "reason": "x"}
    host = site.removeprefix("http://")
    with httpx.Client() as client:
        for headers in (
            {},  # neither Origin nor Referer
            {"Origin": "http://evil.example"},
            {"Origin": "null"},
            {"Origin": f"http://{host}.evil.example"},
            {"Referer": f"http://evil.example/trace/{CHECKOUT}"},
            {"Origin": "http://evil.example", "Referer": f"{site}/trace/{CHECKOUT}"},
            {"Origin": f"ftp://{host}"},
        ):
            r = client.post(post, data=form, headers=headers)
            assert r.status_code == 403, headers
            assert "Origin" in r.text
        assert list_holds(url) == []
        # The dashboard's own pages: by Origin (the scheme is not compared: a
        # TLS proxy in front), or by Referer.
        r = client.post(post, data=form, headers={"Origin": site})
        assert r.status_code == 303 and r.headers["location"] == f"/trace/{CHECKOUT}"
        assert [h.trace_id for h in list_holds(url)] == [CHECKOUT]
        r = client.post(post, data={"action": "unhold"}, headers={"Referer": f"{site}/x"})
        assert r.status_code == 303 and list_holds(url) == []
        r = client.post(post, data=form, headers={"Origin": f"https://{host}"})
        assert r.status_code == 303
        # Bad forms: a page saying what is wrong, nothing changed.
        ok = {"Origin": site}
        r = client.post(post, data={"action": "delete"}, headers=ok)
        assert r.status_code == 400 and "use hold or unhold" in r.text
        r = client.post(post, data={"action": "hold", "for": "2y"}, headers=ok)
        assert r.status_code == 400 and "1d, 7d, 30d" in r.text
        r = client.post(f"{site}/trace/not-a-trace/hold", data=form, headers=ok)
        assert r.status_code == 404
        assert [h.reason for h in list_holds(url)] == ["x"]
        # Reading still needs no Origin.
        assert client.get(f"{site}/trace/{CHECKOUT}").status_code == 200


def test_expired_hold_is_shown(site: str, backend: Any) -> None:
    hold(backend[1], CHECKOUT, reason="old", until_ns=time.time_ns() - DAY_NS)
    text = httpx.get(f"{site}/trace/{CHECKOUT}").text
    assert 'id="hold-form"' in text and "Its hold (old) ended" in text


def test_remote_needs_the_token_too(serve: Any, backend: Any) -> None:
    base = serve(backend[1], token=TOKEN, loopback_only=False)
    post = f"{base}/trace/{CHECKOUT}/hold"
    form = {"action": "hold", "reason": "remote"}
    with httpx.Client() as client:
        assert client.post(post, data=form, headers={"Origin": base}).status_code == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        r = client.post(post, data=form, headers={**bearer, "Origin": "http://evil.example"})
        assert r.status_code == 403
        assert list_holds(backend[1]) == []
        r = client.post(post, data=form, headers={**bearer, "Origin": base})
        assert r.status_code == 303
    assert [h.reason for h in list_holds(backend[1])] == ["remote"]
