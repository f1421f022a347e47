"""Export records to a SQL database: SQLite or PostgreSQL.

:class:`SQLExporter` writes each batch of records in one transaction into the
tables of :mod:`alamos.report.schema` (created on first use).  Writes are
idempotent by primary key, so a batch replayed after a failure is stored once.

* **SQLite** (``sqlite:///path/to/file.db``): WAL journal, ``synchronous=NORMAL``,
  a busy timeout, transactions opened with ``BEGIN IMMEDIATE``; rows go in with
  ``executemany`` of ``INSERT OR IGNORE``.
* **PostgreSQL** (``postgresql://``, ``postgres://`` or
  ``postgresql+psycopg://``, always through psycopg 3): each table's rows are
  sent with one ``COPY``, straight into the table under a savepoint; if some
  key is already stored (a replay), the rows are copied into a temporary
  table instead and moved with ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``.
  (COPY measured about twice as fast as ``executemany`` with
  ``ON CONFLICT DO NOTHING`` on 10k-span batches.)

Records are converted by :func:`rows_for`, which makes hostile values storable
(see its docstring).  SQL is always parameterised, never built from values.
Export after a fork is safe: the child drops the parent's pooled connections.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError

from alamos.experiment.level import Level, LevelLike, parse_level
from alamos.report.records import (
    EventRecord,
    ExperimentRecord,
    LogRecord,
    MetricRecord,
    Record,
    ReportRecord,
    SpanRecord,
)
from alamos.report.schema import (
    TABLES,
    ensure_schema,
    experiments,
    logs,
    metrics,
    reports,
    spans,
)

__all__ = [
    "COLUMNS",
    "SUPPORTED_URLS",
    "SQLExporter",
    "clean_text",
    "dumps_json",
    "json_safe",
    "normalize_url",
    "rows_for",
]

#: The URL forms :class:`SQLExporter` accepts.
SUPPORTED_URLS = (
    "sqlite:///path/to/file.db",
    "sqlite:// (in memory)",
    "postgresql://user:password@host:port/db",
    "postgres://...",
    "postgresql+psycopg://...",
)

# ---------------------------------------------------------------------------
# Coercion of hostile values
# ---------------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_JSON_DEPTH = 64
_MAX_JSON_INT_BITS = 8192  # json refuses to write ints of more than 4300 digits
_NONFINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _make_encoder() -> Callable[[object], str]:
    """A strict compact JSON encoder, built once.

    ``JSONEncoder.encode`` builds a new C encoder on every call, which costs
    more than encoding a small dict; this reuses one (without the cycle check:
    a cycle ends in RecursionError, which :func:`dumps_json` handles).
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    basestring = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or basestring is None:
        return _ENCODER.encode

    def default(o: object) -> Any:
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")

    try:
        c_encoder = make(None, default, basestring, None, ":", ",", False, False, False)

        def encode(o: object) -> str:
            return "".join(c_encoder(o, 0))

        probe = {"a": [1, 2.5, None, True, "\u00e9\x00"], "b": {}}
        if encode(probe) != _ENCODER.encode(probe):
            return _ENCODER.encode
    except Exception:
        return _ENCODER.encode
    return encode


_encode = _make_encoder()


def clean_text(s: str) -> str:
    """``s`` made storable in any text column and any JSON string.

    NUL characters (which PostgreSQL text and JSONB reject) and lone UTF-16
    surrogates (which UTF-8 cannot encode) become U+FFFD; a surrogate *pair*
    left split in a Python string is joined into its character.  Anything else,
    SQL-looking text and huge strings included, is kept verbatim.  Clean ASCII
    (the common case) costs two C-speed scans and no copy.
    """
    if s.isascii():
        if "\x00" not in s:
            return s
        return s.replace("\x00", "\ufffd")
    if "\x00" in s:
        s = s.replace("\x00", "\ufffd")
    if _SURROGATE.search(s) is not None:
        s = s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return s


def _text(v: object) -> str | None:
    """A nullable text column."""
    if type(v) is str and v.isascii() and "\x00" not in v:
        return v
    if v is None:
        return None
    return _any_text(v)


def _req_text(v: object) -> str:
    """A NOT NULL text column (``None`` becomes ``""``)."""
    if type(v) is str and v.isascii() and "\x00" not in v:
        return v
    if v is None:
        return ""
    return _any_text(v)


def _any_text(v: object) -> str:
    if isinstance(v, str):
        return clean_text(str(v))
    if isinstance(v, bytes | bytearray | memoryview):
        return clean_text(bytes(v).decode("utf-8", "replace"))
    try:
        return clean_text(str(v))
    except Exception:
        return f"<unprintable {type(v).__name__}>"


def _int(v: object) -> int:
    """A BIGINT column: clamped to 64 bits; what is not a number becomes 0."""
    if type(v) is int and _I64_MIN <= v <= _I64_MAX:
        return v
    try:
        i: int = int(v)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return 0
    return min(max(i, _I64_MIN), _I64_MAX)


def _num(v: object) -> float | None:
    """A double precision column: NaN and ±inf are kept (see :func:`rows_for`)."""
    if type(v) is float or v is None:
        return v
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None


_LEVEL_NAMES = {lvl: str(lvl) for lvl in Level}


def _level(v: object) -> str:
    if isinstance(v, Level):
        return _LEVEL_NAMES[v]
    try:
        return _LEVEL_NAMES[parse_level(v)]  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return _req_text(v)


def json_safe(value: object, _depth: int = 0) -> Any:
    """``value`` as plain JSON data (dict, list, str, int, float, bool, None).

    * Strings (values and keys) go through :func:`clean_text`; keys that are
      not strings become strings the way :mod:`json` writes them (``1`` gives
      ``"1"``, ``True`` gives ``"true"``), others their ``str()``.
    * Non-finite floats become the *strings* ``"NaN"``, ``"Infinity"`` and
      ``"-Infinity"``: standard JSON (and JSONB) has no such numbers, and the
      information is kept.
    * Tuples, lists and sets become lists; bytes are decoded as UTF-8 with
      replacement; anything else becomes its ``str()``.
    * Nesting deeper than 64 levels (or a cycle) is cut off as the string
      ``"<too deep>"``; an integer too large for JSON becomes a string saying so.
    """
    t = type(value)
    if t is str:
        return clean_text(value)  # type: ignore[arg-type]
    if value is None or t is bool:
        return value
    if t is int:
        if value.bit_length() > _MAX_JSON_INT_BITS:  # type: ignore[attr-defined]
            return f"<int of {value.bit_length()} bits>"  # type: ignore[attr-defined]
        return value
    if t is float:
        if value - value == 0.0:  # type: ignore[operator]  # finite
            return value
        return _NONFINITE.get(value, "NaN")  # type: ignore[call-overload]
    if _depth >= _MAX_JSON_DEPTH:
        return "<too deep>"
    if isinstance(value, Mapping):
        return {_json_key(k): json_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v, _depth + 1) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return json_safe(int(value), _depth)
    if isinstance(value, float):
        return json_safe(float(value), _depth)
    return _any_text(value)


def _json_key(k: object) -> str:
    if type(k) is str:
        return clean_text(k)
    if k is None or isinstance(k, bool | int | float):
        key = json_safe(k)
        return key if isinstance(key, str) else _encode(key)
    return _any_text(k)


def dumps_json(value: object) -> str:
    """``value`` as strict, compact JSON text, made safe by :func:`json_safe`.

    The common case (clean data) is serialised directly; anything the strict
    encoder refuses (NaN, odd types, cycles) or whose output holds a NUL or a
    lone surrogate is cleaned with :func:`json_safe` first.
    """
    try:
        out = _encode(value)
    except (ValueError, TypeError, RecursionError):
        return _encode(json_safe(value))
    if out.isascii():
        if "\\u0000" not in out:
            return out
    elif "\\u0000" not in out and _SURROGATE.search(out) is None:
        return out
    return _encode(json_safe(value))


def _json_col(value: object) -> str | None:
    """A JSON column as text (``None`` is SQL NULL)."""
    if value is None:
        return None
    if not value:
        t = type(value)
        if t is dict:
            return "{}"
        if t is list or t is tuple:
            return "[]"
    return dumps_json(value)


def _json_data(value: object) -> Any:
    """A JSON column as Python data (``None`` is SQL NULL)."""
    return None if value is None else json_safe(value)


# ---------------------------------------------------------------------------
# Records to rows
# ---------------------------------------------------------------------------

# Each converter gives a record's row as a tuple in the column order of its
# table; ``j`` turns the value of a JSON column into what is stored.
_Row = tuple[Any, ...]
_JsonFn = Callable[[object], Any]


def _events(events: Sequence[EventRecord]) -> list[dict[str, Any]]:
    if not events:
        return []
    return [
        {"name": _req_text(e.name), "ts_ns": _int(e.ts_ns), "attributes": e.attributes}
        for e in events
    ]


def _span_row(r: SpanRecord, j: _JsonFn) -> _Row:
    start, end = _int(r.start_ns), _int(r.end_ns)
    return (
        _req_text(r.span_id),
        _req_text(r.trace_id),
        _text(r.parent_id),
        _req_text(r.path),
        _req_text(r.name),
        _level(r.level),
        start,
        end,
        _int(end - start),
        _req_text(r.status),
        _text(r.error_text),
        j(r.attributes),
        j(_events(r.events)),
        _req_text(r.service),
        _req_text(r.node),
        _text(r.session_id),
        _text(r.location),
    )


def _log_row(r: LogRecord, j: _JsonFn) -> _Row:
    return (
        _req_text(r.id),
        _int(r.ts_ns),
        _req_text(r.path),
        _req_text(r.level),
        _req_text(r.message),
        _text(r.trace_id),
        _text(r.span_id),
        j(r.attributes),
        _text(r.location),
        _req_text(r.service),
        _req_text(r.node),
        _text(r.session_id),
    )


def _metric_row(r: MetricRecord, j: _JsonFn) -> _Row:
    return (
        _req_text(r.id),
        _int(r.ts_ns),
        _req_text(r.path),
        _req_text(r.name),
        _req_text(r.kind),
        j(r.labels),
        _num(r.value),
        _num(r.sum),
        _num(r.count),
        j(r.buckets),
        _req_text(r.service),
        _req_text(r.node),
        _level(r.level),
    )


def _report_row(r: ReportRecord, j: _JsonFn) -> _Row:
    return (
        _req_text(r.id),
        _int(r.ts_ns),
        _req_text(r.path),
        _req_text(r.key),
        j(r.report),
        _req_text(r.service),
        _req_text(r.node),
        _level(r.level),
    )


def _experiment_row(r: ExperimentRecord, j: _JsonFn) -> _Row:
    return (
        _req_text(r.path),
        _text(r.parent_path),
        _req_text(r.key),
        _req_text(r.service),
        _req_text(r.node),
        _int(r.created_ns),
    )


_CONVERTERS: dict[type[Any], tuple[str, Callable[[Any, _JsonFn], _Row]]] = {
    SpanRecord: (spans.name, _span_row),
    LogRecord: (logs.name, _log_row),
    MetricRecord: (metrics.name, _metric_row),
    ReportRecord: (reports.name, _report_row),
    ExperimentRecord: (experiments.name, _experiment_row),
}

#: Column names of each table, in the order of the converters' tuples.
COLUMNS: dict[str, tuple[str, ...]] = {
    name: tuple(c.name for c in t.columns) for name, t in TABLES.items()
}


def _convert(records: Iterable[Record], j: _JsonFn) -> dict[str, list[_Row]]:
    out: dict[str, list[_Row]] = {}
    for r in records:
        try:
            table, convert = _CONVERTERS[type(r)]
        except KeyError:
            raise TypeError(f"SQLExporter cannot store a {type(r).__name__}: {r!r:.200}") from None
        row = convert(r, j)
        rows = out.get(table)
        if rows is None:
            out[table] = [row]
        else:
            rows.append(row)
    return out


def rows_for(records: Iterable[Record]) -> dict[str, list[dict[str, Any]]]:
    """The rows to insert for ``records``, by table name (only non-empty tables).

    Each row is a dict of column name to value for the tables of
    :mod:`alamos.report.schema`.  Values are made safe to store:

    * text: NUL characters and lone surrogates become U+FFFD
      (:func:`clean_text`); everything else, SQL-looking text and huge strings
      included, is kept verbatim (SQL is always parameterised).  ``None`` in a
      NOT NULL column becomes ``""``; a value of another type its ``str()``.
    * JSON columns (``attributes``, ``events``, ``labels``, ``buckets``,
      ``report``) hold plain JSON data (:func:`json_safe`): non-finite floats
      become the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.
    * the numeric metric columns ``value``, ``sum`` and ``count`` keep NaN and
      ±inf as floats: PostgreSQL (double precision) stores all three, SQLite
      stores ±inf but stores NaN as NULL (SQLite has no NaN).
    * integer columns are clamped to 64 bits.
    * levels are the strings ``"bench"``, ``"debug"``, ``"prod"``.

    The exporter itself uses the same conversion, with JSON columns serialised
    by :func:`dumps_json`.
    """
    return {
        table: [dict(zip(COLUMNS[table], row, strict=True)) for row in rows]
        for table, rows in _convert(records, _json_data).items()
    }


# ---------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------


def _unsupported(url: str, why: str) -> ValueError:
    return ValueError(
        f"unsupported database URL {url!r}: {why}; SQLExporter supports "
        + ", ".join(SUPPORTED_URLS)
    )


def normalize_url(url: str | URL) -> URL:
    """The SQLAlchemy URL to connect with: PostgreSQL always through psycopg 3,
    a SQLite file path made absolute.  Raises ValueError for any other scheme."""
    shown = url.render_as_string(hide_password=True) if isinstance(url, URL) else url
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise _unsupported(str(shown), "it is not a database URL") from exc
    backend, _, driver = u.drivername.partition("+")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise _unsupported(str(shown), f"the SQLite driver {driver!r} is not supported")
        database = u.database or ""
        if database not in ("", ":memory:") and not database.startswith("file:"):
            database = str(Path(database).expanduser().absolute())
        return u.set(drivername="sqlite", database=database)
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise _unsupported(
                str(shown), f"the PostgreSQL driver {driver!r} is not supported (psycopg 3 is)"
            )
        return u.set(drivername="postgresql+psycopg")
    raise _unsupported(str(shown), f"the scheme {u.drivername!r} is not supported")


def _default_name(u: URL) -> str:
    scheme = "postgresql" if u.drivername.startswith("postgresql") else "sqlite"
    ident = u.render_as_string(hide_password=True)  # "user:***@host": no secret
    return f"sql-{scheme}-{hashlib.sha1(ident.encode()).hexdigest()[:12]}"


# ---------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _sqlite_insert(conn: Connection, table: str, rows: Sequence[_Row]) -> None:
    dbapi = conn.connection.driver_connection
    assert isinstance(dbapi, sqlite3.Connection)
    cols = COLUMNS[table]
    sql = (
        f'INSERT OR IGNORE INTO "{table}" ({_quoted(cols)}) VALUES ({", ".join("?" for _ in cols)})'
    )
    dbapi.executemany(sql, rows)


def _pg_copy(conn: Connection, table: str, rows: Sequence[_Row]) -> None:
    """COPY ``rows`` into ``table``, skipping rows whose key is already there.

    The common case (no row stored yet) is one COPY straight into the table,
    under a savepoint.  If a key is already taken (a replay), the COPY fails
    and is redone into a temporary table, from which
    ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` takes the new rows.
    """
    from psycopg.errors import UniqueViolation

    raw: Any = conn.connection.driver_connection
    cols = _quoted(COLUMNS[table])
    with raw.cursor() as cur:
        cur.execute("SAVEPOINT alamos_copy")
        try:
            _pg_copy_rows(cur, table, cols, rows)
        except UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT alamos_copy")
        else:
            cur.execute("RELEASE SAVEPOINT alamos_copy")
            return
        tmp = f"_alamos_load_{table}"
        cur.execute(f'CREATE TEMP TABLE "{tmp}" (LIKE "{table}") ON COMMIT DROP')
        _pg_copy_rows(cur, tmp, cols, rows)
        cur.execute(
            f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM "{tmp}" ON CONFLICT DO NOTHING'
        )
        cur.execute(f'DROP TABLE "{tmp}"')


def _pg_copy_rows(cur: Any, table: str, cols: str, rows: Sequence[_Row]) -> None:
    with cur.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
        write = copy.write_row
        for row in rows:
            write(row)


# The alternative to COPY, measured slower (about half the rows per second on
# 10k-span batches); kept for benchmarks.
def _pg_executemany(conn: Connection, table: str, rows: Sequence[_Row]) -> None:
    raw: Any = conn.connection.driver_connection
    cols = COLUMNS[table]
    sql = (
        f'INSERT INTO "{table}" ({_quoted(cols)}) '
        f"VALUES ({', '.join('%s' for _ in cols)}) ON CONFLICT DO NOTHING"
    )
    with raw.cursor() as cur:
        cur.executemany(sql, rows)


_Writer = Callable[[Connection, str, Sequence[_Row]], None]


def _set_wal(cur: sqlite3.Cursor, timeout: float) -> None:
    """Switch the database to WAL (a no-op once it is: the mode is persistent).

    The switch takes an exclusive lock and, unlike other statements, does not
    wait for it (busy_timeout): retry it until ``timeout``.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        mode = str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if mode in ("wal", "memory"):
            return
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _file_identity(path: str | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


# ---------------------------------------------------------------------------
# The exporter
# ---------------------------------------------------------------------------


class SQLExporter:
    """Store records in SQLite or PostgreSQL (see the module docstring).

    ``url``: ``sqlite:///path/to/file.db`` (a relative path is made absolute
    now), ``postgresql://...``, ``postgres://...`` (ValueError otherwise).
    ``min_level``: the lowest level exported.  ``name``: the exporter's stable
    name (it names a spool folder); by default ``sql-<scheme>-<12 hex digits of
    the SHA-1 of the URL with its password masked>``.  ``engine_kwargs``: extra
    keyword arguments for :func:`sqlalchemy.create_engine` (``connect_args``
    are merged with the exporter's own).

    Nothing connects until the first :meth:`export`, which also creates the
    tables (:func:`alamos.report.schema.ensure_schema`).  :meth:`export` writes
    a batch in one transaction, or raises (database errors propagate as
    SQLAlchemy exceptions, a bad schema version as
    :class:`~alamos.report.schema.SchemaVersionError`); after a failure the
    connection pool is thrown away and the schema re-checked, so the next
    :meth:`export` starts afresh.  A SQLite file deleted or replaced while in
    use is noticed (the exporter writes to whatever file is at the path).
    """

    synchronous = False

    #: SQLite ``busy_timeout``: how long a write waits for another writer.
    sqlite_busy_timeout_ms = 10_000

    def __init__(
        self,
        url: str,
        *,
        min_level: LevelLike = "prod",
        name: str | None = None,
        engine_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.url: URL = normalize_url(url)
        if self.url.drivername.startswith("postgresql") and find_spec("psycopg") is None:
            raise ImportError(
                "SQLExporter needs psycopg 3 for PostgreSQL: pip install 'alamos[postgres]' "
                "(or 'psycopg[binary]')"
            )
        self.min_level: Level = parse_level(min_level)
        self.name: str = name if name is not None else _default_name(self.url)
        self._engine_kwargs = dict(engine_kwargs or {})
        self._engine: Engine | None = None
        self._schema_ready = False
        self._closed = False
        self._sqlite_path: str | None = None
        self._sqlite_file: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.dialect: str = (
            "postgresql" if self.url.drivername.startswith("postgresql") else "sqlite"
        )
        self._writer: _Writer = _pg_copy if self.dialect == "postgresql" else _sqlite_insert
        database = self.url.database or ""
        if (
            self.dialect == "sqlite"
            and database not in ("", ":memory:")
            and not database.startswith("file:")
        ):
            self._sqlite_path = database

    def __repr__(self) -> str:
        url = self.url.render_as_string(hide_password=True)
        return f"SQLExporter({url!r}, min_level={self.min_level}, name={self.name!r})"

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (created on first use; no connection is made)."""
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def export(self, records: Sequence[Record]) -> None:
        """Store ``records`` in one transaction (idempotent by id), or raise."""
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        if not records:
            return
        rows = _convert(records, _json_col)
        if self._pid != os.getpid():
            self._after_fork()
        with self._lock:
            engine = self.engine
            try:
                if self._schema_ready and self._sqlite_file_changed():
                    # Deleted or replaced under us: an open connection would
                    # go on writing to the old file, where nobody looks.
                    self._schema_ready = False
                    engine.dispose()
                if not self._schema_ready:
                    if self._sqlite_path is not None:
                        Path(self._sqlite_path).parent.mkdir(parents=True, exist_ok=True)
                    ensure_schema(engine)
                    self._sqlite_file = _file_identity(self._sqlite_path)
                    self._schema_ready = True
                with engine.begin() as conn:
                    for table in TABLES:
                        table_rows = rows.get(table)
                        if table_rows:
                            self._writer(conn, table, table_rows)
            except BaseException:
                # The connection may be broken (server restarted, file gone):
                # start the next export from a fresh pool and re-check the schema.
                self._schema_ready = False
                engine.dispose()
                raise

    def _after_fork(self) -> None:
        # In a forked child: the pooled connections are the parent's; drop
        # them without closing them (that would cut the parent's), and do not
        # trust a lock some parent thread may have held at the fork.
        self._pid = os.getpid()
        self._lock = threading.Lock()
        if self._engine is not None:
            self._engine.dispose(close=False)

    def close(self) -> None:
        """Close the connections.  ``export`` raises afterwards."""
        with self._lock:
            self._closed = True
            if self._engine is not None:
                self._engine.dispose()

    # -- engines -----------------------------------------------------------

    def _sqlite_file_changed(self) -> bool:
        return (
            self._sqlite_path is not None and _file_identity(self._sqlite_path) != self._sqlite_file
        )

    def _create_engine(self) -> Engine:
        kwargs: dict[str, Any] = {"json_serializer": dumps_json}
        connect_args: dict[str, Any] = {}
        if self.dialect == "postgresql":
            kwargs.update(pool_pre_ping=True, pool_size=2, max_overflow=2)
            connect_args.update(
                connect_timeout=10,
                application_name="alamos",
                # Notice a dead server or network within about a minute
                # instead of waiting on the socket forever.
                keepalives=1,
                keepalives_idle=30,
                keepalives_interval=10,
                keepalives_count=3,
            )
        elif (self.url.database or "") in ("", ":memory:"):
            from sqlalchemy.pool import StaticPool

            # One in-memory database, shared by whichever thread exports.
            kwargs["poolclass"] = StaticPool
            connect_args["check_same_thread"] = False
        extra = dict(self._engine_kwargs)
        connect_args.update(extra.pop("connect_args", None) or {})
        kwargs.update(extra, connect_args=connect_args)
        if self.dialect == "postgresql":
            return create_engine(self.url, **kwargs)
        engine = create_engine(self.url, **kwargs)
        busy_ms = int(self.sqlite_busy_timeout_ms)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, record: Any) -> None:
            # Let SQLAlchemy (not the sqlite3 module) decide when transactions
            # begin, so that they begin with BEGIN IMMEDIATE (see "begin").
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            try:
                cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
                _set_wal(cur, busy_ms / 1000)
                cur.execute("PRAGMA synchronous = NORMAL")
            finally:
                cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Take the write lock up front: a deferred transaction that reads
            # and then writes can fail at once with SQLITE_BUSY under contention.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
