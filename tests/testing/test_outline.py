"""rec.assert_tree and rec.outline: the shape of recorded traces."""

from __future__ import annotations

import pytest

from alamos import Experiment, new
from alamos.testing import Recorder
from alamos.testing.outline import canonical_outline


def handle(root: Experiment) -> None:
    api, cesium = root.sub("api"), root.sub("cesium")
    with api.trace.prod("handle"):
        with cesium.trace.prod("write"), cesium.sub("wal").trace.debug("fsync"):
            pass
        with cesium.trace.prod("index"):
            pass


def test_assert_tree_matches(alamos_recorder: Recorder) -> None:
    handle(alamos_recorder.new("server"))
    alamos_recorder.assert_tree(
        """
        server.api.handle
          server.cesium.write
            server.cesium.wal.fsync
          server.cesium.index
        """
    )
    assert alamos_recorder.outline() == (
        "server.api.handle\n"
        "  server.cesium.write\n"
        "    server.cesium.wal.fsync\n"
        "  server.cesium.index"
    )


def test_several_traces_are_several_top_level_lines(alamos_recorder: Recorder) -> None:
    root = alamos_recorder.new("server")
    handle(root)
    with root.trace.prod("tick"):
        pass
    handle(root)
    alamos_recorder.assert_tree(
        """
        server.api.handle
          server.cesium.write
            server.cesium.wal.fsync
          server.cesium.index
        server.tick
        server.api.handle
          server.cesium.write
            server.cesium.wal.fsync
          server.cesium.index
        """
    )


def test_siblings_in_start_order(alamos_recorder: Recorder) -> None:
    root = alamos_recorder.new("server")
    with root.trace.prod("parent") as parent:
        late_ender = root.trace.prod("a", parent=parent).start()
        with root.trace.prod("b", parent=parent):
            pass
        late_ender.end()
    # a ended after b (it is recorded after b), but started before it.
    assert [s.name for s in alamos_recorder.spans()] == ["b", "a", "parent"]
    alamos_recorder.assert_tree(
        """
        server.parent
          server.a
          server.b
        """
    )


def test_filters_select_part_of_the_forest(alamos_recorder: Recorder) -> None:
    root = alamos_recorder.new("server")
    handle(root)
    with root.trace.prod("tick"):
        pass
    write = alamos_recorder.span(name="write")
    alamos_recorder.assert_tree(
        "server.api.handle\n  server.cesium.write\n    server.cesium.wal.fsync\n"
        "  server.cesium.index",
        trace_id=write.trace_id,
    )
    # A span whose parent was filtered out is drawn at the top level.
    alamos_recorder.assert_tree(
        """
        server.cesium.write
          server.cesium.wal.fsync
        server.cesium.index
        """,
        path="server.cesium.*",
    )


def test_parent_not_recorded_makes_a_top_level_line(alamos_recorder: Recorder) -> None:
    # Spans of a tree the recorder does not see (level prod, remote parent...)
    quiet = new("remote", level="prod", console=False)
    root = alamos_recorder.new("server")
    with quiet.trace.prod("caller") as caller, root.trace.prod("handler", parent=caller.context):
        pass
    quiet.close()
    alamos_recorder.assert_tree("server.handler")


def test_assert_tree_failure_shows_a_diff(alamos_recorder: Recorder) -> None:
    handle(alamos_recorder.new("server"))
    with pytest.raises(AssertionError) as info:
        alamos_recorder.assert_tree(
            """
            server.api.handle
              server.cesium.write
              server.cesium.wal.fsync
              server.cesium.read
            """
        )
    assert str(info.value) == (
        "recorded span tree does not match the expected outline (- expected, + actual):\n"
        "--- expected\n"
        "+++ actual\n"
        "@@ -1,4 +1,4 @@\n"
        " server.api.handle\n"
        "   server.cesium.write\n"
        "-  server.cesium.wal.fsync\n"
        "-  server.cesium.read\n"
        "+    server.cesium.wal.fsync\n"
        "+  server.cesium.index\n"
        "\n"
        "actual outline:\n"
        "server.api.handle\n"
        "  server.cesium.write\n"
        "    server.cesium.wal.fsync\n"
        "  server.cesium.index"
    )


def test_assert_tree_with_nothing_recorded(alamos_recorder: Recorder) -> None:
    with pytest.raises(AssertionError) as info:
        alamos_recorder.assert_tree("server.api.handle")
    text = str(info.value)
    assert "-server.api.handle" in text
    assert text.endswith("actual outline:\n(no spans recorded)")
    alamos_recorder.assert_tree("")  # nothing expected, nothing recorded


def test_expected_outline_indent_is_free_but_consistent() -> None:
    assert canonical_outline("a\n    b\n        c\n    d\ne") == ["a", "  b", "    c", "  d", "e"]
    assert canonical_outline("\ta\n\t\tb\n") == ["a", "  b"]
    assert canonical_outline("a\n\n   b  \n") == ["a", "  b"]  # blank lines, trailing spaces
    with pytest.raises(ValueError, match=r"line 3 \('c'\): its indent \(2\) matches no"):
        canonical_outline("a\n    b\n  c")
    with pytest.raises(ValueError, match="line 2"):
        canonical_outline("  a\nb")
