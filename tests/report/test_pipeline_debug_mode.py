"""Debug mode, end to end: spans started and never ended are reported at
close (path, name, file:line; ``strict=True`` raises
``alamos.UnendedSpansError``), and everything else is still flushed to the
database (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextvars
import inspect
from pathlib import Path

import pytest

import alamos

from .pipeline_support import HANG, count, new_root, query


def leak(exp: alamos.Experiment, name: str) -> int:
    """Start a span and never end it (not current here); its line number."""
    line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
    contextvars.copy_context().run(lambda: exp.trace.prod(name).start())
    return line


def record_the_rest(root: alamos.Experiment) -> None:
    api = root.sub("api")
    for i in range(50):
        with api.trace.prod("fine", attributes={"i": i}):
            api.log.info("fine {i}", i=i)
    api.metrics.counter("done").inc(50)


def check_the_rest_was_flushed(url: str) -> None:
    assert count(url, "alamos_spans", "name = 'fine'") == 50
    assert count(url, "alamos_spans", "name = 'leaked'") == 0  # never ended: no record
    assert count(url, "alamos_logs", "message LIKE 'fine %'") == 50
    ((value,),) = query(url, "SELECT value FROM alamos_metrics WHERE name = 'done'")
    assert value == 50.0  # the final snapshot, taken at close
    assert count(url, "alamos_experiments") == 3


def test_debug_mode_warns_about_unended_spans(db_url: str, tmp_path: Path) -> None:
    root = new_root("dbg", db_url, tmp_path / "spool", debug=True)
    line = leak(root.sub("cesium"), "leaked")
    record_the_rest(root)
    with pytest.warns(ResourceWarning, match=r"1 span\(s\) started and never ended") as info:
        root.close(HANG)
    (warning,) = [w for w in info if issubclass(w.category, ResourceWarning)]
    message = str(warning.message)
    assert f"dbg.cesium:leaked started at {__file__}:{line}" in message
    check_the_rest_was_flushed(db_url)


def test_strict_debug_mode_raises_and_still_flushes(db_url: str, tmp_path: Path) -> None:
    root = new_root("dbg", db_url, tmp_path / "spool", debug=True, strict=True)
    lines = [leak(root.sub("cesium"), "leaked"), leak(root, "leaked")]
    record_the_rest(root)
    with pytest.warns(ResourceWarning), pytest.raises(alamos.UnendedSpansError) as info:
        root.close(HANG)
    error = info.value
    assert str(error).startswith("2 span(s) started and never ended:\n")
    assert sorted(s.path for s in error.spans) == ["dbg", "dbg.cesium"]
    for line in lines:
        assert f"{__file__}:{line}" in str(error)
    root.close(HANG)  # closed: a second close neither raises nor warns
    check_the_rest_was_flushed(db_url)


def test_without_debug_unended_spans_are_silent(
    sqlite_url: str, tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    root = new_root("dbg", sqlite_url, tmp_path / "spool", strict=True)  # strict alone: no-op
    leak(root.sub("cesium"), "leaked")
    record_the_rest(root)
    root.close(HANG)
    assert not [w for w in recwarn if issubclass(w.category, ResourceWarning)]
    check_the_rest_was_flushed(sqlite_url)
