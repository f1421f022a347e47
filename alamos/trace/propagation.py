"""W3C Trace Context propagation: ``traceparent`` and ``tracestate``.

A trace crosses process boundaries as two HTTP headers.  :func:`inject`
writes them for the current span into an outgoing request's headers, and
:func:`extract` reads them from an incoming request so the server's spans
join the caller's trace.

Everything that reads from the network is total: it returns ``None`` (or an
empty :class:`TraceState`) on anything malformed and never raises, because a
client sending a broken header must not be able to fail the request, and
because the spec's answer to a bad ``traceparent`` is simply "restart the
trace" (§3.2.4, §4.3).  Parsing is also bounded: oversized input is refused
by its length before any scanning.

Section numbers in comments refer to the W3C Recommendation
https://www.w3.org/TR/trace-context-1/.  ``traceparent`` follows it; the
``tracestate`` rules follow the current specification, which the official
test suite checks (see :mod:`alamos.trace.tracestate`).  The whole suite
(``w3c/trace-context`` ``test/test.py``, ``STRICT_LEVEL=2``) passes against
``tests/integrations/w3c_service.py``, and its cases are ported to
``tests/integrations/test_w3c_harness.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from alamos.core.context import CURRENT, SpanContext
from alamos.trace.tracestate import TraceState

__all__ = [
    "TRACEPARENT",
    "TRACESTATE",
    "TraceState",
    "extract",
    "format_traceparent",
    "inject",
    "parse_traceparent",
]

#: Header names.  §3.2.1/§3.3.1: vendors SHOULD send them lower-case and MUST
#: accept them in any case.
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

#: Length of a version-00 ``traceparent``: 2 + 1 + 32 + 1 + 16 + 1 + 2.
_V00_LENGTH = 55

#: Inputs longer than this are refused unscanned.  A version-00 header is 55
#: characters; §3.2.4 asks pass-through services to "only disallow
#: prohibitively large headers", and ten times the current size is plenty of
#: room for future versions while bounding the work per request.
_MAX_TRACEPARENT_LENGTH = 512

# §3.2.2: version "-" trace-id "-" parent-id "-" trace-flags, all HEXDIGLC
# (lower-case only: upper-case hex is invalid).  Future versions share this
# 55-character prefix (§3.2.4).
_PREFIX_RE = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")

_ZERO_TRACE_ID = "0" * 32
_ZERO_SPAN_ID = "0" * 16

# What format_traceparent accepts: the ids exactly as the header carries them.
_TRACE_ID_RE = re.compile(r"[0-9a-f]{32}")
_SPAN_ID_RE = re.compile(r"[0-9a-f]{16}")

#: §3.2.2.5: the only flag defined by version 00.
_FLAG_SAMPLED = 0x01

# RFC 7230 §3.2.3: OWS = *( SP / HTAB ).  Deliberately not str.strip(): CR,
# LF and other control characters make the header invalid, never trimmed.
_OWS = " \t"


def parse_traceparent(value: str | bytes | None) -> SpanContext | None:
    """Parse a ``traceparent`` header value; ``None`` if it is invalid.

    Rules (§3.2.2, §3.2.4): the value is ``version-trace-parent-flags`` in
    lower-case hex; version ``ff`` is forbidden; version ``00`` must be exactly
    55 characters; a higher version must be at least 55 characters and its
    first four fields are read as version 00 if they are followed by the end
    of the value or a ``-`` (the rest, unknown to us, is ignored); trace and
    parent ids must not be all zeros; only the ``sampled`` bit of the flags
    is read, other bits are ignored.  Surrounding OWS is tolerated.

    The result has ``remote=False``: :func:`extract` marks it remote, this
    function only knows about the text.
    """
    if isinstance(value, bytes | bytearray):
        if len(value) > _MAX_TRACEPARENT_LENGTH:
            return None
        try:
            text = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            return None
    elif isinstance(value, str):
        if len(value) > _MAX_TRACEPARENT_LENGTH:
            return None
        text = value
    else:
        return None
    text = text.strip(_OWS)
    if len(text) < _V00_LENGTH:
        return None
    match = _PREFIX_RE.fullmatch(text, 0, _V00_LENGTH)
    if match is None:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == "ff":
        return None
    if len(text) > _V00_LENGTH and (version == "00" or text[_V00_LENGTH] != "-"):
        # Version 00 has nothing after the flags; a future version may only
        # add fields, each introduced by a dash.
        return None
    if trace_id == _ZERO_TRACE_ID or span_id == _ZERO_SPAN_ID:
        return None
    return SpanContext(
        trace_id=trace_id,
        span_id=span_id,
        sampled=bool(int(flags, 16) & _FLAG_SAMPLED),
    )


def format_traceparent(ctx: SpanContext) -> str:
    """The version-00 ``traceparent`` for ``ctx``.

    We always send version 00, whatever version we received: §3.4 "Downgrade
    the version".  Only the sampled flag is written, since §3.2.2.5 says
    other flags MUST be zero.

    Raises :class:`ValueError` unless the trace id is 32 and the span id 16
    lower-case hex digits, neither all zeros: :class:`SpanContext` is a plain
    record anyone can build (and a remote parent's id was once any length),
    and a header the receiver must reject, or one carrying CR/LF into a
    request, must never be written.  Two regex matches are nothing next to
    the network call the header is for.
    """
    trace_id, span_id = ctx.trace_id, ctx.span_id
    if (
        not isinstance(trace_id, str)
        or not isinstance(span_id, str)
        or _TRACE_ID_RE.fullmatch(trace_id) is None
        or _SPAN_ID_RE.fullmatch(span_id) is None
        or trace_id == _ZERO_TRACE_ID
        or span_id == _ZERO_SPAN_ID
    ):
        raise ValueError(
            f"invalid span context for traceparent: trace id {trace_id!r:.60} must be 32 and "
            f"span id {span_id!r:.40} 16 lower-case hex digits, not all zeros (W3C §3.2.2)"
        )
    return f"00-{trace_id}-{span_id}-{'01' if ctx.sampled else '00'}"


def inject(carrier: MutableMapping[str, str], context: SpanContext | None = None) -> None:
    """Write ``traceparent`` (and a non-empty ``tracestate``) into ``carrier``.

    ``context`` defaults to the current span's; with no current span nothing
    is written, so the callee starts its own trace rather than joining a
    fabricated one.  The same happens for a context whose ids are not valid
    on the wire (:func:`format_traceparent` says which): ``inject`` runs in
    the middle of an outgoing request (the httpx transport calls it), which
    must not fail because of tracing, and an invalid ``traceparent`` would
    only make the callee start a fresh trace anyway.  The tracestate is
    re-validated before being sent: ``SpanContext`` is a plain record anyone
    can build, and a header value must never carry e.g. a CR/LF into an
    outgoing request.  Re-parsing a valid state is idempotent and costs
    microseconds next to a network call.
    """
    if context is None:
        span = CURRENT.get()
        if span is None:
            return
        context = span.context
    try:
        traceparent = format_traceparent(context)
    except (ValueError, AttributeError):
        return
    carrier[TRACEPARENT] = traceparent
    if context.tracestate:
        tracestate = TraceState.parse(context.tracestate).format()
        if tracestate:
            carrier[TRACESTATE] = tracestate


def _header_name(name: object) -> str | None:
    """``name`` lower-cased if it is one of our two headers, else ``None``.

    ASCII-only on purpose: ``str.lower`` maps some non-ASCII characters to
    ASCII ones, and a header name is an RFC 7230 token, i.e. ASCII.
    """
    if isinstance(name, bytes | bytearray):
        if len(name) != len(TRACEPARENT) and len(name) != len(TRACESTATE):
            return None
        name = bytes(name).decode("latin-1")
    if not isinstance(name, str) or not name.isascii():
        return None
    lowered = name.lower()
    return lowered if lowered in (TRACEPARENT, TRACESTATE) else None


def _pairs(carrier: object) -> Iterable[tuple[object, object]]:
    """The (name, value) pairs of a mapping or of an ASGI-style header list.

    A mapping value that is a list or tuple stands for several fields of the
    same name (e.g. ``{"tracestate": ["a=1", "b=2"]}``).
    """
    if isinstance(carrier, Mapping):
        for name, value in carrier.items():
            if isinstance(value, list | tuple):
                for item in value:
                    yield name, item
            else:
                yield name, value
    elif isinstance(carrier, Iterable) and not isinstance(carrier, str | bytes | bytearray):
        for pair in carrier:
            if isinstance(pair, tuple | list) and len(pair) == 2:
                yield pair[0], pair[1]


def extract(
    carrier: Mapping[str, Any] | Iterable[tuple[bytes | str, bytes | str]],
) -> SpanContext | None:
    """The remote parent described by ``carrier``'s headers, or ``None``.

    Header names are matched case-insensitively (§3.2.1, §3.3.1).  Several
    ``traceparent`` fields make the request invalid (there is no way to know
    which one is the parent; the W3C test suite restarts the trace), so the
    result is ``None``.  Several ``tracestate`` fields are combined (§3.3.1.1);
    a ``tracestate`` without a valid ``traceparent`` is discarded (§3.3: "If
    the vendor failed to parse traceparent, it MUST NOT attempt to parse
    tracestate"), and an invalid one is dropped without affecting the
    ``traceparent`` (§3.3: the opposite "is not true").

    The returned context has ``remote=True`` and ``tracestate`` set to the
    validated, re-formatted list (``None`` when empty).
    """
    try:
        parents: list[object] = []
        states: list[object] = []
        for name, value in _pairs(carrier):
            header = _header_name(name)
            if header == TRACEPARENT:
                parents.append(value)
            elif header == TRACESTATE:
                states.append(value)
        if len(parents) != 1:
            return None
        parent = parents[0]
        if isinstance(parent, bytearray):
            parent = bytes(parent)
        if not isinstance(parent, str | bytes):
            return None
        ctx = parse_traceparent(parent)
        if ctx is None:
            return None
        tracestate = TraceState.parse(states).format() if states else ""
        return SpanContext(
            trace_id=ctx.trace_id,
            span_id=ctx.span_id,
            sampled=ctx.sampled,
            tracestate=tracestate or None,
            remote=True,
        )
    except Exception:
        # A carrier is foreign input (a mapping can raise from ``items()``,
        # an iterable from ``__next__``): whatever happens, the request being
        # served must not fail because of its tracing headers.
        return None
