"""The alamos pytest plugin (registered through the ``pytest11`` entry point,
so installing alamos is enough: no ``conftest.py`` import, no global reset).

Fixtures:

* ``alamos_recorder``: a fresh :class:`~alamos.testing.Recorder` per test.
  Its trees are closed after the test.  A test that leaves spans started and
  not ended fails, with the list of those spans and where each was started;
* ``alamos_experiment``: ``alamos_recorder.new("test")``.

Applications that make their root at import time: with
``--alamos-capture-all`` (ini: ``alamos_capture_all = true``) every test gets
an ``alamos_recorder`` (set up before its other fixtures), attached to every
open tree of the process, those made at import time included, and to every
tree made during the test; it is detached after the test.  Each test sees
only what was recorded while it ran.  Without the option, attach one tree
with ``alamos_recorder.attach(root)``.

Error logs: with the marker ``@pytest.mark.alamos_no_errors``, or for every
test with ``--alamos-fail-on-error-logs`` (ini: ``alamos_fail_on_error_logs =
true``), a test whose recorder holds a log at ERROR or above fails.
``@pytest.mark.alamos_allow_errors`` exempts one test from the option.

Where failures are reported.  The checks run right after the test function
(in the *call* phase), so the problem is reported as the test's own failure,
not as a teardown error.  Only what the test function itself left behind is
checked then: a span opened by a fixture's setup may legitimately be ended
by that fixture's teardown.  Whatever is still wrong when the recorder is
torn down (after every fixture that uses it) is reported as a teardown
error.  When the test has already failed, nothing is added: its own failure
is the one worth reading.

The fixtures are synchronous and keep no state outside the test's item, so
they work unchanged in sync tests and in async tests on asyncio and trio
(anyio's pytest plugin), and two tests never see each other's records.  The
one piece of state tests do share, the thread's current span, is put back
after every test, so a span one test leaves open cannot become the parent
of the next test's spans.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Generator, Iterator, Sequence
from typing import Any

import attrs
import pytest

from alamos.core import process
from alamos.core.context import CURRENT
from alamos.core.errors import UnendedSpansError
from alamos.core.records import LogRecord
from alamos.experiment.experiment import Experiment
from alamos.testing.match import describe_log
from alamos.testing.recorder import Recorder
from alamos.trace.span import Span

__all__ = ["alamos_experiment", "alamos_recorder"]

OPTION = "alamos_fail_on_error_logs"
CAPTURE_ALL = "alamos_capture_all"
NO_ERRORS = "alamos_no_errors"
ALLOW_ERRORS = "alamos_allow_errors"


@attrs.define
class _TestState:
    """What the plugin knows about one test's recorder."""

    recorder: Recorder
    #: Spans and logs already reported (or excused because the test failed),
    #: so that the teardown check does not report them a second time.
    spans_done: list[Span] = attrs.field(factory=list)
    logs_done: set[str] = attrs.field(factory=set)

    def new_unended(self, exclude: Sequence[Span] = ()) -> list[Span]:
        skip = [*self.spans_done, *exclude]
        return [s for s in self.recorder.unended() if not any(s is d for d in skip)]

    def new_errors(self) -> list[LogRecord]:
        return [r for r in self.recorder.logs(min_level="ERROR") if r.id not in self.logs_done]

    def done(self, spans: list[Span], logs: list[LogRecord]) -> None:
        self.spans_done.extend(spans)
        self.logs_done.update(r.id for r in logs)


_STATE = pytest.StashKey[_TestState]()


class _CaptureAll:
    """The capture-all mode of one pytest session: the recorder of the test
    running now, attached to every tree made while it runs."""

    def __init__(self) -> None:
        self.current: Recorder | None = None
        self.unwatch = process.watch_roots(self._new_root)

    def _new_root(self, root: Any) -> None:
        recorder = self.current
        if recorder is not None and isinstance(root, Experiment):
            recorder.attach(root)

    def start(self, recorder: Recorder) -> None:
        self.current = recorder
        for root in process.live_roots():
            if isinstance(root, Experiment) and not root.closed:
                recorder.attach(root)

    def stop(self, recorder: Recorder) -> None:
        if self.current is recorder:
            self.current = None
        recorder.detach_all()


_CAPTURE = pytest.StashKey[_CaptureAll]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("alamos", "alamos instrumentation")
    group.addoption(
        "--alamos-fail-on-error-logs",
        action="store_true",
        default=False,
        dest=OPTION,
        help="fail every test whose alamos_recorder holds a log at ERROR or above "
        "(exempt one with @pytest.mark.alamos_allow_errors)",
    )
    parser.addini(
        OPTION,
        type="bool",
        default=False,
        help="like --alamos-fail-on-error-logs, from the ini file",
    )
    group.addoption(
        "--alamos-capture-all",
        action="store_true",
        default=False,
        dest=CAPTURE_ALL,
        help="give every test an alamos_recorder attached to every alamos tree of the "
        "process (trees made at import time included) while the test runs",
    )
    parser.addini(
        CAPTURE_ALL,
        type="bool",
        default=False,
        help="like --alamos-capture-all, from the ini file",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{NO_ERRORS}: fail the test if its alamos_recorder holds a log at ERROR or above",
    )
    config.addinivalue_line(
        "markers",
        f"{ALLOW_ERRORS}: exempt the test from --alamos-fail-on-error-logs",
    )
    if config.getoption(CAPTURE_ALL, False) or config.getini(CAPTURE_ALL):
        config.stash[_CAPTURE] = _CaptureAll()


def pytest_unconfigure(config: pytest.Config) -> None:
    capture = config.stash.get(_CAPTURE, None)
    if capture is not None:
        capture.unwatch()
        del config.stash[_CAPTURE]


def _error_check(item: pytest.Item) -> str | None:
    """Why error logs fail this test (for the message), or ``None``."""
    if item.get_closest_marker(NO_ERRORS) is not None:
        return f"@pytest.mark.{NO_ERRORS}"
    if item.get_closest_marker(ALLOW_ERRORS) is not None:
        return None
    config = item.config
    if config.getoption(OPTION, False):
        return "--alamos-fail-on-error-logs"
    if config.getini(OPTION):
        return f"{OPTION} = true"
    return None


def _report(spans: list[Span], logs: list[LogRecord], why: str | None, when: str) -> str:
    parts = []
    if spans:
        lines = "\n".join(f"  {s.path}.{s.name} started at {s.location}" for s in spans)
        parts.append(
            f"alamos: {len(spans)} span(s) started {when} and never ended:\n{lines}\n"
            "End every span: use `with exp.trace.prod(...)`, or call span.end() in a "
            "`finally` block."
        )
    if logs:
        lines = "\n".join(f"  {describe_log(r)}" for r in logs)
        parts.append(f"alamos: {len(logs)} log(s) at ERROR or above ({why}):\n{lines}")
    return "\n\n".join(parts)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: object) -> Generator[None, Any, Any]:
    """Give every test the current span it started with.

    A span started and never ended stays the current span of the thread's
    context, and every later span would become its child: one test's leak
    would reparent the next test's traces.  Sync tests share the thread's
    context, so the current span is put back after each test (whether it
    uses the fixtures or not).
    """
    saved = CURRENT.get()
    try:
        return (yield)
    finally:
        if CURRENT.get() is not saved:
            CURRENT.set(saved)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """Check what the test function left behind, as part of the test."""
    state = item.stash.get(_STATE, None)
    if state is None:
        return (yield)
    before = state.recorder.unended()
    why = _error_check(item)
    try:
        result = yield
    except BaseException:
        state.done(state.new_unended(before), state.new_errors())
        raise
    spans = state.new_unended(before)
    logs = state.new_errors() if why is not None else []
    state.done(spans, logs)
    if spans or logs:
        pytest.fail(_report(spans, logs, why, "by the test"), pytrace=False)
    return result


@pytest.fixture
def alamos_recorder(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    """A fresh Recorder for this test; its trees are closed afterwards, and
    spans left unended fail the test (see the module doc)."""
    recorder = Recorder()
    state = _TestState(recorder)
    stash = request.node.stash
    stash[_STATE] = state
    capture = request.config.stash.get(_CAPTURE, None)
    if capture is not None:
        capture.start(recorder)
    try:
        yield recorder
        if capture is not None:
            capture.stop(recorder)
        spans = state.new_unended()
        why = _error_check(request.node)
        logs = state.new_errors() if why is not None else []
        # The tree's own close would warn (and log, and with strict=True
        # raise) about the spans reported here: they are this plugin's to
        # report, once, in the test's terms.  So the trees forget them first.
        for root in recorder.trees:
            for span in [*state.spans_done, *spans]:
                root.open_spans.discard(span)
        with warnings.catch_warnings(), contextlib.suppress(UnendedSpansError):
            warnings.simplefilter("ignore", ResourceWarning)
            recorder.close()
    finally:
        if capture is not None:
            capture.stop(recorder)
        # pytest keeps every item (and its stash) until the session ends:
        # do not keep every test's records alive with it.
        del stash[_STATE]
    if spans or logs:
        pytest.fail(_report(spans, logs, why, "during the test's setup or teardown"), pytrace=False)


@pytest.fixture(autouse=True)
def _alamos_capture_all(request: pytest.FixtureRequest) -> None:
    """With --alamos-capture-all, every test gets its recorder first thing."""
    if _CAPTURE in request.config.stash:
        request.getfixturevalue("alamos_recorder")


@pytest.fixture
def alamos_experiment(alamos_recorder: Recorder) -> Experiment:
    """``alamos_recorder.new("test")``: a tree with everything on."""
    return alamos_recorder.new("test")
