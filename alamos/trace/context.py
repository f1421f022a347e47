"""The current span, held in a context variable.

A :class:`contextvars.ContextVar` follows asyncio tasks, trio tasks and
threads started with a copied context, so parenting "follows the request"
through every layer without any explicit passing.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alamos.trace.span import Span

__all__ = ["CURRENT", "current_span"]

CURRENT: ContextVar[Span | None] = ContextVar("alamos_current_span", default=None)


def current_span() -> Span | None:
    """The span now current in this context, or ``None``."""
    return CURRENT.get()
