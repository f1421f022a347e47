"""A workload of spans and logs over hours, fed to :class:`LiveStats` as
the collector's worker would (in the order records are built, batch by
batch, emitting after each batch what has ended), and the checks the tier
tests share."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from alamos.core.records import (
    LogRecord,
    LogStatsRecord,
    Record,
    SpanRecord,
    SpanStatsHourRecord,
    SpanStatsRecord,
)
from alamos.stats import merge
from alamos.stats.hours import HOUR_NS
from alamos.stats.live import LiveStats, StatsRow
from alamos.stats.sketch import BinSum

from .support import MINUTE, T0, close, span

#: An hour boundary after T0.
H0 = T0 - T0 % HOUR_NS + HOUR_NS
#: The workload's first start: 20 minutes before H0 (a partial first hour).
BEGIN = H0 - 20 * MINUTE
#: 150 minutes: 20 of the hour before H0, two whole hours, 10 minutes of the next.
LENGTH = 150 * MINUTE
PATHS = ("svc.api", "svc.db", "svc.api.auth")
LEVELS = ("DEBUG", "INFO", "INFO", "WARNING", "ERROR")


def spans_and_logs(n_spans: int = 6000, n_logs: int = 4000, seed: int = 11) -> list[Record]:
    """Spans and logs over :data:`LENGTH` from :data:`BEGIN`, in the order a
    worker builds them: a span when it ends, a log at its time.  Every 97th
    span lasts 3 minutes (so it arrives after its window, sometimes after
    its hour, has been emitted); every 7th is an error; ``bytes`` on most."""
    rng = random.Random(seed)
    out: list[tuple[int, Record]] = []
    for i in range(n_spans):
        start = BEGIN + rng.randrange(LENGTH)
        duration = 3 * MINUTE if i % 97 == 0 else max(1, int(rng.lognormvariate(10, 1)))
        attributes = {"bytes": rng.randrange(1 << 20)} if i % 5 else {}
        s = span(
            i,
            start,
            duration,
            path=PATHS[i % 2],
            name="write" if i % 3 else "read",
            status="error" if i % 7 == 0 else "ok",
            attributes=attributes,
        )
        out.append((s.end_ns, s))
    for i in range(n_logs):
        ts = BEGIN + rng.randrange(LENGTH)
        log = LogRecord(
            f"{i + 1:032x}", ts, PATHS[i % 3], LEVELS[i % 5], f"m{i}", None, None, {}, None,
            "svc", "n1",
        )  # fmt: skip
        out.append((ts, log))
    out.sort(key=lambda p: p[0])
    return [r for _, r in out]


def run(stats: LiveStats, records: Sequence[Record], batch: int = 256) -> list[StatsRow]:
    """Feed ``records`` batch by batch, emitting after each what ended by the
    time of its last record (a worker's poller), then close."""
    rows: list[StatsRow] = []
    for i in range(0, len(records), batch):
        part = records[i : i + batch]
        stats.observe(part)
        last = part[-1]
        rows += stats.emit(last.end_ns if isinstance(last, SpanRecord) else last.ts_ns)
    return rows + stats.close()


def minute_rows(rows: Iterable[Any]) -> list[SpanStatsRecord]:
    return [r for r in rows if type(r) is SpanStatsRecord]


def hour_rows(rows: Iterable[Any]) -> list[SpanStatsHourRecord]:
    return [r for r in rows if type(r) is SpanStatsHourRecord]


def log_rows(rows: Iterable[Any]) -> list[LogStatsRecord]:
    return [r for r in rows if type(r) is LogStatsRecord]


def _get(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, dict) else getattr(row, name)


def _bins(rows: Iterable[Any]) -> Any:
    acc = BinSum()
    for r in rows:
        acc.add_text(_get(r, "sketch"))
    compact = acc.compact()
    assert compact is not None  # else two sums would compare equal as None
    return compact


def check_hours_equal_minutes(minutes: Sequence[Any], hours: Sequence[Any]) -> int:
    """Each group's hour rows, merged, equal its minute rows of that hour,
    merged (exact but for the float mean and m2; the sketch bins exactly).
    Returns how many (hour, group) pairs were compared."""

    def key(r: Any) -> tuple[Any, ...]:
        start = _get(r, "window_start_ns")
        parts = ("path", "name", "status", "level")
        return (start - start % HOUR_NS, *(str(_get(r, p)) for p in parts))

    by_minute: dict[tuple[Any, ...], list[Any]] = {}
    for r in minutes:
        by_minute.setdefault(key(r), []).append(r)
    by_hour: dict[tuple[Any, ...], list[Any]] = {}
    for r in hours:
        assert _get(r, "window_ns") == HOUR_NS and _get(r, "window_start_ns") % HOUR_NS == 0
        by_hour.setdefault(key(r), []).append(r)
    assert set(by_hour) == set(by_minute)
    for k, hs in by_hour.items():
        h, m = merge(hs), merge(by_minute[k])
        assert (h.count, h.errors, h.sum_ns, h.min_ns, h.max_ns) == (
            m.count,
            m.errors,
            m.sum_ns,
            m.min_ns,
            m.max_ns,
        ), k
        assert close(h.mean_ns, m.mean_ns, 1e-12) and close(h.m2, m.m2, 1e-9), k
        assert _bins(hs) == _bins(by_minute[k]), k
        assert set(h.attributes) == set(m.attributes)
        for name, a in h.attributes.items():
            b = m.attributes[name]
            assert (a.count, a.min, a.max) == (b.count, b.min, b.max)
            assert close(a.sum, b.sum) and close(a.mean, b.mean) and close(a.m2, b.m2, 1e-9)
    return len(by_hour)
