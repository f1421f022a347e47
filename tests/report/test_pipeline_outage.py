"""Outage, end to end: the database goes away while producers run, and comes
back; meanwhile ``flush()`` returns True once records are in the spool, and
after recovery the spool is replayed: every record is stored exactly once.

PostgreSQL: the server is really stopped (``pg_ctl stop -m fast``) and
started again.  SQLite: the database's folder is moved away and a plain file
put in its place (root ignores permissions, so chmod would not do).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

import alamos

from .pipeline_support import (
    HANG,
    broken_log_links,
    broken_parent_links,
    count,
    duplicates,
    new_root,
    query,
    sqlite_unusable,
    wait_until,
)

PRODUCERS = 4


class Producers:
    """Threads recording requests (a span, a child span and a log each) until
    stopped; each request is tagged ``who:i`` so losses and doubles show."""

    def __init__(self, exp: alamos.Experiment) -> None:
        self.exp = exp
        self.stop = threading.Event()
        self.done = itertools.count()  # completed requests (atomic under the GIL)
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._main, args=(t,), daemon=True) for t in range(PRODUCERS)
        ]

    def _main(self, t: int) -> None:
        exp, storage = self.exp, self.exp.sub("storage")
        try:
            for i in itertools.count():
                if self.stop.is_set():
                    return
                with exp.trace.prod("request", attributes={"tag": f"{t}:{i}"}):
                    with storage.trace.debug("write"):
                        pass
                    exp.log.info("request {i}", i=i)
                next(self.done)
                time.sleep(0.001)  # a steady load, not a flood: nothing may be dropped
        except BaseException as exc:
            self.errors.append(exc)

    @property
    def count(self) -> int:
        text = repr(self.done)  # count(N): N completed so far
        return int(text[text.index("(") + 1 : -1])

    def wait_for(self, more: int) -> None:
        target = self.count + more
        wait_until(lambda: self.count >= target or bool(self.errors), f"{more} more requests")
        assert not self.errors, self.errors

    def __enter__(self) -> Producers:
        for th in self.threads:
            th.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for th in self.threads:
            th.join(HANG)
            assert not th.is_alive(), "a producer hung"
        assert not self.errors, self.errors


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[str, Callable[[], AbstractContextManager[None]]]:
    """A database URL, and a context manager during which it is unreachable."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'alamos.db'}"
        return url, lambda: sqlite_unusable(url)
    server: Any = request.getfixturevalue("pg_server")
    if not server.controllable:
        pytest.skip("ALAMOS_TEST_PG_URL's server cannot be stopped by the tests")
    pg_url = str(request.getfixturevalue("pg_url"))

    @contextlib.contextmanager
    def down() -> Iterator[None]:
        server.stop()
        try:
            yield
        finally:
            server.start()

    return pg_url, down


def test_outage_spools_then_replays_exactly_once(
    backend: tuple[str, Callable[[], AbstractContextManager[None]]], tmp_path: Path
) -> None:
    url, outage = backend
    # A queue far larger than the test needs: a drop would be a failure here.
    root = new_root("outage", url, tmp_path / "spool", max_queue=1_000_000)
    api = root.sub("api")
    with Producers(api) as producers:
        producers.wait_for(300)
        assert root.flush(HANG)
        stored_before = count(url, "alamos_spans")
        assert stored_before > 0
        assert root.stats().exporters  # the db= exporter is there
        (name,) = root.stats().exporters

        with outage():
            producers.wait_for(1000)  # recorded while the database is gone
            # Durable in the spool: flush says so although the database is down.
            assert root.flush(HANG)
            during = root.stats()
            assert during.exporters[name].failures > 0
            assert during.exporters[name].spooled > 0
            assert during.spool_pending_bytes > 0
            assert during.dropped == 0
            producers.wait_for(300)

        producers.wait_for(300)  # and more after it came back
    assert root.flush(HANG)
    # The spool is replayed once the exporter works again (retry with backoff).
    wait_until(lambda: root.stats().spool_pending_bytes == 0, "the spool to be replayed")
    stats = root.stats()
    assert stats.exporters[name].replayed > 0
    assert stats.dropped == 0
    assert stats.torn_lines == 0
    root.close(HANG)

    n = producers.count
    assert n > stored_before
    assert count(url, "alamos_spans", "name = 'request'") == n
    assert count(url, "alamos_spans", "name = 'write'") == n
    assert duplicates(url, "alamos_spans", "span_id") == 0
    assert broken_parent_links(url) == 0
    sqlite = url.startswith("sqlite")
    tag = "json_extract(attributes, '$.tag')" if sqlite else "attributes->>'tag'"
    assert int(query(url, f"SELECT count(DISTINCT {tag}) FROM alamos_spans")[0][0]) == n
    assert count(url, "alamos_logs") == n
    assert duplicates(url, "alamos_logs", "id") == 0
    assert broken_log_links(url) == 0
    paths = sorted(p for (p,) in query(url, "SELECT path FROM alamos_experiments"))
    assert paths == ["outage", "outage.api", "outage.api.storage"]
    assert not list((tmp_path / "spool").rglob("spool-*.jsonl"))  # nothing left behind
