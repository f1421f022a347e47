"""Property-based fuzzing of everything that takes outside input (issue 10).

The property, for keys, attribute values, span, event and log text, level
specs and the command line: either a clear error at the call (``ValueError``
or ``TypeError`` for bad arguments, a usage error for the CLI), or a record
that round-trips through the spool codec and is stored by both databases,
a real SQLite file and a real PostgreSQL.  Never an exporter failure.

(traceparent, tracestate and baggage headers are fuzzed in
``tests/trace/test_propagation_fuzz.py``.)
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from alamos.cli import main
from alamos.core.context import SpanContext
from alamos.core.level import Level
from alamos.core.records import Record
from alamos.experiment.filter import Filter
from alamos.report.pipeline.codec import dumps_batch, loads_batch
from alamos.report.sql import SQLExporter
from alamos.testing import Recorder

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Any text, lone surrogates, NUL and the odd control character included.
ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=300)


class Hostile:
    """An object whose str and repr raise."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


SCALARS = st.one_of(
    ANY_TEXT,
    st.integers(),
    st.integers(min_value=10**4300, max_value=10**4400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.binary(max_size=64),
    st.builds(Hostile),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.tuples(inner, inner),
        st.dictionaries(ANY_TEXT, inner, max_size=4),
        st.frozensets(st.integers(), max_size=4),
    ),
    max_leaves=12,
)
NAMES = st.one_of(ANY_TEXT, st.binary(max_size=40), st.integers(), st.builds(Hostile))


class Stores:
    """The records of each example, exported to SQLite and PostgreSQL."""

    def __init__(self, sqlite_url: str, pg_url: str) -> None:
        self.rec = Recorder()
        self.root = self.rec.new("fuzz", console=False)
        self.exporters = [SQLExporter(sqlite_url), SQLExporter(pg_url)]
        self.seen = 0

    def new_records(self) -> list[Record]:
        records = self.rec.records
        fresh, self.seen = records[self.seen :], len(records)
        return fresh

    def check(self) -> None:
        """The records made since the last check round-trip through the spool
        codec and are stored by both databases."""
        records = self.new_records()
        assert records, "the call made no record"
        line = dumps_batch(records)
        again = loads_batch(line)
        assert dumps_batch(again) == line  # stable through the spool
        for exporter in self.exporters:
            exporter.export(again)  # must not raise
            exporter.export(records)  # the direct path too (idempotent)

    def close(self) -> None:
        self.root.close()
        for exporter in self.exporters:
            exporter.close()


@pytest.fixture
def stores(sqlite_url: str, pg_url: str) -> Iterator[Stores]:
    s = Stores(sqlite_url, pg_url)
    yield s
    s.close()


pytestmark = pytest.mark.postgres


@FUZZ
@given(key=st.one_of(ANY_TEXT, st.text("abcXYZ019_-", min_size=1, max_size=4000), NAMES))
@example(key="k" * 3000)  # once blocked a PostgreSQL exporter forever (index row size)
def test_keys(stores: Stores, key: Any) -> None:
    try:
        exp = stores.root.sub(key)
    except (ValueError, TypeError):
        return
    with exp.trace.prod("k"):
        pass
    stores.check()


@FUZZ
@given(value=VALUES, key=st.one_of(ANY_TEXT, NAMES))
@example(value=10**4301, key="big")  # JSON cannot write it: once cost its whole spool batch
@example(value={i: i for i in range(20_000)}, key="huge")
def test_attribute_values(stores: Stores, value: Any, key: Any) -> None:
    with stores.root.trace.prod("attrs") as span:
        span.set(key, value)
        span.event("e", v=value)
    stores.root.log.info("attrs", v=value)
    stores.check()


@FUZZ
@given(name=NAMES, event=NAMES)
@example(name=b"bytes-name", event="e")
@example(name="n" * 100_000, event="e" * 100_000)
def test_span_and_event_names(stores: Stores, name: Any, event: Any) -> None:
    try:
        span = stores.root.trace.prod(name)
    except (ValueError, TypeError):
        return
    with span:
        span.event(event)
    stores.check()


@FUZZ
@given(message=st.one_of(NAMES, VALUES), args=st.lists(VALUES, max_size=3))
@example(message="m" * 3_000_000, args=[])
def test_log_text(stores: Stores, message: Any, args: list[Any]) -> None:
    stores.root.log.warning(message, *args)
    stores.check()


@FUZZ
@given(spec=st.one_of(ANY_TEXT, st.from_regex(r"(prod|debug|bench)?(,[a-z.=]{0,12}){0,4}")))
def test_level_specs(spec: str) -> None:
    try:
        f = Filter(spec)
    except ValueError as exc:
        assert "level" in str(exc)
        return
    for level in Level:
        assert isinstance(f.enabled(level, "server.cesium"), bool)


@settings(max_examples=40, deadline=None)
@given(
    args=st.lists(
        st.one_of(
            ANY_TEXT,
            st.sampled_from(
                [
                    "traces",
                    "trace",
                    "logs",
                    "metrics",
                    "demo",
                    "--level",
                    "--grep",
                    "--name",
                    "--trace",
                    "-v",
                    "x.db",
                    "--db",
                    "--since",
                    "--limit",
                    "--path",
                    "--json",
                    "sqlite:///nowhere/x.db",
                    "-1",
                    "1h",
                ]
            ),
        ),
        max_size=6,
    )
)
def test_command_line(args: list[str]) -> None:
    assume("demo" not in args[:1])  # the demo runs a workload: tested in tests/demo
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        result = CliRunner().invoke(main, args)
    # A usage error (2), a clear failure (1) or success (0); never a traceback.
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


@FUZZ
@given(
    trace_id=st.one_of(ANY_TEXT, st.text("0123456789abcdefABCDEF-", max_size=7000)),
    span_id=st.one_of(ANY_TEXT, st.text("0123456789abcdef", max_size=40)),
)
@example(trace_id="1" * 6000, span_id="1" * 16)  # once blocked a PostgreSQL exporter forever
@example(trace_id="-1", span_id="-1")
def test_remote_parents(stores: Stores, trace_id: str, span_id: str) -> None:
    parent = SpanContext(trace_id, span_id)
    with stores.root.trace.prod("child", parent=parent) as span:
        pass
    assert len(span.trace_id) == 32 and len(span.span_id) == 16
    stores.check()
