"""Cases, targets, calibration and the round-robin runner.

A :class:`Case` is one measured operation.  Its ``measure(number)`` runs the
operation ``number`` times and returns one value in the case's unit (ns per
operation for the micro-benchmarks, operations per second for throughput,
bytes for memory).  Micro-benchmarks are compiled into a loop the way
:mod:`timeit` does it (:func:`timed_loop`), so the loop itself costs the same
~10-15 ns per iteration in every case, the trivial ``with`` included; the
``empty_loop`` reference row shows that cost.

The runner (:func:`run`) calibrates each case so that one repeat takes about
``target_seconds``, then runs *rounds*: every case once per round, in an order
rotated by one each round.  Noise on a shared machine comes in bursts of
seconds, so a subject and its baseline measured a few hundred milliseconds
apart see the same weather; a target's ratio is the median of the per-round
ratios.
"""

from __future__ import annotations

import gc
import itertools
import math
import statistics
import textwrap
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Case",
    "Config",
    "Target",
    "TargetResult",
    "evaluate",
    "run",
    "summarize",
    "timed_loop",
]


#: The clock of the micro-benchmarks: the CPU time of the calling thread, so
#: that time the scheduler gives other processes (a busy shared machine) is
#: not counted.  Cases that wait on other threads (export, scaling, end to
#: end) use wall time (``time.perf_counter_ns``) instead.
CLOCK: Callable[[], int] = getattr(time, "thread_time_ns", time.perf_counter_ns)


def clock_name() -> str:
    """How the micro-benchmarks are timed (for the results)."""
    if CLOCK is time.perf_counter_ns:
        return "wall time (time.perf_counter_ns)"
    return "thread CPU time (time.thread_time_ns)"


def use_wall_clock() -> None:
    """Time the micro-benchmarks with ``time.perf_counter_ns`` (``--wall``)."""
    global CLOCK
    CLOCK = time.perf_counter_ns


@dataclass
class Config:
    """How long and how often to measure."""

    repeats: int = 15
    """Rounds: every case is measured this many times."""
    target_seconds: float = 0.12
    """About how long one repeat of a calibrated case takes."""
    alone_repeats: int = 3
    """Repeats of the cases that run alone, after the rounds (memory)."""
    quick: bool = False
    gc_in_loop: bool = False
    """Keep the garbage collector on inside timed loops (off by default, as in
    :mod:`timeit`; it is collected between repeats instead)."""


@dataclass
class Case:
    """One measured operation (see the module docstring)."""

    name: str
    title: str
    group: str
    measure: Callable[[int], float] | None = None
    unit: str = "ns/op"
    higher_is_better: bool = False
    calibrate: bool = True
    """Find ``number`` so that one repeat takes about ``Config.target_seconds``."""
    number: int = 1
    max_number: int = 2_000_000
    after: Callable[[], None] | None = None
    """Called after each repeat, outside the timing (a flush, for instance)."""
    alone: bool = False
    """Measured after the rounds, on its own (memory: tracemalloc slows everything)."""
    code: str = ""
    """What is measured, shown in the docs."""
    note: str = ""
    unavailable: str | None = None
    """Why the case could not be set up (the peer or the database is missing)."""
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    """Facts observed while measuring (dropped records, rows stored...)."""
    values: list[float] = field(default_factory=list)
    derived_from: str | None = None
    """Computed from another case's values, not measured itself."""

    @property
    def ok(self) -> bool:
        return self.unavailable is None and self.error is None and bool(self.values)


@dataclass
class Target:
    """A target of issue 5: ``numerator / denominator`` compared with ``limit``.

    ``kind`` is ``"max"`` (the ratio must be at most ``limit``), ``"min"`` (at
    least ``limit``) or ``"report"`` (no threshold).  Without a denominator the
    numerator's own median is compared (memory per span).
    """

    id: str
    operation: str
    row: str
    numerator: str
    denominator: str | None
    kind: str
    limit: float | None
    text: str
    why: str = ""
    source: str = "issue 5"


@dataclass
class TargetResult:
    target: Target
    verdict: str
    """PASS, FAIL, REPORTED or UNAVAILABLE."""
    ratio: float | None = None
    low: float | None = None
    high: float | None = None
    pairs: int = 0
    margin: str = ""


# ---------------------------------------------------------------------------
# Loops
# ---------------------------------------------------------------------------

_TEMPLATE = """
def _bench_loop(_n, _clock=_clock, _repeat=_repeat):
{setup}
    _t0 = _clock()
    for _ in _repeat(None, _n):
{stmt}
    return _clock() - _t0
"""


def timed_loop(
    stmt: str,
    setup: str = "",
    env: dict[str, Any] | None = None,
    clock: Callable[[], int] | None = None,
) -> Callable[[int], int]:
    """Compile ``stmt`` into a loop, as :mod:`timeit` does: ``loop(n)`` runs it
    ``n`` times and returns the elapsed nanoseconds.

    Every name in ``env`` becomes a local variable of the loop function (so
    the loop reads locals, not globals); ``setup`` runs after that, once per
    call, before the clock starts.
    """
    env = dict(env or {})
    for name in env:
        if not name.isidentifier() or name.startswith("_"):
            raise ValueError(f"bad benchmark variable name {name!r}")
    namespace: dict[str, Any] = {
        "_clock": clock or CLOCK,
        "_repeat": itertools.repeat,
        "_env": env,
    }
    lines = [f"{name} = _env[{name!r}]" for name in env]
    lines += textwrap.dedent(setup).strip().splitlines()
    src = _TEMPLATE.format(
        setup=textwrap.indent("\n".join(lines) or "pass", " " * 4),
        stmt=textwrap.indent(textwrap.dedent(stmt).strip(), " " * 8),
    )
    exec(compile(src, f"<bench: {stmt.strip().splitlines()[0]}>", "exec"), namespace)
    loop: Callable[[int], int] = namespace["_bench_loop"]
    return loop


def ns_per_op(loop: Callable[[int], int], gc_in_loop: Callable[[], bool]) -> Callable[[int], float]:
    """``measure(number)`` for a compiled loop: ns per operation, with the
    garbage collector off inside the loop unless ``gc_in_loop()``."""

    def measure(number: int) -> float:
        enabled = gc.isenabled()
        if not gc_in_loop():
            gc.disable()
        try:
            elapsed = loop(number)
        finally:
            if enabled:
                gc.enable()
        return elapsed / number

    return measure


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------


def _call_after(case: Case) -> None:
    if case.after is not None:
        case.after()


def _calibrate(case: Case, seconds: float) -> None:
    """Like ``timeit.Timer.autorange``, then scaled to ``seconds``."""
    assert case.measure is not None
    number = 1
    while True:
        per_op = case.measure(number)
        _call_after(case)
        elapsed = per_op * number / 1e9
        if elapsed >= min(0.02, seconds / 2) or number >= case.max_number:
            break
        number = min(case.max_number, number * 10)
    if per_op > 0:
        number = int(seconds * 1e9 / per_op)
    case.number = max(1, min(case.max_number, number))


def _fail(case: Case, exc: BaseException) -> None:
    lines = traceback.format_exception_only(type(exc), exc)
    case.error = "".join(lines).strip()


def run(
    cases: Sequence[Case],
    config: Config,
    progress: Callable[[str], None] = lambda s: None,
) -> None:
    """Calibrate, then measure every available case ``config.repeats`` times in
    rotating rounds; then the ``alone`` cases.  Errors are kept on the case."""
    active = [c for c in cases if c.unavailable is None and c.measure is not None]
    rounds = [c for c in active if not c.alone]
    alone = [c for c in active if c.alone]
    for case in rounds:
        progress(f"calibrating {case.name}")
        try:
            if case.calibrate:
                _calibrate(case, config.target_seconds)
            else:  # one warm-up repeat
                case.measure(case.number)  # type: ignore[misc]
                _call_after(case)
        except Exception as exc:
            _fail(case, exc)
    rounds = [c for c in rounds if c.error is None]
    for r in range(config.repeats):
        progress(f"round {r + 1}/{config.repeats}")
        k = r % len(rounds) if rounds else 0
        for case in rounds[k:] + rounds[:k]:
            if case.error is not None:
                continue
            try:
                case.values.append(case.measure(case.number))  # type: ignore[misc]
                _call_after(case)
            except Exception as exc:
                _fail(case, exc)
            gc.collect()
    for case in alone:
        progress(f"measuring {case.name}")
        try:  # warm-up: one-time allocations (caches, interned names) out of the way
            case.measure(max(1, case.number // 10))  # type: ignore[misc]
            _call_after(case)
        except Exception as exc:
            _fail(case, exc)
            continue
        for _ in range(config.alone_repeats):
            try:
                case.values.append(case.measure(case.number))  # type: ignore[misc]
                _call_after(case)
            except Exception as exc:
                _fail(case, exc)
                break


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


def summarize(case: Case) -> dict[str, Any]:
    """The JSON form of one case."""
    out: dict[str, Any] = {
        "name": case.name,
        "title": case.title,
        "group": case.group,
        "unit": case.unit,
        "higher_is_better": case.higher_is_better,
        "status": "ok",
        "median": None,
        "min": None,
        "max": None,
        "repeats": len(case.values),
        "number": case.number,
        "values": [round(v, 3) for v in case.values],
        "code": case.code,
        "note": case.note,
        "info": case.info,
    }
    if case.derived_from:
        out["derived_from"] = case.derived_from
    if case.unavailable is not None:
        out["status"] = "unavailable"
        out["reason"] = case.unavailable
    elif case.error is not None:
        out["status"] = "error"
        out["reason"] = case.error
    elif not case.values:
        out["status"] = "skipped"
    if case.values:
        out["median"] = statistics.median(case.values)
        out["min"] = min(case.values)
        out["max"] = max(case.values)
    return out


def _ratios(num: Case, den: Case) -> list[float]:
    n = min(len(num.values), len(den.values))
    if num.alone or den.alone or num.derived_from or den.derived_from:
        # Not measured in the same rounds: compare medians only.
        if num.values and den.values:
            med = statistics.median(den.values)
            return [statistics.median(num.values) / med] if med else []
        return []
    return [a / b for a, b in zip(num.values[:n], den.values[:n], strict=True) if b]


def evaluate(targets: Iterable[Target], cases: dict[str, Case]) -> list[TargetResult]:
    """Each target's ratio (median of per-round ratios, with min and max) and verdict."""
    out: list[TargetResult] = []
    for t in targets:
        num = cases.get(t.numerator)
        den = cases.get(t.denominator) if t.denominator else None
        if num is None or not num.ok or (t.denominator and (den is None or not den.ok)):
            missing = [c for c in (num, den) if c is not None and not c.ok]
            why = "; ".join(
                f"{c.name}: {c.unavailable or c.error or 'not measured'}" for c in missing
            )
            out.append(TargetResult(t, "UNAVAILABLE", margin=why or "not selected"))
            continue
        values = num.values if den is None else _ratios(num, den)
        if not values:
            out.append(TargetResult(t, "UNAVAILABLE", margin="no paired repeats"))
            continue
        ratio = statistics.median(values)
        res = TargetResult(t, "REPORTED", ratio, min(values), max(values), len(values))
        if t.kind != "report" and t.limit is not None and math.isfinite(ratio):
            ok = ratio <= t.limit if t.kind == "max" else ratio >= t.limit
            res.verdict = "PASS" if ok else "FAIL"
            off = abs(ratio / t.limit - 1) * 100
            pct = f"{off:.1f}%" if off < 10 else f"{off:.0f}%"
            if not ok:
                res.margin = f"{pct} {'over' if t.kind == 'max' else 'under'} the limit"
            else:
                res.margin = f"{pct} headroom"
        out.append(res)
    return out
