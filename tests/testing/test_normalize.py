"""rec.as_dicts(): plain dicts, normalised for snapshot tests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from alamos import Experiment
from alamos.testing import Recorder


class Opaque:
    """Stored as its repr, which holds a memory address."""


def workload(root: Experiment) -> None:
    cesium = root.sub("cesium")
    cesium.attach("config", lambda: {"dir": "/data"})
    writes = cesium.metrics.counter("writes", labelnames=["kind"])
    with root.sub("api").trace.prod("handle", attributes={"obj": Opaque()}):
        with cesium.trace.prod("write") as span:
            span.set("bytes", 1024).event("flushed", pages=3)
            cesium.log.info("wrote {n} bytes", n=1024)
            writes.labels("put").inc()
        try:
            with cesium.trace.prod("fail"):
                raise OSError("disk full")
        except OSError:
            cesium.log.exception("write failed")
    with root.debug_session("server.cesium", level="bench"), cesium.trace.bench("probe"):
        pass


def run(node: str) -> list[dict[str, Any]]:
    rec = Recorder()
    with rec.new("server", level="prod", node=node) as root:
        workload(root)
    return rec.as_dicts()


def test_same_code_gives_equal_dicts() -> None:
    first, second = run("host-a:1"), run("host-b:2")
    assert first == second
    json.dumps(first)  # plain data, ready for a snapshot file
    raw = Recorder()
    with raw.new("server", level="prod") as root:
        workload(root)
    assert raw.as_dicts(normalize=False) != first


def test_ids_are_numbered_and_stay_consistent() -> None:
    dicts = run("n")
    spans = {d["name"]: d for d in dicts if d["record"] == "span"}
    # spans are recorded when they end: write first, then fail, handle, probe
    assert [spans[n]["span_id"] for n in ("write", "fail", "handle", "probe")] == [
        "span-1",
        "span-3",
        "span-2",
        "span-4",
    ]
    assert spans["write"]["parent_id"] == spans["handle"]["span_id"] == "span-2"
    assert spans["fail"]["parent_id"] == "span-2"
    assert spans["handle"]["parent_id"] is None
    assert {spans[n]["trace_id"] for n in ("write", "fail", "handle")} == {"trace-1"}
    assert spans["probe"]["trace_id"] == "trace-2"
    assert spans["probe"]["session_id"] == "session-1"
    assert spans["write"]["session_id"] is None
    logs = [d for d in dicts if d["record"] == "log"]
    assert [(d["id"], d["span_id"], d["trace_id"]) for d in logs] == [
        ("log-1", "span-1", "trace-1"),
        ("log-2", "span-2", "trace-1"),  # logged after "fail" ended: inside "handle"
    ]
    assert {d["service"] for d in dicts} == {"service-1"}
    assert {d["node"] for d in dicts} == {"node-1"}
    metric = next(d for d in dicts if d["record"] == "metric" and d["name"] == "writes")
    assert metric["id"].startswith("metric-") and metric["labels"] == {"kind": "put"}
    assert metric["value"] == 1.0 and metric["level"] == "prod"
    [report] = [d for d in dicts if d["record"] == "report"]
    assert report["id"] == "report-1" and report["report"] == {"dir": "/data"}
    assert dicts[0] == {
        "record": "experiment",
        "path": "server",
        "parent_path": None,
        "key": "server",
        "service": "service-1",
        "node": "node-1",
        "created_ns": 0,
    }


def test_times_become_their_order() -> None:
    dicts = run("n")
    spans = {d["name"]: d for d in dicts if d["record"] == "span"}
    handle, write = spans["handle"], spans["write"]
    assert handle["start_ns"] < write["start_ns"] < write["end_ns"] < handle["end_ns"]
    [event] = write["events"]
    assert write["start_ns"] < event["ts_ns"] < write["end_ns"]
    assert event == {"name": "flushed", "ts_ns": event["ts_ns"], "attributes": {"pages": 3}}
    stamps = sorted(
        {d[k] for d in dicts for k in ("start_ns", "end_ns", "ts_ns", "created_ns") if k in d}
        | {e["ts_ns"] for d in dicts for e in d.get("events", ())}
    )
    assert stamps == list(range(len(stamps)))  # dense ranks from 0


def test_times_as_offsets() -> None:
    rec = Recorder()
    root = rec.new("server")
    with root.trace.prod("a"):
        pass
    dicts = rec.as_dicts(times="offset")
    span = dicts[-1]
    assert dicts[0]["created_ns"] == 0
    assert 0 < span["start_ns"] < span["end_ns"]
    assert span["end_ns"] - span["start_ns"] == rec.span().duration_ns
    with pytest.raises(ValueError, match="'order' or 'offset'"):
        rec.as_dicts(times="wall")  # type: ignore[arg-type]
    rec.close()


def test_locations_and_free_text_lose_what_varies() -> None:
    dicts = run("n")
    spans = {d["name"]: d for d in dicts if d["record"] == "span"}
    assert spans["write"]["location"].startswith("test_normalize.py:")
    assert "/" not in spans["write"]["location"]
    assert spans["handle"]["attributes"]["obj"].endswith(" object at 0x?>")
    fail = spans["fail"]
    assert fail["status"] == "error" and fail["error_text"] == "OSError: disk full"
    [exc] = fail["events"]
    assert exc["attributes"]["type"] == "OSError"
    assert 'File "test_normalize.py", line' in exc["attributes"]["stacktrace"]
    assert "/tests/testing/" not in exc["attributes"]["stacktrace"]
    log = next(d for d in dicts if d["record"] == "log" and d["message"] == "write failed")
    assert log["level"] == "ERROR"
    assert 'File "test_normalize.py"' in log["attributes"]["exception"]
    assert log["location"].split(":")[1] == "workload"  # module:function:line, no file path


def test_raw_dicts_keep_everything(alamos_recorder: Recorder) -> None:
    root = alamos_recorder.new("server", node="host:42")
    with root.trace.prod("a") as span:
        span.set("tags", ["x", "y"])
    raw = alamos_recorder.as_dicts(normalize=False)
    record = alamos_recorder.span()
    assert raw[-1]["span_id"] == record.span_id and raw[-1]["node"] == "host:42"
    assert raw[-1]["start_ns"] == record.start_ns
    assert raw[-1]["attributes"] == {"tags": ["x", "y"]}  # tuples become lists
    assert raw[-1]["level"] == "prod"
    assert alamos_recorder.as_dicts(normalize=False) == raw  # reading is repeatable
