"""Component reports: ``exp.attach("config", provider)`` and ``root.report()``.

A provider is a callable returning a dict, or an object with a ``report()``
method.  Providers are user code and may be broken: one that raises gives
``{"error": "..."}`` for its key and never breaks the report.  Whatever a
provider returns is made JSON-serialisable by
:data:`~alamos.core.json.REPORT_JSON` (unknown objects become their ``repr``,
non-finite floats become ``None``, keys become ``str``), so a report can
always be stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from alamos.core.json import REPORT_JSON
from alamos.core.safe import safe_repr, safe_str

__all__ = ["Provider", "ReportProvider", "call_provider"]


@runtime_checkable
class ReportProvider(Protocol):
    def report(self) -> Mapping[str, Any]: ...


Provider = Callable[[], Mapping[str, Any]] | ReportProvider


def call_provider(provider: Any) -> dict[str, Any]:
    """Run one provider; never raises."""
    try:
        if isinstance(provider, ReportProvider):
            out = provider.report()
        elif callable(provider):
            out = provider()
        else:
            return {
                "error": f"provider {safe_repr(provider)} is neither callable nor has .report()"
            }
        if not isinstance(out, Mapping):
            return {"error": f"provider returned {type(out).__name__}, expected a dict"}
        result = REPORT_JSON(out)
        assert isinstance(result, dict)
        return result
    except Exception as exc:
        text = safe_str(exc, "<unprintable exception>")
        return {"error": f"{type(exc).__name__}: {text}" if text else type(exc).__name__}
