"""Expected exceptions (issue 14, problem 6): ``ignore=`` per span, per
experiment (and its subtree), per tree, and a context's predicate
(``alamos.core.context.EXPECTED``, set by the ASGI middleware)."""

from __future__ import annotations

import pytest

import alamos
from alamos.core.context import EXPECTED
from alamos.testing import Recorder


class HTTPException(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class NotFound(HTTPException):
    pass


def _expected_event(span: alamos.SpanRecord, type_: str, message: str) -> None:
    assert span.status == "unset"
    assert span.error_text is None
    ((event),) = span.events
    assert event.name == "exception"
    assert dict(event.attributes) == {"type": type_, "message": message, "expected": True}


def test_an_exception_leaving_a_span_is_an_error_by_default(
    root: alamos.Experiment, rec: Recorder
) -> None:
    """What problem 6 reported: an HTTPException(404) marks the span as an error."""
    with pytest.raises(HTTPException), root.trace.prod("get"):
        raise HTTPException(404)
    span = rec.span(name="get")
    assert (span.status, span.error_text) == ("error", "HTTPException: HTTP 404")


def test_ignore_on_one_span(root: alamos.Experiment, rec: Recorder) -> None:
    with pytest.raises(NotFound), root.trace.prod("get", ignore=(HTTPException,)):
        raise NotFound(404)  # a subclass is expected too
    _expected_event(rec.span(name="get"), "NotFound", "HTTP 404")
    with pytest.raises(KeyError), root.trace.prod("other", ignore=(HTTPException,)):
        raise KeyError("k")
    assert rec.span(name="other").status == "error"
    with pytest.raises(HTTPException), root.trace.prod("plain"):
        raise HTTPException(404)  # the span's ignore= is its own
    assert rec.span(name="plain").status == "error"


def test_ignore_per_experiment_covers_its_subtree(root: alamos.Experiment, rec: Recorder) -> None:
    api = root.sub("api")
    before = api.sub("before")
    api.ignore(HTTPException)
    after = api.sub("after")  # made later: inherits
    for exp in (api, before, after):
        with pytest.raises(HTTPException), exp.trace.prod("get"):
            raise HTTPException(404)
        _expected_event(rec.span(path=exp.path, name="get"), "HTTPException", "HTTP 404")
    with pytest.raises(HTTPException), root.trace.prod("get"):
        raise HTTPException(404)
    assert rec.span(path="server", name="get").status == "error"  # the parent is not covered
    api.ignore(KeyError, HTTPException)  # adds, once each
    assert api.trace.ignore == (HTTPException, KeyError) == after.trace.ignore


def test_ignore_for_the_whole_tree(rec: Recorder) -> None:
    root = rec.new("shop", ignore=(HTTPException,))
    with pytest.raises(HTTPException), root.sub("a").sub("b").trace.debug("deep"):
        raise HTTPException(409)
    _expected_event(rec.span(name="deep"), "HTTPException", "HTTP 409")


def test_explicit_error_still_wins(root: alamos.Experiment, rec: Recorder) -> None:
    root.ignore(HTTPException)
    with pytest.raises(HTTPException), root.trace.prod("get") as span:
        raise span.error(HTTPException(404))
    assert rec.span(name="get").status == "error"
    assert [e.name for e in rec.span(name="get").events] == ["exception"]


def test_the_contexts_predicate(root: alamos.Experiment, rec: Recorder) -> None:
    token = EXPECTED.set(lambda exc: isinstance(exc, HTTPException) and exc.status_code < 500)
    try:
        with pytest.raises(HTTPException), root.trace.prod("client_error"):
            raise HTTPException(404)
        with pytest.raises(HTTPException), root.trace.prod("server_error"):
            raise HTTPException(503)
    finally:
        EXPECTED.reset(token)
    _expected_event(rec.span(name="client_error"), "HTTPException", "HTTP 404")
    assert rec.span(name="server_error").status == "error"

    def broken(exc: BaseException) -> bool:
        raise RuntimeError("predicate bug")

    token = EXPECTED.set(broken)
    try:
        with pytest.raises(HTTPException), root.trace.prod("broken"):
            raise HTTPException(404)
    finally:
        EXPECTED.reset(token)
    assert rec.span(name="broken").status == "error"  # as without a predicate


def test_ignore_is_validated(root: alamos.Experiment, rec: Recorder) -> None:
    message = r"give exception classes, e\.g\. ignore=\(HTTPException, KeyError\)"
    with pytest.raises(TypeError, match=message):
        root.trace.prod("x", ignore=("HTTPException",))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=message):
        root.ignore(int)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=message):
        rec.new("bad", ignore=[object])  # type: ignore[list-item]
    alamos.NOOP.ignore(HTTPException)  # accepted, changes nothing
    with pytest.raises(TypeError, match=message):
        alamos.NOOP.ignore("x")  # type: ignore[arg-type]


def test_expected_on_an_ended_or_noop_span(root: alamos.Experiment, rec: Recorder) -> None:
    with root.trace.prod("done") as span:
        pass
    exc = HTTPException(404)
    assert span.expected(exc) is exc
    assert rec.span(name="done").events == ()
    assert alamos.NOOP.trace.prod("x").expected(exc) is exc
