"""Levels, filter specs, ALAMOS_LEVEL, callable filters, set_level, log levels."""

from __future__ import annotations

import pytest

import alamos
from alamos import Filter, Level
from alamos.core.level import parse_level
from alamos.testing import Recorder

LEVEL_ERROR = (
    r'use alamos.Level.BENCH, DEBUG or PROD, or one of the strings "bench", "debug", "prod"'
)


def names(rec: Recorder) -> set[tuple[str, str]]:
    return {(s.path, s.name) for s in rec.spans()}


def emit_all(exp: alamos.Experiment) -> None:
    for level in ("bench", "debug", "prod"):
        with exp.trace.span(level, level):
            pass


# -- Level --------------------------------------------------------------------------


def test_level_order() -> None:
    assert Level.BENCH < Level.DEBUG < Level.PROD
    assert sorted([Level.PROD, Level.BENCH, Level.DEBUG]) == [Level.BENCH, Level.DEBUG, Level.PROD]
    assert [str(lvl) for lvl in Level] == ["bench", "debug", "prod"]


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("bench", Level.BENCH),
        ("debug", Level.DEBUG),
        ("prod", Level.PROD),
        ("PROD", Level.PROD),
        (" Debug ", Level.DEBUG),
        (Level.DEBUG, Level.DEBUG),
        (10, Level.BENCH),
    ],
)
def test_parse_level(value: object, level: Level) -> None:
    assert parse_level(value) is level  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["", "info", "verbose", 15, None, True, 2.0])
def test_parse_level_errors(value: object) -> None:
    with pytest.raises(ValueError, match=LEVEL_ERROR) as info:
        parse_level(value)  # type: ignore[arg-type]
    assert str(info.value).startswith(f"invalid level {value!r}")


def test_strings_accepted_everywhere_a_level_is(rec: Recorder) -> None:
    root = rec.new("server", level="debug")
    assert root.enabled("debug") and root.enabled(Level.DEBUG) and not root.enabled("bench")
    assert root.trace.enabled("prod") and not root.trace.enabled("BENCH")
    root.attach("r", lambda: {}, level="debug")
    gauge = root.metrics.gauge("g", level="debug")
    assert gauge.level is Level.DEBUG and gauge.enabled
    with root.trace.span("debug", "s"):
        pass
    assert rec.span(level="debug").level is Level.DEBUG
    with root.debug_session(level="bench") as s:
        assert s.level is Level.BENCH
    root.close()
    with pytest.raises(ValueError, match=LEVEL_ERROR):
        root.enabled("loud")


# -- thresholds -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("bench", {"bench", "debug", "prod"}),
        ("debug", {"debug", "prod"}),
        ("prod", {"prod"}),
    ],
)
def test_threshold(rec: Recorder, level: str, expected: set[str]) -> None:
    root = rec.new("server", level=level)
    emit_all(root)
    assert {s.name for s in rec.spans()} == expected


def test_default_threshold_is_prod(rec: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALAMOS_LEVEL", raising=False)
    root = rec.new("server", level=None)
    emit_all(root)
    assert {s.name for s in rec.spans()} == {"prod"}


def test_alamos_level_overrides_the_default(rec: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALAMOS_LEVEL", "debug")
    root = rec.new("server", level=None)
    emit_all(root)
    assert {s.name for s in rec.spans()} == {"debug", "prod"}


def test_alamos_level_takes_a_spec(rec: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALAMOS_LEVEL", "prod,server.cesium=bench")
    root = rec.new("server", level=None)
    emit_all(root)
    emit_all(root.sub("cesium"))
    assert names(rec) == {
        ("server", "prod"),
        ("server.cesium", "bench"),
        ("server.cesium", "debug"),
        ("server.cesium", "prod"),
    }


def test_explicit_level_wins_over_alamos_level(
    rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALAMOS_LEVEL", "bench")
    root = rec.new("server", level="prod")
    emit_all(root)
    assert {s.name for s in rec.spans()} == {"prod"}


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_alamos_level_is_ignored(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ALAMOS_LEVEL", value)
    assert Filter().threshold("server") is Level.PROD


def test_bad_alamos_level_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALAMOS_LEVEL", "loud")
    with pytest.raises(ValueError, match="from the environment variable ALAMOS_LEVEL") as info:
        alamos.new("server", console=False)
    assert "invalid level filter 'loud'" in str(info.value)


# -- filter specs ---------------------------------------------------------------------


def test_spec_per_subtree(rec: Recorder) -> None:
    root = rec.new("server", level="prod,server.cesium=debug")
    cesium = root.sub("cesium")
    wal = cesium.sub("wal")
    api = root.sub("api")
    for exp in (root, cesium, wal, api):
        emit_all(exp)
    assert names(rec) == {
        ("server", "prod"),
        ("server.cesium", "debug"),
        ("server.cesium", "prod"),
        ("server.cesium.wal", "debug"),
        ("server.cesium.wal", "prod"),
        ("server.api", "prod"),
    }


def test_longest_matching_prefix_wins() -> None:
    f = Filter("debug, server=prod, server.cesium=bench, server.cesium.wal=prod")
    assert f.threshold("other") is Level.DEBUG
    assert f.threshold("server") is Level.PROD
    assert f.threshold("server.api") is Level.PROD
    assert f.threshold("server.cesium") is Level.BENCH
    assert f.threshold("server.cesium.index") is Level.BENCH
    assert f.threshold("server.cesium.wal") is Level.PROD
    assert f.threshold("server.cesium.wal.seg") is Level.PROD


def test_prefix_matches_whole_keys_only() -> None:
    f = Filter("prod,server.ces=bench")
    assert f.threshold("server.ces") is Level.BENCH
    assert f.threshold("server.cesium") is Level.PROD


def test_rule_order_does_not_matter() -> None:
    a = Filter("server.cesium=bench,server=debug")
    b = Filter("server=debug,server.cesium=bench")
    for path in ("server", "server.cesium", "server.x"):
        assert a.threshold(path) is b.threshold(path)


def test_spec_without_default_is_prod() -> None:
    assert Filter("server=debug").threshold("api") is Level.PROD
    assert Filter("").threshold("api") is Level.PROD


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("loud", "invalid level filter 'loud': invalid level 'loud'"),
        ("prod,debug", "more than one default level (prod and debug)"),
        ("prod,server=loud", "invalid level filter 'prod,server=loud' at 'server=loud'"),
        ("server..x=debug", "each dot-separated part must match"),
        ("=debug", "invalid level filter '=debug' at '=debug'"),
        ("server x=debug", "invalid experiment path 'server x'"),
    ],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        alamos.new("server", level=spec, console=False)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("prod,a=debug,a=bench", "more than one rule for the path 'a' (debug and bench)"),
        ("a=debug, a = debug", "more than one rule for the path 'a' (debug and debug)"),
        ("prod,a.b=bench,a=debug,a.b=prod", "more than one rule for the path 'a.b'"),
    ],
)
def test_duplicate_path_rules_are_refused(spec: str, message: str) -> None:
    """As a duplicate default is: the order of a spec must not decide."""
    with pytest.raises(ValueError) as info:
        alamos.new("server", level=spec, console=False)
    assert message in str(info.value) and "give each path once" in str(info.value)


@pytest.mark.parametrize("spec", [1.5, object(), [], True])
def test_bad_filter_types(spec: object) -> None:
    with pytest.raises(ValueError, match=r"use a level \('prod'\), a spec string") as info:
        alamos.new("server", level=spec, console=False)
    assert "or a callable (level, path) -> bool" in str(info.value)


def test_level_objects_and_filters_are_accepted(rec: Recorder) -> None:
    root = rec.new("server", level=Level.DEBUG)
    assert root.enabled("debug") and not root.enabled("bench")
    root.set_level(Filter("bench"))
    assert root.enabled("bench")


# -- callable filters -------------------------------------------------------------------


def test_callable_filter_gets_level_and_path(rec: Recorder) -> None:
    calls: list[tuple[Level, str]] = []

    def only_wal(level: Level, path: str) -> bool:
        calls.append((level, path))
        return path.endswith("wal") or level >= Level.PROD

    root = rec.new("server", level=only_wal)
    wal = root.sub("cesium").sub("wal")
    emit_all(root)
    emit_all(wal)
    assert names(rec) == {
        ("server", "prod"),
        ("server.cesium.wal", "bench"),
        ("server.cesium.wal", "debug"),
        ("server.cesium.wal", "prod"),
    }
    assert (Level.BENCH, "server.cesium.wal") in calls
    assert all(isinstance(lvl, Level) for lvl, _ in calls)


def test_callable_filter_is_not_called_per_record(rec: Recorder) -> None:
    count = 0

    def flt(level: Level, path: str) -> bool:
        nonlocal count
        count += 1
        return True

    root = rec.new("server", level=flt)
    before = count
    for _ in range(100):
        with root.trace.prod("x"):
            pass
    assert count == before


def test_raising_callable_filter_fails_open_for_prod_only(rec: Recorder) -> None:
    def broken(level: Level, path: str) -> bool:
        raise RuntimeError("broken filter")

    root = rec.new("server", level=broken)
    emit_all(root)
    assert {s.name for s in rec.spans()} == {"prod"}


# -- set_level at run time --------------------------------------------------------------


def test_set_level_at_run_time(rec: Recorder) -> None:
    root = rec.new("server", level="prod")
    cesium = root.sub("cesium")
    emit_all(cesium)
    assert {s.name for s in rec.spans()} == {"prod"}

    rec.clear()
    root.set_level("prod,server.cesium=bench")
    emit_all(cesium)
    emit_all(root)
    assert names(rec) == {
        ("server.cesium", "bench"),
        ("server.cesium", "debug"),
        ("server.cesium", "prod"),
        ("server", "prod"),
    }

    rec.clear()
    cesium.set_level(lambda level, path: level >= Level.DEBUG)  # any node sets the tree's
    emit_all(root)
    assert {s.name for s in rec.spans()} == {"debug", "prod"}


def test_set_level_applies_to_children_created_later(rec: Recorder) -> None:
    root = rec.new("server", level="prod")
    root.set_level("prod,server.late=debug")
    late = root.sub("late")
    assert late.enabled("debug")
    assert not root.enabled("debug")


def test_set_level_rejects_bad_specs_and_keeps_the_old_filter(rec: Recorder) -> None:
    root = rec.new("server", level="debug")
    with pytest.raises(ValueError, match="invalid level filter 'loud'"):
        root.set_level("loud")
    assert root.enabled("debug")


# -- log levels follow the threshold ------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "shown"),
    [
        ("prod", ["INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]),
        ("debug", ["DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]),
        ("bench", ["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]),
    ],
)
def test_log_levels_follow_the_threshold(rec: Recorder, level: str, shown: list[str]) -> None:
    root = rec.new("server", level=level)
    for method in ("trace", "debug", "info", "success", "warning", "error", "critical"):
        getattr(root.log, method)(method)
    assert [r.level for r in rec.logs()] == shown
    for name in ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"):
        assert root.log.enabled(name) is (name in shown)


def test_log_levels_follow_set_level(rec: Recorder) -> None:
    root = rec.new("server", level="prod")
    root.log.debug("hidden")
    root.set_level("debug")
    root.log.debug("shown")
    root.set_level("prod")
    root.log.debug("hidden again")
    assert [r.message for r in rec.logs()] == ["shown"]
