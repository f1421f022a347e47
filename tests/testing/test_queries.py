"""Recorder queries and their matching rules (alamos.testing.match)."""

from __future__ import annotations

import re
import threading

import pytest

from alamos import Experiment, Level, SpanRecord
from alamos.testing import Recorder
from alamos.testing.match import attributes_match, path_matcher


@pytest.fixture
def server(alamos_recorder: Recorder) -> Experiment:
    """A small tree with one request: api.handle > cesium.write > wal.fsync."""
    root = alamos_recorder.new("server")
    api, cesium = root.sub("api"), root.sub("cesium")
    with (
        api.trace.prod("handle", attributes={"route": "/write"}),
        cesium.trace.prod("write") as span,
    ):
        span.set("bytes", 1024).set("tags", ["a", "b"]).set("sync", True)
        cesium.log.info("wrote {n} bytes", n=1024)
        with cesium.sub("wal").trace.debug("fsync"):
            cesium.sub("wal").log.debug("fsync took {ms} ms", ms=2)
    return root


# -- spans ---------------------------------------------------------------------


def test_spans_by_name_path_level(alamos_recorder: Recorder, server: Experiment) -> None:
    rec = alamos_recorder
    assert [s.name for s in rec.spans()] == ["fsync", "write", "handle"]  # end order
    assert [s.name for s in rec.spans(name="write")] == ["write"]
    assert [s.name for s in rec.spans(path="server.cesium")] == ["write"]
    assert [s.name for s in rec.spans(level="debug")] == ["fsync"]
    assert [s.name for s in rec.spans(level=Level.PROD)] == ["write", "handle"]
    assert rec.spans(name="write", path="server.api") == []


def test_spans_by_status_and_trace(alamos_recorder: Recorder, server: Experiment) -> None:
    rec = alamos_recorder
    with pytest.raises(ValueError, match="boom"), server.trace.prod("fails"):
        raise ValueError("boom")
    assert [s.name for s in rec.spans(status="error")] == ["fails"]
    assert len(rec.spans(status="unset")) == 3
    trace = rec.span(name="write").trace_id
    assert {s.name for s in rec.spans(trace_id=trace)} == {"handle", "write", "fsync"}
    with pytest.raises(ValueError, match="'unset', 'ok' or 'error'"):
        rec.spans(status="failed")


def test_span_path_pattern_is_the_subtree(alamos_recorder: Recorder, server: Experiment) -> None:
    rec = alamos_recorder
    with server.sub("cesiumX").trace.prod("not-below-cesium"):
        pass
    assert [s.name for s in rec.spans(path="server.cesium.*")] == ["fsync", "write"]
    assert [s.name for s in rec.spans(path="server.cesium.wal.*")] == ["fsync"]
    assert len(rec.spans(path="server.*")) == 4
    assert len(rec.spans(path="*")) == 4


def test_path_pattern_rules() -> None:
    sub = path_matcher("a.b.*")
    assert sub("a.b") and sub("a.b.c") and sub("a.b.c.d")
    assert not sub("a") and not sub("a.bc") and not sub("a.c")
    exact = path_matcher("a.b")
    assert exact("a.b") and not exact("a.b.c")
    assert path_matcher("*")("anything")
    for bad in ("a.*.c", "*.b", "a*", ".*", ""):
        with pytest.raises(ValueError, match="subtree"):
            path_matcher(bad)


def test_attributes_match_partially(alamos_recorder: Recorder, server: Experiment) -> None:
    rec = alamos_recorder
    assert rec.span(attributes={"bytes": 1024}).name == "write"
    assert rec.span(attributes={"bytes": 1024, "sync": True}).name == "write"
    assert rec.span(attributes={"tags": ["a", "b"]}).name == "write"  # list vs stored tuple
    assert rec.span(attributes={"route": "/write"}).name == "handle"
    assert rec.spans(attributes={"bytes": 1023}) == []
    assert rec.spans(attributes={"missing": None}) == []
    assert len(rec.spans(attributes={})) == 3


def test_attribute_equality_rules() -> None:
    assert attributes_match({"n": 1}, {"n": 1, "m": 2})
    assert attributes_match({"n": 1.0}, {"n": 1})  # numbers compare as numbers
    assert not attributes_match({"flag": 1}, {"flag": True})  # a flag is not a count
    assert not attributes_match({"flag": True}, {"flag": 1})
    assert attributes_match({"flag": False}, {"flag": False})
    assert attributes_match({"t": ("a", 1)}, {"t": ("a", 1)})
    assert not attributes_match({"t": ["a"]}, {"t": ("a", 1)})
    assert not attributes_match({"t": [True]}, {"t": (1,)})


def test_spans_where(alamos_recorder: Recorder, server: Experiment) -> None:
    found = alamos_recorder.spans(where=lambda s: s.parent_id is None)
    assert [s.name for s in found] == ["handle"]


def test_span_exactly_one(alamos_recorder: Recorder, server: Experiment) -> None:
    span = alamos_recorder.span(name="write", path="server.cesium")
    assert isinstance(span, SpanRecord)
    assert span.attributes["bytes"] == 1024


def test_span_none_lists_what_was_recorded(alamos_recorder: Recorder, server: Experiment) -> None:
    with pytest.raises(AssertionError) as info:
        alamos_recorder.span(name="read", path="server.cesium.*")
    text = str(info.value)
    assert text.startswith(
        "expected exactly one span matching name='read', path='server.cesium.*', found 0. "
        "Recorded spans (3):\n"
    )
    assert "  server.cesium.wal.fsync [debug, unset] trace=" in text
    assert "server.cesium.write [prod, unset]" in text
    assert "bytes=1024, tags=('a', 'b'), sync=True" in text
    assert "server.api.handle [prod, unset]" in text


def test_span_several_is_a_failure(alamos_recorder: Recorder, server: Experiment) -> None:
    with pytest.raises(AssertionError, match=r"level='prod', found 2\."):
        alamos_recorder.span(level=Level.PROD)


def test_span_with_nothing_recorded() -> None:
    with pytest.raises(AssertionError) as info:
        Recorder().span()
    assert str(info.value) == "expected exactly one span, found 0. No spans were recorded."
    with pytest.raises(AssertionError) as info:
        Recorder().log(level="error")
    assert str(info.value) == (
        "expected exactly one log matching level='error', found 0. No logs were recorded."
    )


def test_long_listing_is_cut(alamos_experiment: Experiment, alamos_recorder: Recorder) -> None:
    for i in range(60):
        with alamos_experiment.trace.prod(f"s{i}"):
            pass
    with pytest.raises(AssertionError) as info:
        alamos_recorder.span(name="nope")
    assert "Recorded spans (60):" in str(info.value)
    assert str(info.value).endswith("... and 10 more")


# -- logs ----------------------------------------------------------------------


def test_logs_filters(alamos_recorder: Recorder, server: Experiment) -> None:
    rec = alamos_recorder
    cesium = server.sub("cesium")
    cesium.log.warning("slow disk")
    cesium.log.error("write failed: {err}", err="EIO")
    assert [r.level for r in rec.logs()] == ["INFO", "DEBUG", "WARNING", "ERROR"]
    assert [r.message for r in rec.logs(level="info")] == ["wrote 1024 bytes"]
    assert [r.level for r in rec.logs(min_level="warning")] == ["WARNING", "ERROR"]
    assert [r.level for r in rec.logs(min_level="ERROR")] == ["ERROR"]
    assert [r.path for r in rec.logs(path="server.cesium.*")] == [
        "server.cesium",
        "server.cesium.wal",
        "server.cesium",
        "server.cesium",
    ]
    assert len(rec.logs(path="server.cesium")) == 3
    assert rec.log(message="took").path == "server.cesium.wal"
    assert rec.log(message=re.compile(r"^write failed: E\w+$")).level == "ERROR"
    assert rec.log(attributes={"n": 1024}).message == "wrote 1024 bytes"
    assert rec.logs(attributes={"n": 1023}) == []
    assert rec.log(where=lambda r: r.attributes.get("err") == "EIO").level == "ERROR"
    with pytest.raises(ValueError, match="invalid log level 'loud'"):
        rec.logs(level="loud")


def test_logs_carry_their_span(alamos_recorder: Recorder, server: Experiment) -> None:
    rec = alamos_recorder
    write = rec.span(name="write")
    inside = rec.logs(trace_id=write.trace_id)
    assert [r.message for r in inside] == ["wrote 1024 bytes", "fsync took 2 ms"]
    assert rec.log(span_id=write.span_id).message == "wrote 1024 bytes"


def test_log_failure_lists_logs(alamos_recorder: Recorder, server: Experiment) -> None:
    with pytest.raises(AssertionError) as info:
        alamos_recorder.log(level="error")
    assert str(info.value) == (
        "expected exactly one log matching level='error', found 0. Recorded logs (2):\n"
        "  server.cesium INFO: 'wrote 1024 bytes' n=1024\n"
        "  server.cesium.wal DEBUG: 'fsync took 2 ms' ms=2"
    )


# -- metrics and reports -------------------------------------------------------------


def test_metric_reads_the_live_value(alamos_recorder: Recorder) -> None:
    root = alamos_recorder.new("server")
    cesium = root.sub("cesium")
    writes = cesium.metrics.counter("writes", labelnames=["kind"])
    cache = cesium.metrics.gauge("cache_bytes")
    lat = cesium.metrics.histogram("write_seconds")
    assert alamos_recorder.metric("server.cesium", "writes", kind="a") is None  # no sample yet
    writes.labels("a").inc()
    writes.labels(kind="a").inc(2)
    writes.labels("b").inc()
    cache.set(3)
    lat.observe(0.25)
    lat.observe(0.5)
    assert alamos_recorder.metric("server.cesium", "writes", kind="a") == 3
    assert alamos_recorder.metric("server.cesium", "writes", kind="b") == 1
    assert alamos_recorder.metric("server.cesium", "cache_bytes") == 3
    assert alamos_recorder.metric("server.cesium", "write_seconds") == 0.75  # the sum
    with pytest.raises(AssertionError, match=r"no metric 'nope' of 'server\.cesium'"):
        alamos_recorder.metric("server.cesium", "nope")
    with pytest.raises(AssertionError, match=r"no metric 'writes' of 'server\.nowhere'"):
        alamos_recorder.metric("server.nowhere", "writes", kind="a")
    assert alamos_recorder.metrics == []  # nothing exported yet: the value was live


def test_metric_filtered_out_is_none(alamos_recorder: Recorder) -> None:
    root = alamos_recorder.new("server", level="prod")
    gauge = root.metrics.gauge("debug_gauge", level="debug")
    gauge.set(5)
    assert alamos_recorder.metric("server", "debug_gauge") is None
    root.close()  # closing records only what was enabled
    assert alamos_recorder.metric("server", "debug_gauge") is None


def test_metric_after_close_and_from_records(alamos_recorder: Recorder) -> None:
    root = alamos_recorder.new("server")
    root.metrics.counter("writes").inc(4)
    alamos_recorder.close()
    assert alamos_recorder.metric("server", "writes") == 4  # closed tree: still readable
    [sample] = [m for m in alamos_recorder.metrics if m.name == "writes"]
    assert sample.value == 4
    # A tree made elsewhere, with the recorder as a plain exporter: records only.
    other = Recorder()
    from alamos import new

    with new("elsewhere", level="bench", exporters=[other], console=False) as tree:
        tree.metrics.counter("hits", labelnames=["code"]).labels(200).inc(7)
    assert other.metric("elsewhere", "hits", code=200) == 7
    assert other.metric("elsewhere", "hits", code=404) is None


def test_reports(alamos_recorder: Recorder) -> None:
    root = alamos_recorder.new("server")
    root.sub("cesium").attach("config", lambda: {"dir": "/data"})
    assert alamos_recorder.reports == []
    root.close()
    [report] = alamos_recorder.reports
    assert (report.path, report.key, dict(report.report)) == (
        "server.cesium",
        "config",
        {"dir": "/data"},
    )


# -- records, clear, trees ------------------------------------------------------------


def test_records_and_clear(alamos_recorder: Recorder, server: Experiment) -> None:
    rec = alamos_recorder
    kinds = [type(r).__name__ for r in rec.records]
    assert kinds.count("SpanRecord") == 3 and kinds.count("LogRecord") == 2
    assert [e.path for e in rec.experiments] == [
        "server",
        "server.api",
        "server.cesium",
        "server.cesium.wal",
    ]
    assert len(rec) == len(rec.records)
    rec.clear()
    assert rec.records == [] and rec.spans() == [] and rec.logs() == [] and len(rec) == 0
    with server.trace.prod("after"):  # the tree keeps recording
        pass
    assert [s.name for s in rec.spans()] == ["after"]


def test_trees_are_isolated() -> None:
    a, b = Recorder(), Recorder()
    ta, tb = a.new("same"), b.new("same")
    with ta.trace.prod("x"), tb.trace.prod("y"):
        pass
    assert [s.name for s in a.spans()] == ["x"]
    assert [s.name for s in b.spans()] == ["y"]
    ta.sub("c").metrics.counter("n").inc()
    assert a.metric("same.c", "n") == 1
    with pytest.raises(AssertionError, match=r"no metric 'n' of 'same\.c'"):
        b.metric("same.c", "n")
    a.close()
    b.close()


def test_closing_one_tree_leaves_the_others_open(alamos_recorder: Recorder) -> None:
    first, second = alamos_recorder.new("first"), alamos_recorder.new("second")
    first.close()
    assert first.closed and not second.closed and not alamos_recorder.closed
    with second.trace.prod("still"):
        pass
    assert alamos_recorder.span(name="still").path == "second"
    alamos_recorder.close()
    assert second.closed and alamos_recorder.closed
    alamos_recorder.close()  # twice is harmless
    assert alamos_recorder.trees == [first, second]


def test_unended_spans_are_listed() -> None:
    rec = Recorder()  # not the fixture's: this test leaves a span open on purpose
    root = rec.new("server")
    with root.trace.prod("ended"):
        pass
    first = root.trace.prod("open").start()
    second = root.sub("db").trace.bench("query").start()
    assert rec.unended() == [first, second]
    assert first.location is not None and first.location.rsplit(":", 1)[0] == __file__
    second.end()
    assert rec.unended() == [first]
    with pytest.warns(ResourceWarning, match="1 span"):
        rec.close()
    assert rec.unended() == [first]  # still open: closing a tree does not end its spans


def test_strict_tree_raises_on_close_after_closing_all() -> None:
    from alamos import UnendedSpansError

    rec = Recorder()
    strict = rec.new("strict", strict=True)
    other = rec.new("other")
    strict.trace.prod("open").start()
    with pytest.warns(ResourceWarning), pytest.raises(UnendedSpansError):
        rec.close()
    assert strict.closed and other.closed


def test_debug_false_tracks_nothing() -> None:
    rec = Recorder()
    root = rec.new("server", debug=False)
    root.trace.prod("open").start()
    assert rec.unended() == []
    rec.close()


def test_recorder_new_defaults(alamos_recorder: Recorder) -> None:
    root = alamos_recorder.new("server")
    with root.trace.bench("b"), root.trace.debug("d"):
        root.log.trace("t")
    assert {s.name for s in alamos_recorder.spans()} == {"b", "d"}
    assert alamos_recorder.log(level="trace").message == "t"
    assert "Recorder" in repr(alamos_recorder)


# -- threads -----------------------------------------------------------------------


def test_eight_threads_record_exactly(alamos_recorder: Recorder) -> None:
    root = alamos_recorder.new("server")
    n = 500
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        exp = root.sub(f"t{i}")
        count = root.metrics.counter("ops", labelnames=["thread"])
        barrier.wait()
        for j in range(n):
            with exp.trace.prod("op") as span:
                span.set("j", j)
                exp.log.info("op {j}", j=j)
                with exp.trace.debug("inner"):
                    count.labels(str(i)).inc()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(alamos_recorder.spans(name="op")) == 8 * n
    assert len(alamos_recorder.spans(name="inner")) == 8 * n
    assert len(alamos_recorder.logs()) == 8 * n
    for i in range(8):
        assert len(alamos_recorder.spans(path=f"server.t{i}", name="op")) == n
        assert alamos_recorder.metric("server", "ops", thread=i) == n
    # every inner span is a child of an op span of its own thread
    ops = {s.span_id: s.path for s in alamos_recorder.spans(name="op")}
    assert all(ops[s.parent_id or ""] == s.path for s in alamos_recorder.spans(name="inner"))
    assert alamos_recorder.unended() == []
