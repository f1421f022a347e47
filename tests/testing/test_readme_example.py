"""The README's "Testing your code" example, run as is.

The code blocks of that section must appear verbatim in this file:
``test_the_readme_shows_this_code`` checks it, so the example cannot rot.
"""

from __future__ import annotations

import re
from pathlib import Path

# --- the README example starts here ---------------------------------------------
import anyio
import pytest

import alamos
from alamos.testing import Recorder


def store(data: bytes, exp: alamos.Experiment = alamos.NOOP) -> int:
    """Write ``data`` in pages of 4 KiB; return the number of pages."""
    pages_written = exp.metrics.counter("pages", "Pages written", labelnames=["disk"])
    with exp.trace.prod("store") as span:
        span.set("bytes", len(data))
        pages = 0
        for _ in range(0, len(data), 4096):
            with exp.trace.debug("page"):
                pages += 1
                pages_written.labels(disk="ssd").inc()
        if pages > 2:
            exp.log.warning("large write: {pages} pages", pages=pages)
        return pages


def test_store(alamos_recorder: Recorder) -> None:
    server = alamos_recorder.new("server")  # a fresh tree, everything on
    assert store(b"x" * 10_000, server.sub("cesium")) == 3

    rec = alamos_recorder
    # spans: exactly one "store" span, with its attributes...
    assert rec.span(name="store", attributes={"bytes": 10_000}).status == "unset"
    # ...and the shape of the trace
    rec.assert_tree(
        """
        server.cesium.store
          server.cesium.page
          server.cesium.page
          server.cesium.page
        """
    )
    # logs
    assert rec.log(level="warning").message == "large write: 3 pages"
    # metrics: the live value, no export to wait for
    assert rec.metric("server.cesium", "pages", disk="ssd") == 3


@pytest.mark.alamos_no_errors  # fail if anything logs at ERROR or above
def test_store_small(alamos_experiment: alamos.Experiment, alamos_recorder: Recorder) -> None:
    store(b"tiny", alamos_experiment)  # alamos_experiment is alamos_recorder.new("test")
    assert [s.name for s in alamos_recorder.spans(path="test.*")] == ["page", "store"]
    assert alamos_recorder.logs() == []


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
async def test_store_async(alamos_recorder: Recorder) -> None:
    api = alamos_recorder.new("api")
    with api.trace.prod("request"):
        await anyio.sleep(0)
        store(b"x" * 5000, api.sub("cesium"))
    alamos_recorder.assert_tree(
        """
        api.request
          api.cesium.store
            api.cesium.page
            api.cesium.page
        """
    )


# shop.py, the application: its tree is made when the module is imported
shop = alamos.new("shop", console=False)
queries = shop.sub("repo").metrics.counter("queries", "Queries run")


def handle(path: str) -> None:
    with shop.trace.prod(f"GET {path}"), shop.sub("repo").trace.prod("select"):
        queries.inc()


# test_shop.py
def test_orders(alamos_recorder: Recorder) -> None:
    with alamos_recorder.attach(shop):  # any experiment of the tree
        handle("/orders")
    alamos_recorder.assert_tree(
        """
        shop.GET /orders
          shop.repo.select
        """
    )
    assert alamos_recorder.metric("shop.repo", "queries") == 1  # counted since the attach


# --- the README example ends here -----------------------------------------------


def test_orders_again_counts_from_its_own_attach(alamos_recorder: Recorder) -> None:
    handle("/warm-up")  # before the attach: not seen
    test_orders(alamos_recorder)
    assert queries.value() >= 2  # the module-level counter itself keeps counting


def test_store_without_instrumentation() -> None:
    assert store(b"x" * 4097) == 2  # alamos.NOOP: every call is a no-op


def _section() -> str:
    root = Path(__file__).resolve().parents[2]
    for doc in (root / "README.md", root / "docs" / "testing.md"):
        if doc.exists():
            text = doc.read_text(encoding="utf-8")
            start = text.find("## Testing your code")
            if start >= 0:
                end = text.find("\n## ", start + 1)
                return text[start : end if end >= 0 else len(text)]
    pytest.fail('no "## Testing your code" section in README.md or docs/testing.md')


def test_the_readme_shows_this_code() -> None:
    """Every paragraph (blank-line separated) of every python block of the
    section is in this file, verbatim."""
    blocks = re.findall(r"```python\n(.*?)```", _section(), flags=re.S)
    assert blocks, "the section has no python code block"
    source = Path(__file__).read_text(encoding="utf-8")
    for block in blocks:
        for chunk in re.split(r"\n\s*\n", block.strip()):
            assert chunk in source, f"README code not in {__file__}:\n{chunk}"
