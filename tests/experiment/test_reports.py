"""Attached reports and ``exp.report()``."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import pytest

from alamos import Experiment, Level
from alamos.core.json import REPORT_JSON as jsonable
from alamos.testing import Recorder


@pytest.fixture
def root(alamos_recorder: Recorder) -> Experiment:
    return alamos_recorder.new("server", level="prod")


class Cache:
    def __init__(self) -> None:
        self.size = 3

    def report(self) -> Mapping[str, Any]:
        return {"size": self.size}


def test_report_shape(root: Experiment) -> None:
    assert root.report() == {
        "key": "server",
        "path": "server",
        "reports": {},
        "metrics": {},
        "children": {},
    }


def test_callable_and_report_object_providers(root: Experiment) -> None:
    cesium = root.sub("cesium")
    cache = Cache()
    cesium.attach("config", lambda: {"dir": "/data", "sync": True})
    cesium.attach("cache", cache)
    first = root.report()["children"]["cesium"]["reports"]
    assert first == {"config": {"dir": "/data", "sync": True}, "cache": {"size": 3}}
    cache.size = 9  # providers are called at report time
    assert root.report()["children"]["cesium"]["reports"]["cache"] == {"size": 9}


def test_attach_same_key_replaces_and_detach_removes(root: Experiment) -> None:
    root.attach("config", lambda: {"v": 1})
    root.attach("config", lambda: {"v": 2})
    assert root.report()["reports"] == {"config": {"v": 2}}
    root.detach("config")
    root.detach("config")  # harmless
    assert root.report()["reports"] == {}


def test_nested_structure(root: Experiment) -> None:
    cesium = root.sub("cesium")
    wal = cesium.sub("wal")
    api = root.sub("api")
    wal.attach("segments", lambda: {"n": 4})
    api.metrics.counter("requests", "Requests").inc(2)
    report = root.report()
    assert report == {
        "key": "server",
        "path": "server",
        "reports": {},
        "metrics": {},
        "children": {
            "cesium": {
                "key": "cesium",
                "path": "server.cesium",
                "reports": {},
                "metrics": {},
                "children": {
                    "wal": {
                        "key": "wal",
                        "path": "server.cesium.wal",
                        "reports": {"segments": {"n": 4}},
                        "metrics": {},
                        "children": {},
                    }
                },
            },
            "api": {
                "key": "api",
                "path": "server.api",
                "reports": {},
                "metrics": {"requests": 2.0},
                "children": {},
            },
        },
    }
    assert cesium.report() == report["children"]["cesium"]  # any subtree reports itself


def test_metric_values_in_the_report(root: Experiment) -> None:
    m = root.sub("m")
    m.metrics.counter("writes").inc(3)
    m.metrics.gauge("cache").set(1.5)
    hist = m.metrics.histogram("lat", buckets=[0.1, 1.0])
    hist.observe(0.5)
    hist.observe(2.0)
    labelled = m.metrics.counter("errors", labelnames=["kind"])
    labelled.labels("io").inc()
    labelled.labels(kind="timeout").inc(2)
    metrics = root.report()["children"]["m"]["metrics"]
    assert metrics["writes"] == 3.0
    assert metrics["cache"] == 1.5
    assert metrics["lat"] == {"sum": 2.5, "count": 2.0}
    assert sorted(metrics["errors"], key=lambda e: e["labels"]["kind"]) == [
        {"labels": {"kind": "io"}, "value": 1.0},
        {"labels": {"kind": "timeout"}, "value": 2.0},
    ]


def test_level_filtering(root: Experiment) -> None:
    cesium = root.sub("cesium")
    cesium.attach("always", lambda: {"a": 1})
    cesium.attach("details", lambda: {"b": 2}, level="debug")
    cesium.attach("internals", lambda: {"c": 3}, level=Level.BENCH)
    cache = cesium.metrics.gauge("cache", level="debug")
    cache.set(1)  # filtered out: a no-op
    sub = root.report()["children"]["cesium"]
    assert sub["reports"] == {"always": {"a": 1}}
    assert sub["metrics"] == {}
    root.set_level("prod,server.cesium=debug")
    cache.inc()
    sub = root.report()["children"]["cesium"]
    assert sub["reports"] == {"always": {"a": 1}, "details": {"b": 2}}
    assert sub["metrics"] == {"cache": 1.0}
    with root.debug_session("server.cesium", level="bench"):
        assert set(root.report()["children"]["cesium"]["reports"]) == {
            "always",
            "details",
            "internals",
        }


def test_filtered_out_provider_is_not_called(root: Experiment) -> None:
    calls = []
    root.attach("details", lambda: calls.append(1) or {}, level="debug")
    root.report()
    assert calls == []


@pytest.mark.parametrize(
    ("provider", "error"),
    [
        (lambda: 1 / 0, "ZeroDivisionError: division by zero"),
        (lambda: [1, 2], "provider returned list, expected a dict"),
        (lambda: None, "provider returned NoneType, expected a dict"),
    ],
)
def test_broken_providers_give_an_error(root: Experiment, provider: Any, error: str) -> None:
    root.attach("bad", provider)
    root.attach("good", lambda: {"ok": True})
    assert root.report()["reports"] == {"bad": {"error": error}, "good": {"ok": True}}


def test_raising_report_method(root: Experiment) -> None:
    class Broken:
        def report(self) -> Mapping[str, Any]:
            raise KeyError("gone")

    root.attach("broken", Broken())
    assert root.report()["reports"] == {"broken": {"error": "KeyError: 'gone'"}}


def test_provider_raising_an_unprintable_exception(root: Experiment) -> None:
    class Nasty(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    def provider() -> Mapping[str, Any]:
        raise Nasty

    root.attach("nasty", provider)
    assert root.report()["reports"] == {"nasty": {"error": "Nasty: <unprintable exception>"}}


def test_attach_errors(root: Experiment) -> None:
    with pytest.raises(TypeError) as info:
        root.attach("config", {"not": "callable"})  # type: ignore[arg-type]
    assert str(info.value) == (
        "report provider for 'config' must be a callable returning a dict "
        "or an object with a .report() method, got dict"
    )
    with pytest.raises(ValueError, match=r"invalid experiment key 'a\.b'"):
        root.attach("a.b", lambda: {})
    with pytest.raises(ValueError, match="invalid level 'loud'"):
        root.attach("config", lambda: {}, level="loud")


class Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class Thing:
    def __repr__(self) -> str:
        return "<Thing>"


def test_odd_values_are_made_json_serialisable(root: Experiment) -> None:
    cyclic: dict[str, Any] = {"name": "c"}
    cyclic["self"] = cyclic
    shared = [1, 2]
    deep: Any = "bottom"
    for _ in range(50):
        deep = [deep]
    odd = {
        "nan": math.nan,
        "inf": -math.inf,
        "bytes": b"\x00\xff",
        "set": {3},
        "tuple": (1, "a"),
        "level": Level.DEBUG,
        "thing": Thing(),
        "hostile": Hostile(),
        1: "int key",
        (1, 2): "tuple key",
        Level.PROD: "level key",
        "nested": OrderedDict(a={"b": [Thing(), None]}),
        "cyclic": cyclic,
        "shared": [shared, shared],
        "deep": deep,
        "ok": [1, 2.5, True, None, "s"],
    }
    root.attach("odd", lambda: odd)
    report = root.report()
    out = report["reports"]["odd"]
    json.dumps(report, allow_nan=False)  # does not raise
    assert out["nan"] is None and out["inf"] is None
    assert out["bytes"] == repr(b"\x00\xff")
    assert out["set"] == [3]
    assert out["tuple"] == [1, "a"]
    assert out["level"] == "debug"
    assert out["thing"] == "<Thing>"
    assert out["hostile"] == "<unrepresentable Hostile>"
    assert out["1"] == "int key"
    assert out["(1, 2)"] == "tuple key"
    assert out["prod"] == "level key"
    assert out["nested"] == {"a": {"b": ["<Thing>", None]}}
    assert out["cyclic"] == {"name": "c", "self": "<cycle>"}
    assert out["shared"] == [[1, 2], [1, 2]]  # shared, not cyclic
    assert "<too deep>" in json.dumps(out["deep"])
    assert out["ok"] == [1, 2.5, True, None, "s"]


def test_jsonable_plain_types_for_subclasses() -> None:
    class MyStr(str):
        pass

    class MyInt(int):
        pass

    out = jsonable({"s": MyStr("x"), "i": MyInt(3), "f": 1.0})
    assert type(out["s"]) is str and type(out["i"]) is int
    assert out == {"s": "x", "i": 3, "f": 1.0}


def test_report_entries(root: Experiment) -> None:
    root.sub("cesium").attach("config", lambda: {"a": 1})
    root.sub("cesium").attach("details", lambda: {"b": 2}, level="debug")
    assert root.report_entries() == [("server.cesium", "config", Level.PROD, {"a": 1})]
