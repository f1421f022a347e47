"""The matching rules behind :meth:`Recorder.spans` and :meth:`Recorder.logs`.

They live apart from the recorder so that each rule is written (and
documented) once, and shared by spans, logs and the tree outline.

* **Paths.**  ``"server.cesium"`` matches that experiment only.
  ``"server.cesium.*"`` matches the whole subtree: ``server.cesium`` itself
  *and* everything below it.  The subtree includes its root on purpose: a
  test asking "what did cesium emit?" nearly always means the experiment and
  its children, and ``server.cesium`` is the only path that can never be
  reached by a plain prefix test (``server.cesiumX`` must not match, so the
  rule is "equal, or starts with ``server.cesium.``").  ``"*"`` matches every
  path.  No other wildcard is accepted: a ``*`` anywhere else raises
  :class:`ValueError`, rather than silently matching nothing.
* **Attributes** match partially: ``{"bytes": 1024}`` matches a record whose
  attributes contain ``bytes == 1024``, whatever else they hold.  Lists and
  tuples compare equal item by item (attributes store sequences as tuples),
  and ``True`` does not match ``1`` (nor ``False`` ``0``), although Python
  says they are equal: a flag and a count are different facts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from alamos.core.records import LogRecord, SpanRecord

__all__ = [
    "ERROR_LOG_LEVELS",
    "attributes_match",
    "describe_log",
    "describe_span",
    "path_matcher",
    "text_matches",
]

#: Log levels that count as errors for the plugin's "no error logs" check.
ERROR_LOG_LEVELS = frozenset({"ERROR", "CRITICAL"})


def path_matcher(pattern: str) -> Callable[[str], bool]:
    """A predicate for ``pattern`` (see the module doc for the rules)."""
    if not isinstance(pattern, str):
        raise TypeError(f"a path pattern is a str, got {type(pattern).__name__}")
    if pattern == "*":
        return lambda path: True
    if pattern.endswith(".*"):
        base = pattern[:-2]
        _check_plain(base, pattern)
        prefix = base + "."
        return lambda path: path == base or path.startswith(prefix)
    _check_plain(pattern, pattern)
    return lambda path: path == pattern


def _check_plain(base: str, pattern: str) -> None:
    if not base or "*" in base:
        raise ValueError(
            f"invalid path pattern {pattern!r}: use a full path ('server.cesium'), "
            "a subtree ('server.cesium.*', which includes server.cesium itself) or '*'"
        )


def _value_equal(want: Any, have: Any) -> bool:
    if isinstance(want, bool) or isinstance(have, bool):
        return type(want) is type(have) and want == have
    if isinstance(want, list | tuple) and isinstance(have, list | tuple):
        return len(want) == len(have) and all(
            _value_equal(w, h) for w, h in zip(want, have, strict=True)
        )
    return bool(want == have)


_MISSING = object()


def attributes_match(want: Mapping[str, Any], have: Mapping[str, Any]) -> bool:
    """Whether every key of ``want`` is in ``have`` with an equal value."""
    for key, value in want.items():
        got = have.get(key, _MISSING)
        if got is _MISSING or not _value_equal(value, got):
            return False
    return True


def text_matches(want: str | re.Pattern[str], text: str) -> bool:
    """A str matches as a substring; a compiled pattern with ``search``."""
    if isinstance(want, re.Pattern):
        return want.search(text) is not None
    return want in text


def _short_attrs(attributes: Mapping[str, Any], limit: int = 120) -> str:
    if not attributes:
        return ""
    text = " " + ", ".join(f"{k}={v!r}" for k, v in attributes.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_span(s: SpanRecord) -> str:
    """One line per span for failure messages: enough to tell spans apart."""
    return (
        f"{s.path}.{s.name} [{s.level}, {s.status}] "
        f"trace={s.trace_id[:8]}{_short_attrs(s.attributes)}"
    )


def describe_log(r: LogRecord) -> str:
    return f"{r.path} {r.level}: {r.message!r}{_short_attrs(r.attributes)}"
