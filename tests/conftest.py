"""Shared fixtures.

Databases:

* ``pg_server`` (session): a throwaway PostgreSQL server (see ``tests/pg.py``),
  or the one of ``ALAMOS_TEST_PG_URL``.  Without PostgreSQL the tests that use
  it are skipped, or fail when ``CI=true``.
* ``pg_url``: the URL of a fresh, empty PostgreSQL database for one test.
* ``sqlite_url``: the URL of a SQLite file in the test's ``tmp_path``.
* ``db_url``: both of the above in turn (parametrised; the PostgreSQL case is
  marked ``postgres``).

Trees:

* ``rec``: the ``alamos_recorder`` of the pytest plugin (a fresh Recorder);
* ``root``: ``rec.new("server")``, every level on.  A test module that needs
  another root defines its own ``root``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alamos import Experiment
from alamos.testing import Recorder

try:  # tests/ on sys.path (rootdir-relative imports, the default)
    from pg import INSTALL_HINT, PgServer, PgUnavailable, pg_server_from_env
except ImportError:  # tests/ a package
    from tests.pg import INSTALL_HINT, PgServer, PgUnavailable, pg_server_from_env


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server for the session: ``.url``, ``.stop()``, ``.start()``
    (``.controllable`` is False for ``ALAMOS_TEST_PG_URL``)."""
    try:
        server = pg_server_from_env()
    except PgUnavailable as exc:
        message = f"no PostgreSQL server: {exc}"
        if _on_ci():
            pytest.fail(message + f"\n(CI=true, so this is a failure)\n{INSTALL_HINT}")
        pytest.skip(message)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (dropped after the test)."""
    if not pg_server.running and pg_server.controllable:
        pg_server.start()  # a previous test left it stopped
    url: str | None
    try:
        url = pg_server.create_database()
    except Exception:
        url = None  # no CREATEDB right on ALAMOS_TEST_PG_URL's server
    if url is None:
        pg_server.drop_alamos_tables()
        yield pg_server.url
        pg_server.drop_alamos_tables()
        return
    yield url
    if not pg_server.running and pg_server.controllable:
        pg_server.start()
    pg_server.drop_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file (not created yet) in the test's tmp_path."""
    return f"sqlite:///{tmp_path / 'alamos.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: Any) -> str:
    """Each backend in turn: a SQLite file, then a PostgreSQL database."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def rec(alamos_recorder: Recorder) -> Recorder:
    return alamos_recorder


@pytest.fixture
def root(rec: Recorder) -> Experiment:
    return rec.new("server")
