"""exp.log: methods, formatting, record fields, loguru side, robustness."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

import alamos
from alamos import Experiment, Level, LogRecord
from alamos.log import logger as logger_module
from alamos.testing import Recorder

METHODS = {
    "trace": "TRACE",
    "debug": "DEBUG",
    "info": "INFO",
    "success": "SUCCESS",
    "warning": "WARNING",
    "error": "ERROR",
    "critical": "CRITICAL",
}


@pytest.fixture
def sink() -> Iterator[list[Any]]:
    """A loguru sink of this test (removed after): the loguru records it got."""
    got: list[Any] = []
    handler = logger.add(lambda m: got.append(m.record), level="TRACE", format="{message}")
    yield got
    logger.remove(handler)


# -- methods and formatting ------------------------------------------------------------


@pytest.mark.parametrize(("method", "level"), METHODS.items())
def test_every_method(rec: Recorder, root: Experiment, method: str, level: str) -> None:
    getattr(root.sub("cesium").log, method)("opened {n} files", n=3)
    record = rec.log(level=level)
    assert isinstance(record, LogRecord)
    assert (record.message, record.level, record.path) == (
        "opened 3 files",
        level,
        "server.cesium",
    )


def test_log_by_level_name(rec: Recorder, root: Experiment) -> None:
    root.log.log("warning", "w {}", 1)
    root.log.log("TRACE", "t")
    assert [(r.level, r.message) for r in rec.logs()] == [("WARNING", "w 1"), ("TRACE", "t")]
    for bad in ("LOUD", "", 20, None):
        message = f"invalid log level {bad!r}: use TRACE, DEBUG, INFO, SUCCESS, WARNING, ERROR"
        with pytest.raises(ValueError, match=re.escape(message)):
            root.log.log(bad, "x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=re.escape(message)):
            root.log.enabled(bad)  # type: ignore[arg-type]
    assert root.log.enabled("info") and root.log.enabled("Trace")


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("a", 2), {}, "{} and {}"),
        ((), {"n": 3}, "n={n}"),
        (("x",), {"y": 1}, "{0}-{y}"),
        ((), {}, "{not formatted}"),
        ((3.14159,), {}, "{:.2f}"),
    ],
)
def test_loguru_style_formatting(
    rec: Recorder, root: Experiment, args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    root.log.info(message, *args, **kwargs)
    expected = message.format(*args, **kwargs) if args or kwargs else message
    assert rec.log().message == expected


def test_non_str_messages(rec: Recorder, root: Experiment) -> None:
    root.log.info(42)
    root.log.info(ValueError("boom"))
    assert [r.message for r in rec.logs()] == ["42", "boom"]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda log: log.info("{missing}", n=1), "{missing} [format error: KeyError: 'missing'"),
        (lambda log: log.info("{0} {1}", "a"), "{0} {1} [format error: IndexError"),
        (lambda log: log.info("{", 1), "{ [format error: ValueError"),
        (lambda log: log.info("{:d}", "x"), "{:d} [format error: ValueError"),
    ],
)
def test_format_errors_do_not_raise(
    rec: Recorder, root: Experiment, call: Any, expected: str
) -> None:
    call(root.log)
    assert rec.log().message.startswith(expected)


def test_hostile_messages_and_arguments_do_not_raise(rec: Recorder, root: Experiment) -> None:
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no str")

        def __repr__(self) -> str:
            raise RuntimeError("no repr")

        def __format__(self, spec: str) -> str:
            raise RuntimeError("no format")

    root.log.info(Hostile())
    root.log.info("value {}", Hostile())
    root.log.info("value {v}", v=Hostile())
    first, second, third = (r.message for r in rec.logs())
    assert first == "<unrepresentable Hostile>"
    assert second.startswith("value {} [format error: RuntimeError: no format")
    assert "<unrepresentable tuple>" in second
    assert third.startswith("value {v} [format error: RuntimeError")
    assert rec.logs()[2].attributes["v"] == "<unrepresentable Hostile: RuntimeError>"


# -- record fields -------------------------------------------------------------------------


def test_record_fields(rec: Recorder, root: Experiment) -> None:
    cesium = root.sub("cesium")
    cesium.log.info("plain")
    with cesium.trace.prod("write") as span:
        cesium.log.warning("in span {n}", n=2, path="/data", extra=[1, 2])
    plain, inside = rec.logs()
    assert plain.trace_id is None and plain.span_id is None
    assert (inside.trace_id, inside.span_id) == (span.trace_id, span.span_id)
    assert dict(inside.attributes) == {"n": 2, "path": "/data", "extra": (1, 2)}
    assert dict(plain.attributes) == {}
    assert plain.session_id is None
    assert plain.ts_ns <= inside.ts_ns
    assert span.start_ns <= inside.ts_ns <= span.end_ns  # type: ignore[operator]
    assert re.fullmatch(r"[0-9a-f]{32}", plain.id)
    assert plain.id != inside.id
    assert inside.export_level is Level.PROD
    assert (inside.service, inside.node) == (root.service, root.node)


def test_location_is_the_caller(rec: Recorder, root: Experiment) -> None:
    def helper() -> None:
        root.log.info("from helper")

    helper()
    root.log.log("INFO", "by name")
    a, b = rec.logs()
    assert re.fullmatch(rf"{re.escape(__name__)}:helper:\d+", str(a.location))
    assert str(b.location).startswith(f"{__name__}:test_location_is_the_caller:")


def test_session_id(rec: Recorder) -> None:
    root = rec.new("server", level="prod")
    with root.debug_session("server") as s:
        root.log.debug("in session")
    assert rec.log().session_id == s.id


def test_log_export_levels(rec: Recorder, root: Experiment) -> None:
    root.log.trace("t")
    root.log.debug("d")
    root.log.critical("c")
    assert [r.export_level for r in rec.logs()] == [Level.BENCH, Level.DEBUG, Level.PROD]


def test_attribute_limits(rec: Recorder, root: Experiment) -> None:
    root.log.info("many", **{f"k{i}": i for i in range(300)})
    root.log.info("long", text="x" * 10_000)
    many, long = rec.logs()
    assert len(many.attributes) == 128
    assert len(str(long.attributes["text"])) == 4097


def test_exception(rec: Recorder, root: Experiment) -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        root.log.exception("failed {what}", what="flush")
    record = rec.log()
    assert (record.level, record.message) == ("ERROR", "failed flush")
    assert record.attributes["what"] == "flush"
    text = str(record.attributes["exception"])
    assert "Traceback" in text and "ValueError: bad" in text


def test_exception_outside_an_except_block(rec: Recorder, root: Experiment) -> None:
    root.log.exception("nothing to show")
    record = rec.log()
    assert record.level == "ERROR" and "exception" not in record.attributes


# -- filtered-out calls -----------------------------------------------------------------------


class _Untouchable:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"loguru was touched: .{name}")


def test_filtered_out_calls_do_not_touch_loguru(
    rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = rec.new("server", level="prod", console=True)
    monkeypatch.setattr(logger_module, "_loguru", _Untouchable())
    formatted = []

    class Spy:
        def __format__(self, spec: str) -> str:
            formatted.append(spec)
            return "spy"

    root.log.debug("hidden {}", Spy())
    root.log.trace("hidden {x}", x=Spy())
    root.log.log("DEBUG", "hidden {}", Spy())
    alamos.NOOP.log.critical("hidden {}", Spy())
    assert formatted == [] and rec.logs() == []
    with pytest.raises(AssertionError, match="loguru was touched"):
        root.log.info("shown")  # the check really is in place


# -- the loguru side ----------------------------------------------------------------------------


def test_console_on_passes_records_to_loguru(rec: Recorder, sink: list[Any]) -> None:
    root = rec.new("server", console=True)
    cesium = root.sub("cesium")
    cesium.log.success("hello {}", "world")
    cesium.log.trace("fine")
    hello, fine = [r for r in sink if r["extra"].get("alamos_path") == "server.cesium"]
    assert hello["message"] == "hello world"
    assert hello["level"].name == "SUCCESS" and fine["level"].name == "TRACE"
    assert hello["extra"]["alamos"] is True
    assert hello["function"] == "test_console_on_passes_records_to_loguru"
    assert rec.log(level="SUCCESS").message == "hello world"  # recorded as well


def test_console_exception_reaches_loguru(rec: Recorder, sink: list[Any]) -> None:
    root = rec.new("server", console=True)
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        root.log.exception("oops")
    (record,) = [r for r in sink if r["extra"].get("alamos")]
    assert record["exception"] is not None and record["exception"].type is ZeroDivisionError


def test_console_exception_outside_an_except_block(rec: Recorder, sink: list[Any]) -> None:
    root = rec.new("server", console=True)
    root.log.exception("no exception here")
    (record,) = [r for r in sink if r["extra"].get("alamos")]
    assert record["exception"] is None


def test_console_off(rec: Recorder, sink: list[Any]) -> None:
    root = rec.new("server", console=False)
    root.log.critical("quiet")
    assert [r for r in sink if r["extra"].get("alamos_path")] == []
    assert rec.log().message == "quiet"


@pytest.mark.parametrize(("value", "on"), [("0", False), ("off", False), ("1", True), ("", True)])
def test_alamos_console_env(
    monkeypatch: pytest.MonkeyPatch, sink: list[Any], value: str, on: bool
) -> None:
    monkeypatch.setenv("ALAMOS_CONSOLE", value)
    root = alamos.new("envconsole", console=None)
    root.log.info("maybe")
    root.close()
    assert bool([r for r in sink if r["extra"].get("alamos_path") == "envconsole"]) is on


def test_alamos_never_removes_user_sinks(rec: Recorder, sink: list[Any]) -> None:
    for console in (True, False):
        root = rec.new("server", console=console)
        root.log.info("x")
        root.close()
    other = alamos.new("other", console=True)
    alamos.log.capture(other)
    other.close()
    logger.bind(user=True).info("user message")
    assert [r["message"] for r in sink if r["extra"].get("user")] == ["user message"]


# -- capturing plain loguru calls ---------------------------------------------------------------


def test_capture_plain_loguru_calls(rec: Recorder, sink: list[Any]) -> None:
    root = rec.new("server", level="debug", console=True)
    cesium = root.sub("cesium")
    cap = alamos.log.capture(cesium)
    with cesium.trace.prod("write") as span:
        logger.bind(user_id=7).info("plain {}", "loguru")
    logger.trace("below the filter")
    cesium.log.info("own call")  # passed to loguru, but not captured twice
    cap.close()
    cap.close()
    logger.info("after close")
    captured = [r for r in rec.logs() if r.message != "own call"]
    assert [r.message for r in captured] == ["plain loguru"]
    (record,) = captured
    assert (record.path, record.level) == ("server.cesium", "INFO")
    assert (record.trace_id, record.span_id) == (span.trace_id, span.span_id)
    assert record.attributes["user_id"] == 7
    assert len(rec.logs(message="own call")) == 1


def test_capture_is_removed_when_the_tree_closes(rec: Recorder, sink: list[Any]) -> None:
    root = rec.new("server", console=False)
    alamos.log.capture(root)
    root.close()
    logger.info("after close")
    assert rec.logs() == []
    assert any(r["message"] == "after close" for r in sink)  # the user's sink is still there


def test_capture_on_noop_or_a_closed_tree_adds_no_sink(rec: Recorder) -> None:
    root = rec.new("server")
    root.close()
    for exp in (alamos.NOOP, root):
        cap = alamos.log.capture(exp)
        assert cap.handler_id is None
        cap.close()
    logger.info("nobody captures this")
    assert rec.logs() == []
