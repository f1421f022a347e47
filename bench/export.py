"""Export throughput: spans per second from ``span.end()`` to durable in the
database, beside the raw driver writing the very same rows.

Each repeat of the alamos side makes a fresh database, a root with
``db=URL`` (the collector's default batching: 512 records or 0.5 s), warms it
up (tables created, connection open), then times N spans plus
``root.flush()``, which returns once everything is durable.  It then checks
that all N rows are in the table and that nothing went to the spool or was
dropped (reported as ``info``), so the figure really is "to the database".

The raw side takes the rows alamos stored (read back from a preparatory
run's database, so they are the same rows, ids included), and writes them
into a fresh database with the same schema (DDL copied, indexes included):

* SQLite: ``sqlite3`` in WAL mode with ``synchronous=NORMAL`` (as alamos),
  ``executemany`` of 512 rows per ``BEGIN IMMEDIATE ... COMMIT``, the
  collector's batch size, so both sides commit as often; a single-transaction
  variant is reported too;
* PostgreSQL (only when ``ALAMOS_BENCH_PG_URL`` is set): psycopg ``COPY`` of
  512 rows per transaction into a scratch copy of ``alamos_spans``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import alamos
from bench.context import BenchContext, collector_of
from bench.core import Case

__all__ = ["ENV_PG", "export_cases"]

ENV_PG = "ALAMOS_BENCH_PG_URL"
BATCH = 512  # the collector's default batch_size


def _spans(exp: Any, n: int, attributes: bool) -> None:
    trace = exp.trace
    if attributes:
        for i in range(n):
            with trace.prod("write") as span:
                span.set("bytes", i)
                span.set("table", "users")
                span.set("hit", True)
    else:
        for _ in range(n):
            with trace.prod("write"):
                pass


class _AlamosExport:
    """One repeat = a fresh database, N spans, flush, verify."""

    def __init__(
        self,
        ctx: BenchContext,
        make_url: Callable[[str], str],
        count_rows: Callable[[str, str], int],
        cleanup: Callable[[str, str], None],
        attributes: bool,
    ) -> None:
        self.ctx = ctx
        self.make_url = make_url
        self.count_rows = count_rows
        self.cleanup = cleanup
        self.attributes = attributes
        self.ids = itertools.count()
        self.case: Case | None = None

    def once(self, number: int, keep: bool = False) -> tuple[float, str, str]:
        i = next(self.ids)
        service = f"alamos-bench-{uuid.uuid4().hex[:12]}"
        url = self.make_url(f"export-{os.getpid()}-{i}")
        root = alamos.new(
            "export",
            level="prod",
            db=url,
            service=service,
            console=False,
            spool_dir=self.ctx.path(f"spool-export-{i}"),
            metrics_interval=3600,
            report_interval=3600,
        )
        try:
            exp = root.sub("api")
            with exp.trace.prod("warmup"):
                pass
            if not root.flush(timeout=120):
                raise RuntimeError("warm-up flush timed out")
            collector = collector_of(root)
            t0 = time.perf_counter_ns()
            _spans(exp, number, self.attributes)
            ok = root.flush(timeout=600)
            elapsed = time.perf_counter_ns() - t0
            stats = collector.deliveries[0].stats
            dropped = collector.dropped
        finally:
            root.close(timeout=120)
        rows = self.count_rows(url, service)
        if self.case is not None:
            info = self.case.info
            info["rows_stored"] = rows
            info["spans"] = number
            info["spooled"] = info.get("spooled", 0) + stats.spooled
            info["dropped"] = info.get("dropped", 0) + stats.dropped + dropped
            info["flush_ok"] = bool(info.get("flush_ok", True) and ok)
        if not ok or rows != number:
            raise RuntimeError(f"flush returned {ok}; {rows} of {number} spans stored")
        if not keep:
            self.cleanup(url, service)
        return number / (elapsed / 1e9), url, service

    def measure(self, number: int) -> float:
        return self.once(number)[0]


# ---------------------------------------------------------------------------
# SQLite
# ---------------------------------------------------------------------------


def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def _sqlite_count(url: str, service: str) -> int:
    with contextlib.closing(sqlite3.connect(_sqlite_path(url))) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM alamos_spans WHERE service = ? AND name = 'write'", (service,)
        ).fetchone()
    return int(n)


def _sqlite_remove(url: str, service: str = "") -> None:
    path = _sqlite_path(url)
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


def _sqlite_rows(url: str, service: str) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
    """The DDL of ``alamos_spans`` (table and indexes), its columns, and the
    rows of the timed spans."""
    with contextlib.closing(sqlite3.connect(_sqlite_path(url))) as conn:
        ddl = [
            sql
            for (sql,) in conn.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'alamos_spans' AND sql IS NOT NULL"
                " ORDER BY type DESC"  # the table before its indexes
            )
        ]
        cols = [row[1] for row in conn.execute("PRAGMA table_info(alamos_spans)")]
        quoted = ", ".join(f'"{c}"' for c in cols)
        rows = conn.execute(
            f"SELECT {quoted} FROM alamos_spans WHERE service = ? AND name = 'write'", (service,)
        ).fetchall()
    return ddl, cols, rows


def _raw_sqlite(
    ctx: BenchContext, ddl: list[str], cols: list[str], rows: list[tuple[Any, ...]], batch: int
) -> Callable[[int], float]:
    ids = itertools.count()
    quoted = ", ".join(f'"{c}"' for c in cols)
    sql = f"INSERT INTO alamos_spans ({quoted}) VALUES ({', '.join('?' for _ in cols)})"

    def measure(number: int) -> float:
        path = ctx.path(f"raw-{os.getpid()}-{next(ids)}.db")
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            for statement in ddl:
                conn.execute(statement)
            t0 = time.perf_counter_ns()
            for i in range(0, len(rows), batch):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(sql, rows[i : i + batch])
                conn.execute("COMMIT")
            elapsed = time.perf_counter_ns() - t0
        finally:
            conn.close()
            _sqlite_remove(f"sqlite:///{path}")
        return len(rows) / (elapsed / 1e9)

    return measure


def _sqlite_cases(ctx: BenchContext, n: int) -> list[Case]:
    def make_url(name: str) -> str:
        return f"sqlite:///{ctx.path(name + '.db')}"

    plain = _AlamosExport(ctx, make_url, _sqlite_count, _sqlite_remove, attributes=False)
    with3 = _AlamosExport(ctx, make_url, _sqlite_count, _sqlite_remove, attributes=True)
    _, url, service = plain.once(n, keep=True)
    ddl, cols, rows = _sqlite_rows(url, service)
    _sqlite_remove(url)
    code = 'for _ in range(N):\n    with exp.trace.prod("write"):\n        pass\nroot.flush()'
    cases = [
        Case(
            name="export_sqlite",
            title="export to SQLite, span.end() to durable (alamos, db=sqlite:///...)",
            group="export",
            measure=plain.measure,
            unit="spans/s",
            higher_is_better=True,
            calibrate=False,
            number=n,
            code=code,
            note=f"{n} spans per repeat; fresh database each repeat; rows counted after.",
        ),
        Case(
            name="export_sqlite_3_attributes",
            title="export to SQLite, spans with 3 attributes",
            group="export",
            measure=with3.measure,
            unit="spans/s",
            higher_is_better=True,
            calibrate=False,
            number=n,
            code=code.replace("pass", 'span.set(...)  # x3: "bytes", "table", "hit"').replace(
                '"write"):', '"write") as span:'
            ),
            note="The attributes JSON is encoded by the exporter.",
        ),
        Case(
            name="raw_sqlite_executemany",
            title=f"raw sqlite3.executemany, same rows, WAL, {BATCH} rows per transaction",
            group="export",
            measure=_raw_sqlite(ctx, ddl, cols, rows, BATCH),
            unit="rows/s",
            higher_is_better=True,
            calibrate=False,
            number=len(rows),
            code=f"for batch in chunks(rows, {BATCH}):\n"
            '    conn.execute("BEGIN IMMEDIATE")\n'
            "    conn.executemany(INSERT, batch)\n"
            '    conn.execute("COMMIT")',
            note="The rows alamos stored (read back), into the same schema, "
            "synchronous=NORMAL like alamos.",
        ),
        Case(
            name="raw_sqlite_one_transaction",
            title="raw sqlite3.executemany, same rows, one transaction",
            group="export",
            measure=_raw_sqlite(ctx, ddl, cols, rows, len(rows)),
            unit="rows/s",
            higher_is_better=True,
            calibrate=False,
            number=len(rows),
            code="conn.executemany(INSERT, rows)  # one transaction",
            note="The upper bound: one commit for everything.",
        ),
    ]
    plain.case, with3.case = cases[0], cases[1]
    return cases


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------


def _pg_dsn(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def _pg_cases(ctx: BenchContext, n: int, url: str) -> list[Case]:
    import psycopg

    dsn = _pg_dsn(url)
    scratch = f"alamos_bench_raw_{os.getpid()}"

    def count(_url: str, service: str) -> int:
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT count(*) FROM alamos_spans WHERE service = %s AND name = 'write'",
                (service,),
            ).fetchone()
        return int(row[0]) if row else 0

    def cleanup(_url: str, service: str) -> None:
        with psycopg.connect(dsn) as conn:
            for table in (
                "alamos_spans",
                "alamos_logs",
                "alamos_metrics",
                "alamos_reports",
                "alamos_experiments",
            ):
                conn.execute(f"DELETE FROM {table} WHERE service = %s", (service,))

    plain = _AlamosExport(ctx, lambda name: url, count, cleanup, attributes=False)
    _, _, service = plain.once(n, keep=True)
    with psycopg.connect(dsn) as conn:
        server = {
            name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
            for name in ("server_version", "fsync", "synchronous_commit")
        }
        info = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'alamos_spans' ORDER BY ordinal_position"
        ).fetchall()
        cols = [c for c, _ in info]
        select = ", ".join(f'"{c}"::text' if t in ("json", "jsonb") else f'"{c}"' for c, t in info)
        rows = conn.execute(
            f"SELECT {select} FROM alamos_spans WHERE service = %s AND name = 'write'", (service,)
        ).fetchall()
        conn.execute(f"DROP TABLE IF EXISTS {scratch}")
        conn.execute(f"CREATE TABLE {scratch} (LIKE alamos_spans INCLUDING ALL)")
    cleanup(url, service)

    def drop_scratch() -> None:
        with psycopg.connect(dsn) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {scratch}")

    ctx.on_close(drop_scratch)
    quoted = ", ".join(f'"{c}"' for c in cols)

    def raw(number: int) -> float:
        with psycopg.connect(dsn) as conn:
            conn.execute(f"TRUNCATE {scratch}")
            conn.commit()
            t0 = time.perf_counter_ns()
            for i in range(0, len(rows), BATCH):
                with (
                    conn.transaction(),
                    conn.cursor() as cur,
                    cur.copy(f"COPY {scratch} ({quoted}) FROM STDIN") as copy,
                ):
                    for row in rows[i : i + BATCH]:
                        copy.write_row(row)
            elapsed = time.perf_counter_ns() - t0
            conn.execute(f"TRUNCATE {scratch}")
        return len(rows) / (elapsed / 1e9)

    cases = [
        Case(
            name="export_postgresql",
            title="export to PostgreSQL, span.end() to durable (alamos, COPY)",
            group="export",
            measure=plain.measure,
            unit="spans/s",
            higher_is_better=True,
            calibrate=False,
            number=n,
            code='for _ in range(N):\n    with exp.trace.prod("write"):\n        pass\n'
            "root.flush()",
            note=f"{n} spans per repeat, server at {ENV_PG}; rows counted, then deleted.",
        ),
        Case(
            name="raw_postgresql_copy",
            title=f"raw psycopg COPY, same rows, {BATCH} rows per transaction",
            group="export",
            measure=raw,
            unit="rows/s",
            higher_is_better=True,
            calibrate=False,
            number=len(rows),
            code=f"for batch in chunks(rows, {BATCH}):\n    with conn.transaction():\n"
            "        COPY scratch FROM STDIN (write_row per row)",
            note="Into a scratch table LIKE alamos_spans INCLUDING ALL, dropped after.",
        ),
    ]
    plain.case = cases[0]
    cases[0].info.update(server)
    cases[1].info.update(server)
    return cases


def export_cases(ctx: BenchContext) -> list[Case]:
    n = 3_000 if ctx.quick else 20_000
    cases: list[Case] = []
    try:
        from alamos.report.sql import SQLExporter  # noqa: F401
    except Exception as exc:
        why = f"alamos.report.sql.SQLExporter is not importable yet ({type(exc).__name__}: {exc})"
        for name in (
            "export_sqlite",
            "export_sqlite_3_attributes",
            "raw_sqlite_executemany",
            "raw_sqlite_one_transaction",
            "export_postgresql",
            "raw_postgresql_copy",
        ):
            cases.append(Case(name=name, title=name, group="export", unavailable=why))
        return cases
    cases.extend(_sqlite_cases(ctx, n))
    pg_url = os.environ.get(ENV_PG, "").strip()
    if not pg_url:
        why = f"set {ENV_PG}=postgresql://user@host:port/db to measure it"
        cases.append(Case("export_postgresql", "export to PostgreSQL", "export", unavailable=why))
        cases.append(Case("raw_postgresql_copy", "raw psycopg COPY", "export", unavailable=why))
        return cases
    try:
        cases.extend(_pg_cases(ctx, n, pg_url))
    except Exception as exc:
        why = f"PostgreSQL at {ENV_PG} failed: {type(exc).__name__}: {exc}"
        cases.append(Case("export_postgresql", "export to PostgreSQL", "export", unavailable=why))
        cases.append(Case("raw_postgresql_copy", "raw psycopg COPY", "export", unavailable=why))
    return cases
