"""The pytest plugin, tested from the outside with pytester: its fixtures,
its checks and their failure messages."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _same_output_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest prints whole failure messages in its short summary when it
    detects CI (``CI`` or ``BUILD_NUMBER`` set); the inner runs must produce
    the same output here and in CI for the line counts below to mean anything."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)


def test_fixtures_are_there_without_any_import(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_it(alamos_recorder, alamos_experiment):
            assert alamos_experiment.path == "test"
            assert alamos_recorder.trees == [alamos_experiment]
            with alamos_experiment.trace.bench("b"):
                alamos_experiment.log.trace("everything is on")
            assert str(alamos_recorder.span(name="b").level) == "bench"
            assert alamos_recorder.log().level == "TRACE"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_failed_queries_point_at_the_test_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_query="""
        def test_query(alamos_experiment, alamos_recorder):
            with alamos_experiment.trace.prod("write"):
                pass
            alamos_recorder.span(name="read")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            '>       alamos_recorder.span(name="read")',
            "E       AssertionError: expected exactly one span matching name='read', found 0. "
            "Recorded spans (1):",
            "E         test.write ?prod, unset? trace=*",  # fnmatch: [...] is a class
            "test_query.py:4: AssertionError",
        ]
    )
    assert "recorder.py" not in result.stdout.str()  # no frames inside alamos


def test_unended_span_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_leak="""
        def test_leaks(alamos_experiment):
            with alamos_experiment.trace.prod("ok"):
                pass
            alamos_experiment.sub("db").trace.debug("query").start()   # line 4

        def test_fine(alamos_experiment):
            with alamos_experiment.trace.prod("ok"):
                pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1, errors=0)
    result.stdout.fnmatch_lines(
        [
            "*_ test_leaks _*",
            "alamos: 1 span(s) started by the test and never ended:",
            "  test.db.query started at */test_leak.py:4",
            "End every span: use `with exp.trace.prod(...)`, or call span.end() in a "
            "`finally` block.",
            "*= short test summary info =*",
            "FAILED test_leak.py::test_leaks - Failed: alamos: 1 span(s) started by the te*",
        ]
    )
    out = result.stdout.str()
    assert "Traceback" not in out  # the message is the whole story...
    assert "alamos debug mode" not in out  # ...and is told once (not again by close)


def test_span_ended_by_a_fixture_teardown_is_fine(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def request_span(alamos_experiment):
            with alamos_experiment.trace.prod("request") as span:
                yield span

        def test_inside(request_span, alamos_recorder):
            assert alamos_recorder.unended() == [request_span]
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_span_left_by_a_fixture_is_a_teardown_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fixture_leak="""
        import pytest

        @pytest.fixture
        def opened(alamos_experiment):
            return alamos_experiment.trace.prod("forgotten").start()

        def test_uses_it(opened):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_uses_it*",
            "alamos: 1 span(s) started during the test's setup or teardown and never ended:",
            "  test.forgotten started at */test_fixture_leak.py:5",
        ]
    )


def test_a_failing_test_gets_no_extra_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_fails(alamos_experiment):
            alamos_experiment.trace.prod("open").start()
            alamos_experiment.log.error("and an error")
            assert 1 == 2
        """
    )
    result = pytester.runpytest("--alamos-fail-on-error-logs")
    result.assert_outcomes(failed=1, errors=0)
    assert "alamos:" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*assert 1 == 2*"])


def test_strict_tree_is_reported_not_raised(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_strict(alamos_recorder):
            alamos_recorder.new("strict", strict=True).trace.prod("open").start()
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1, errors=0)
    result.stdout.fnmatch_lines(["  strict.open started at *"])
    assert "UnendedSpansError" not in result.stdout.str()


ERROR_TESTS = """
    import pytest

    def test_error(alamos_experiment):
        alamos_experiment.sub("db").log.error("connection lost: {code}", code=57)

    def test_critical(alamos_experiment):
        alamos_experiment.log.critical("on fire")

    def test_warning(alamos_experiment):
        alamos_experiment.log.warning("only a warning")

    @pytest.mark.alamos_allow_errors
    def test_allowed(alamos_experiment):
        alamos_experiment.log.error("expected")
    """


def test_error_logs_pass_by_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ERROR_TESTS)
    pytester.runpytest().assert_outcomes(passed=4)


def test_error_logs_fail_with_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_errors=ERROR_TESTS)
    result = pytester.runpytest("--alamos-fail-on-error-logs")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_error _*",
            "alamos: 1 log(s) at ERROR or above (--alamos-fail-on-error-logs):",
            "  test.db ERROR: 'connection lost: 57' code=57",
            "*_ test_critical _*",
            "  test CRITICAL: 'on fire'",
        ]
    )
    assert "only a warning" not in result.stdout.str()
    assert "expected" not in result.stdout.str()


def test_error_logs_fail_with_the_ini_option(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nalamos_fail_on_error_logs = true\n")
    pytester.makepyfile(ERROR_TESTS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        ["alamos: 1 log(s) at ERROR or above (alamos_fail_on_error_logs = true):"]
    )


def test_error_logs_fail_with_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.alamos_no_errors
        def test_marked(alamos_experiment):
            alamos_experiment.log.error("one")
            alamos_experiment.log.exception("two")

        @pytest.mark.alamos_no_errors
        def test_marked_clean(alamos_experiment):
            alamos_experiment.log.warning("fine")

        def test_unmarked(alamos_experiment):
            alamos_experiment.log.error("not checked")
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "alamos: 2 log(s) at ERROR or above (@pytest.mark.alamos_no_errors):",
            "  test ERROR: 'one'",
            "  test ERROR: 'two'",
        ]
    )


def test_error_logged_in_teardown_is_a_teardown_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def service(alamos_experiment):
            yield alamos_experiment
            alamos_experiment.log.error("shutdown failed")

        @pytest.mark.alamos_no_errors
        def test_it(service):
            service.log.info("working")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_it*", "  test ERROR: 'shutdown failed'"]
    )


def test_markers_and_option_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.alamos_no_errors: fail the test if its alamos_recorder holds a log "
            "at ERROR or above",
            "@pytest.mark.alamos_allow_errors: exempt the test from --alamos-fail-on-error-logs",
        ]
    )
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--alamos-fail-on-error-logs*", "*alamos_fail_on_error_logs*"])


def test_tests_see_nothing_of_each_other(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        seen = {}

        def test_first(alamos_recorder, alamos_experiment):
            seen["recorder"], seen["tree"] = alamos_recorder, alamos_experiment
            with alamos_experiment.trace.prod("first"):
                alamos_experiment.log.info("from the first test")
            alamos_experiment.metrics.counter("runs").inc()
            assert alamos_recorder.metric("test", "runs") == 1

        def test_second(alamos_recorder, alamos_experiment):
            assert alamos_recorder is not seen["recorder"]
            assert alamos_experiment is not seen["tree"]
            assert seen["tree"].closed
            assert alamos_recorder.spans() == [] and alamos_recorder.logs() == []
            with pytest.raises(AssertionError, match="no metric 'runs' of 'test'"):
                alamos_recorder.metric("test", "runs")  # no such metric here
            alamos_experiment.metrics.counter("runs").inc()
            assert alamos_recorder.metric("test", "runs") == 1
            # the previous test's tree is closed: it records nothing, anywhere
            with seen["tree"].trace.prod("late"):
                pass
            assert alamos_recorder.spans() == [] and seen["recorder"].spans(name="late") == []
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_a_leaked_current_span_does_not_reach_the_next_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import alamos

        def test_leaks_without_the_fixture():
            tree = alamos.new("elsewhere", console=False)
            tree.trace.prod("never-ended").start()
            assert alamos.current_span() is not None

        def test_next(alamos_experiment, alamos_recorder):
            assert alamos.current_span() is None
            with alamos_experiment.trace.prod("fresh"):
                pass
            assert alamos_recorder.span(name="fresh").parent_id is None
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


ASYNC_TESTS = """
    import anyio
    import pytest

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(request):
        return request.param

    @pytest.mark.anyio
    async def test_tasks(alamos_recorder, alamos_experiment):
        async def worker(i):
            await anyio.sleep(0.02 * i)  # trio starts tasks in any order: start them in turn
            with alamos_experiment.sub("worker").trace.prod(f"job{i}"):
                await anyio.sleep(0.02 * (3 - i))  # and end them the other way round
                alamos_experiment.log.info("job {i} done", i=i)

        with alamos_experiment.trace.prod("batch"):
            async with anyio.create_task_group() as tg:
                for i in range(3):
                    tg.start_soon(worker, i)
        alamos_recorder.assert_tree(
            '''
            test.batch
              test.worker.job0
              test.worker.job1
              test.worker.job2
            '''
        )
        batch = alamos_recorder.span(name="batch")
        assert len(alamos_recorder.logs(trace_id=batch.trace_id)) == 3

    @pytest.mark.anyio
    async def test_leak(alamos_experiment):
        alamos_experiment.trace.prod("async-open").start()
        await anyio.sleep(0)
    """


def test_async_tests_on_asyncio_and_trio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ASYNC_TESTS)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines_random(
        [
            "*test_tasks?asyncio? PASSED*",
            "*test_tasks?trio? PASSED*",
            "*test_leak?asyncio? FAILED*",
            "*test_leak?trio? FAILED*",
        ]
    )
    assert result.stdout.str().count("  test.async-open started at ") == 2
