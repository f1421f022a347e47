"""cProfile of the hot paths: which functions one operation calls, and where
its time goes.

cProfile is deterministic: it counts every call exactly, and adds its own
overhead to each one (C functions included), so the *shares* are a guide to
where time goes, and the *calls per operation* are exact.  The times it
reports are inflated several-fold; the benchmark table has the real ones.
"""

from __future__ import annotations

import cProfile
import os
import pstats
from typing import Any

from bench.context import BenchContext, quiet_root
from bench.core import timed_loop

__all__ = ["HOT_PATHS", "profile_hot_paths"]

#: name -> (statement, what it is)
HOT_PATHS: dict[str, tuple[str, str]] = {
    "recorded_span": ('with exp.trace.prod("x"):\n    pass', "recorded span, enter + exit"),
    "filtered_span": ('with exp.trace.debug("x"):\n    pass', "filtered-out span"),
    "span_3_attributes": (
        'with exp.trace.prod("x") as span:\n'
        '    span.set("bytes", 1024)\n'
        '    span.set("table", "users")\n'
        '    span.set("hit", True)',
        "span with 3 attributes",
    ),
    "emitted_log": ('exp.log.info("opened {} files", 3)', "emitted log, console off"),
    "filtered_log": ('exp.log.debug("opened {} files", 3)', "filtered-out log call"),
    "counter_inc": ("writes.inc()", "counter increment (enabled)"),
}


# The profiler's own switch and the loop's clock, one call per run each.
_IGNORED = (
    "<method 'disable' of '_lsprof.Profiler' objects>",
    "<built-in method time.thread_time_ns>",
    "<built-in method time.perf_counter_ns>",
)


def _label(key: tuple[str, int, str]) -> str:
    filename, line, func = key
    if filename == "~":
        return func  # a builtin: "<built-in method time.time_ns>"
    if filename.startswith("<bench"):
        return "(the benchmark loop and the with/call statement itself)"
    parts = filename.replace(os.sep, "/").split("/")
    for anchor in ("alamos", "site-packages", "bench"):
        if anchor in parts:
            i = len(parts) - 1 - parts[::-1].index(anchor)
            if anchor == "site-packages":
                i += 1
            filename = "/".join(parts[i:])
            break
    else:
        filename = parts[-1]
    return f"{filename}:{line}({func})"


def profile_hot_paths(ctx: BenchContext, n: int = 50_000, top: int = 10) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (stmt, title) in HOT_PATHS.items():
        root = quiet_root(ctx, f"profile-{name.replace('_', '-')}")
        exp = root.sub("api")
        env = {"exp": exp, "writes": exp.metrics.counter("writes", "Writes")}
        loop = timed_loop(stmt, env=env)
        loop(1000)  # warm-up
        root.flush(timeout=60)
        prof = cProfile.Profile()
        prof.enable()
        loop(n)
        prof.disable()
        root.flush(timeout=60)
        stats = pstats.Stats(prof)
        raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
        total = sum(tt for (_, _, tt, _, _) in raw.values()) or 1.0
        rows = []
        for key, (_cc, nc, tt, _ct, _callers) in raw.items():
            if key[2] in _IGNORED:
                continue
            rows.append(
                {
                    "function": _label(key),
                    "calls_per_op": round(nc / n, 3),
                    "share": round(tt / total, 4),
                }
            )
        rows.sort(key=lambda r: r["share"], reverse=True)
        out[name] = {
            "title": title,
            "code": stmt,
            "ops": n,
            "calls_per_op": round(sum(nc for (_, nc, _, _, _) in raw.values()) / n, 2),
            "functions": rows[:top],
        }
    return out
