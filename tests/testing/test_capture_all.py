"""The plugin's capture-all mode (issue 14, problem 1): an application whose
root is made at import time is tested unchanged, each test sees only its own
records, in any order.  Each case runs a generated test session with pytester."""

from __future__ import annotations

import pytest

APP = """
import alamos

root = alamos.new("shop", console=False)   # at import time, as everyone writes it
repo = root.sub("repo")
queries = repo.metrics.counter("queries", "Queries run")


def handle(name):
    with root.trace.prod("GET /" + name):
        with repo.trace.prod("select"):
            queries.inc()
        repo.log.info("served {name}", name=name)
"""

TEST_A = """
import shop_app


def test_a(alamos_recorder):
    shop_app.handle("a")
    assert [s.name for s in alamos_recorder.spans(path="shop")] == ["GET /a"]
    assert [r.message for r in alamos_recorder.logs()] == ["served a"]
    assert alamos_recorder.metric("shop.repo", "queries") == 1


def test_without_the_fixture():
    shop_app.handle("nobody")  # recorded by no test: the next test must not see it
"""

TEST_B = """
import alamos
import shop_app


def test_b(alamos_recorder):
    shop_app.handle("b1")
    shop_app.handle("b2")
    assert [s.name for s in alamos_recorder.spans(name="select")] == ["select", "select"]
    assert [r.message for r in alamos_recorder.logs()] == ["served b1", "served b2"]
    assert alamos_recorder.metric("shop.repo", "queries") == 2


def test_a_tree_made_during_the_test(alamos_recorder):
    late = alamos.new("late", console=False)
    with late.trace.prod("work"):
        pass
    late.close()
    assert [(s.path, s.name) for s in alamos_recorder.spans()] == [("late", "work")]
"""


@pytest.fixture
def app(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(shop_app=APP, test_a=TEST_A, test_b=TEST_B)
    return pytester


@pytest.mark.parametrize(
    "order", [["test_a.py", "test_b.py"], ["test_b.py", "test_a.py"]], ids=["ab", "ba"]
)
def test_module_level_roots_are_captured_in_any_order(
    app: pytest.Pytester, order: list[str]
) -> None:
    result = app.runpytest("-p", "no:randomly", "--alamos-capture-all", *order)
    result.assert_outcomes(passed=4)


def test_the_ini_option(app: pytest.Pytester) -> None:
    app.makeini("[pytest]\nalamos_capture_all = true\n")
    app.runpytest("-p", "no:randomly", "test_b.py", "test_a.py").assert_outcomes(passed=4)


def test_without_the_option_a_module_level_root_is_not_captured(app: pytest.Pytester) -> None:
    # What issue 14 saw: "recorded spans: []".
    result = app.runpytest("-p", "no:randomly", "test_a.py")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*assert [] == ['GET /a']*"])


def test_attach_in_a_fixture_without_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        shop_app=APP,
        test_attach="""
        import pytest
        import shop_app


        @pytest.fixture
        def rec(alamos_recorder):
            with alamos_recorder.attach(shop_app.root):
                yield alamos_recorder


        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_each_sees_its_own(rec, n):
            for i in range(n):
                shop_app.handle(str(i))
            assert len(rec.spans(name="select")) == n
            assert rec.metric("shop.repo", "queries") == n


        def test_detached_after_the_fixture():
            assert shop_app.root.exporters == ()
        """,
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=4)


def test_the_option_is_in_the_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--alamos-capture-all*", "*alamos_capture_all*"])
