"""A throwaway PostgreSQL server for the tests.

:func:`pg_server_from_env` returns the server the tests use: the one named by
``ALAMOS_TEST_PG_URL`` if set (not controllable: no stop/start), otherwise a
fresh cluster made with ``initdb`` in a temporary directory and started with
``pg_ctl`` on a free port of 127.0.0.1.  As root (initdb refuses to run as
root) the cluster belongs to the ``postgres`` user and the commands run
through ``runuser``/``su``.

Usable without pytest too: ``python tests/pg.py`` starts a server, prints its
URL and stops it on Enter.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "INSTALL_HINT",
    "PgServer",
    "PgUnavailable",
    "find_pg_bindir",
    "pg_server_from_env",
]

ENV_URL = "ALAMOS_TEST_PG_URL"

INSTALL_HINT = (
    "PostgreSQL is needed for these tests: install it (Debian/Ubuntu: "
    "`apt-get install postgresql`, which provides initdb and pg_ctl under "
    f"/usr/lib/postgresql/<version>/bin), or set {ENV_URL}=postgresql://user@host:port/db "
    "to use a running server (scripts/test.sh installs it when run as root)"
)


class PgUnavailable(RuntimeError):
    """No PostgreSQL server could be had."""


def find_pg_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, newest version first."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: _version_key(Path(p).parent.name),
        reverse=True,
    )
    for c in candidates:
        if (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    return None


def _version_key(name: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in name.split("."))
    except ValueError:
        return (0,)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_db(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


class PgServer:
    """A PostgreSQL server: ``url`` of its test database, ``stop()``/``start()``."""

    def __init__(
        self,
        url: str,
        *,
        bindir: Path | None = None,
        basedir: Path | None = None,
        port: int | None = None,
        run_as: str | None = None,
    ) -> None:
        self.url = url
        self.bindir = bindir
        self.basedir = basedir
        self.port = port
        self.run_as = run_as
        self.running = bindir is not None

    # -- construction ------------------------------------------------------

    @classmethod
    def external(cls, url: str) -> PgServer:
        """A server we do not control (``ALAMOS_TEST_PG_URL``)."""
        server = cls(url)
        server.running = True
        try:
            server._admin_execute("SELECT 1")
        except Exception as exc:
            raise PgUnavailable(f"cannot connect to {ENV_URL}={url}: {exc}") from exc
        return server

    @classmethod
    def launch(cls, bindir: Path | None = None, dbname: str = "alamos_test") -> PgServer:
        """initdb + pg_ctl start a new cluster in a temporary directory."""
        bindir = bindir or find_pg_bindir()
        if bindir is None:
            raise PgUnavailable("initdb/pg_ctl not found on PATH nor in /usr/lib/postgresql/*/bin")
        run_as: str | None = None
        if os.geteuid() == 0:
            run_as = "postgres"
            try:
                pw = pwd.getpwnam(run_as)
            except KeyError as exc:
                raise PgUnavailable(
                    "running as root, and initdb refuses root, but there is no "
                    "'postgres' user to run it as (the postgresql package creates it)"
                ) from exc
        # Not under pytest's tmp dir: that one is mode 700 and root's, which the
        # postgres user could not enter.
        basedir = Path(tempfile.mkdtemp(prefix="alamos-pg-"))
        if run_as is not None:
            os.chown(basedir, pw.pw_uid, pw.pw_gid)
        server = cls("", bindir=bindir, basedir=basedir, run_as=run_as)
        server.running = False
        atexit.register(server.close)
        try:
            server._initdb()
            server._start_on_free_port()
            server._admin_execute(f'CREATE DATABASE "{dbname}"')
        except BaseException:
            server.close()
            raise
        server.url = server.url_for(dbname)
        return server

    # -- control -----------------------------------------------------------

    @property
    def controllable(self) -> bool:
        """False for a server given by ``ALAMOS_TEST_PG_URL``."""
        return self.bindir is not None

    @property
    def datadir(self) -> Path:
        assert self.basedir is not None
        return self.basedir / "data"

    @property
    def logfile(self) -> Path:
        assert self.basedir is not None
        return self.basedir / "postgres.log"

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are cut)."""
        self._require_control()
        if self.running:
            self._pg_ctl("-m", "fast", "-w", "stop")
            self.running = False

    def start(self) -> None:
        """Start the server again, on the same port."""
        self._require_control()
        if not self.running:
            self._pg_ctl_start()
            self.running = True

    def close(self) -> None:
        """Stop the server and remove its files (idempotent)."""
        if self.bindir is None or self.basedir is None:
            return
        if self.running or (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._pg_ctl("-m", "immediate", "-w", "stop")
        self.running = False
        shutil.rmtree(self.basedir, ignore_errors=True)
        self.basedir = None

    def _require_control(self) -> None:
        if not self.controllable:
            raise PgUnavailable(f"the server of {ENV_URL} cannot be stopped or started by tests")

    # -- databases ---------------------------------------------------------

    def url_for(self, dbname: str) -> str:
        """The URL of database ``dbname`` on this server."""
        if self.controllable:
            return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"
        return _with_db(self.url, dbname)

    def create_database(self, prefix: str = "alamos_t") -> str:
        """Create an empty database with a unique name; return its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self._admin_execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (closing its connections)."""
        name = urlsplit(url).path.lstrip("/")
        self._admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def drop_alamos_tables(self, url: str | None = None) -> None:
        """Drop every ``alamos_*`` table of the database of ``url``."""
        import psycopg

        with psycopg.connect(url or self.url, autocommit=True) as conn:
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables "
                    "WHERE schemaname = current_schema() AND tablename LIKE 'alamos\\_%'"
                )
            ]
            for n in names:
                conn.execute(f'DROP TABLE IF EXISTS "{n}" CASCADE')

    def _admin_execute(self, sql: str) -> None:
        import psycopg

        admin = self.url_for("postgres") if self.controllable else self.url
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)

    # -- processes ---------------------------------------------------------

    def _command(self, *argv: str) -> list[str]:
        if self.run_as is None:
            return list(argv)
        if shutil.which("runuser"):
            return ["runuser", "-u", self.run_as, "--", *argv]
        return ["su", self.run_as, "-s", "/bin/sh", "-c", shlex.join(argv)]

    def _run(self, *argv: str, timeout: float = 120) -> None:
        cmd = self._command(*argv)
        proc = subprocess.run(
            cmd,
            cwd=self.basedir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
        )
        if proc.returncode != 0:
            log = ""
            with contextlib.suppress(OSError):
                log = self.logfile.read_text(errors="replace")[-4000:]
            raise PgUnavailable(
                f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}\n{log}"
            )

    def _initdb(self) -> None:
        assert self.bindir is not None
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )

    def _pg_ctl(self, *args: str) -> None:
        assert self.bindir is not None
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args)

    def _pg_ctl_start(self) -> None:
        assert self.basedir is not None
        opts = (
            f"-h 127.0.0.1 -p {self.port} -k {self.basedir} "
            # A throwaway cluster: no need to survive an OS crash.
            "-c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        self._pg_ctl("-l", str(self.logfile), "-o", opts, "-w", "-t", "60", "start")

    def _start_on_free_port(self) -> None:
        error: Exception | None = None
        for _ in range(5):
            self.port = _free_port()
            try:
                self._pg_ctl_start()
            except PgUnavailable as exc:  # the port was taken meanwhile?
                error = exc
                time.sleep(0.2)
                continue
            self.running = True
            return
        assert error is not None
        raise error


def pg_server_from_env() -> PgServer:
    """The server named by ``ALAMOS_TEST_PG_URL``, or a new throwaway one.

    Raises :class:`PgUnavailable` (with :data:`INSTALL_HINT`) if there is none.
    """
    url = os.environ.get(ENV_URL)
    if url:
        return PgServer.external(url)
    try:
        return PgServer.launch()
    except PgUnavailable as exc:
        raise PgUnavailable(f"{exc}\n{INSTALL_HINT}") from exc


if __name__ == "__main__":
    srv = pg_server_from_env()
    print(srv.url, flush=True)
    with contextlib.suppress(EOFError, KeyboardInterrupt):
        input("running; press Enter to stop\n")
    srv.close()
