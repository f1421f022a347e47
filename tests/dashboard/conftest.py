"""Fixtures of the dashboard tests: a seeded database per backend, the real
app under uvicorn on 127.0.0.1, and Debian's chromium driven by Playwright.

``backend`` is module-scoped and parametrised (SQLite file, then PostgreSQL)
so each module seeds each database and starts each server once; the browser
is started once per session.  Without chromium (or PostgreSQL) the tests are
skipped, and fail when ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from alamos.dashboard import create_app

try:
    from seed import seed
except ImportError:
    from tests.dashboard.seed import seed

CHROMIUM = os.environ.get("ALAMOS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_HINT = (
    "the dashboard's browser tests need Debian's chromium (apt-get install chromium; "
    "scripts/test.sh installs it as root) and playwright from PyPI (the dev extra); "
    "playwright's own browser download is not used"
)


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _unavailable(message: str) -> None:
    if _on_ci():
        pytest.fail(f"{message} (CI=true, so this is a failure): {CHROMIUM_HINT}")
    pytest.skip(f"{message}: {CHROMIUM_HINT}")


class ThreadServer:
    """uvicorn serving ``app`` in a thread, on a free port of 127.0.0.1."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
        assert not self.thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """``serve(db_url, **create_app_options)``: the base URL of a running dashboard."""
    servers: list[ThreadServer] = []

    def start(db: str, **options: Any) -> str:
        server = ThreadServer(create_app(db, **options))
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A seeded database (see ``seed.py``): ``(name, url)``."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("dash") / "alamos.db"
        url = f"sqlite:///{path}"
        seed(url)
        yield request.param, url
        return
    server = request.getfixturevalue("pg_server")
    url = server.create_database("alamos_dash")
    seed(url)
    yield request.param, url
    server.drop_database(url)


@pytest.fixture(scope="module")
def site(backend: Any) -> Iterator[str]:
    """The base URL of the dashboard over the seeded database."""
    server = ThreadServer(create_app(backend[1]))
    yield server.url
    server.stop()


# Module scope, not session: Playwright's sync API keeps an asyncio loop
# marked running in the main thread while it is open, and every async test
# run after it (anyio's asyncio runner) then fails with "Cannot run the event
# loop while another loop is running".  Closing it after each module keeps the
# rest of the suite unaffected (a launch costs about a second).
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _unavailable(f"no chromium at {CHROMIUM}")
    with sync_playwright() as p:
        # --no-sandbox: the tests run as root in CI, where chromium's sandbox refuses.
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Page:
    """A browser page that records console errors, page errors and dialogs."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)

    def open(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        self.page.wait_for_selector("body[data-ready='1']")
        return response


@pytest.fixture
def page_at(browser: Any) -> Iterator[Callable[[str], Page]]:
    """``page_at(base_url)``: a new browser page on another dashboard (one
    ``serve`` started), checked for dialogs like ``page``."""
    made: list[tuple[Any, Page]] = []

    def make(base: str) -> Page:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        p = Page(context.new_page(), base)
        made.append((context, p))
        return p

    yield make
    for context, p in made:
        context.close()
        assert p.dialogs == [], f"a dialog opened: {p.dialogs}"


@pytest.fixture
def page(browser: Any, site: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    p = Page(context.new_page(), site)
    yield p
    context.close()
    assert p.dialogs == [], f"a dialog opened: {p.dialogs}"
