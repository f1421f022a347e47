"""Functions generated from source text, visible to tracebacks and profilers.

alamos generates a few hot functions from a table instead of writing copies
by hand (the tracer's ``prod``/``debug``/``bench`` factories, the logger's
level methods, the records' positional constructors).  As attrs does, the
source of each generated function is registered in :mod:`linecache` under a
unique file name, so a traceback through one shows its lines, and a profiler
names it.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable
from typing import Any

__all__ = ["compile_function"]


def compile_function(
    name: str, source: str, namespace: dict[str, Any], *, owner: str
) -> Callable[..., Any]:
    """Compile ``source`` (one ``def name(...)``) in ``namespace`` and return
    the function, named ``owner.name``, its source kept in :mod:`linecache`."""
    qualname = f"{owner}.{name}"
    filename = f"<alamos generated {qualname}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    fn: Callable[..., Any] = namespace[name]
    fn.__qualname__ = qualname
    return fn
