"""The statistics tiers without a database: hour rows equal to the merge of
their window rows, emitted when their hour has ended and at close (a
partial hour), none at a flush, none when the window does not divide an
hour; logs counted per window."""

from __future__ import annotations

from collections import Counter

import attrs
import pytest

from alamos.core.level import Level
from alamos.core.records import (
    LogRecord,
    LogStatsRecord,
    SpanRecord,
    SpanStatsHourRecord,
    SpanStatsRecord,
)
from alamos.report.pipeline.codec import decode, dumps_batch, encode, loads_batch
from alamos.stats import merge
from alamos.stats.hours import HOUR_NS, hour_tier_fits
from alamos.stats.live import LiveStats

from .support import MINUTE, reference, span
from .tiers import (
    H0,
    check_hours_equal_minutes,
    hour_rows,
    log_rows,
    minute_rows,
    run,
    spans_and_logs,
)


def live(window_ns: int = MINUTE, **kw: bool) -> LiveStats:
    return LiveStats(window_ns, lambda: ("svc", "n1"), ("bytes",), **kw)


def test_hour_rows_equal_the_merge_of_their_window_rows() -> None:
    records = spans_and_logs()
    rows = run(live(), records)
    minutes, hours, logs = minute_rows(rows), hour_rows(rows), log_rows(rows)
    assert (len(minutes), len(hours), len(logs)) == (1085, 33, 1557)
    # 4 hours (a partial one at each end) x 8 groups; one group of the third
    # hour has two rows (a 3-minute span arrived after its hour's row).
    assert check_hours_equal_minutes(minutes, hours) == 32
    per_hour = Counter((r.window_start_ns - H0) // HOUR_NS for r in hours)
    assert sorted(per_hour.items()) == [(-1, 8), (0, 8), (1, 9), (2, 8)]
    # And each hour equals its raw spans (the complete-hour rule holds).
    spans = [r for r in records if type(r) is SpanRecord]
    for k in range(-1, 3):
        start = H0 + k * HOUR_NS
        raw = [s.duration_ns for s in spans if start <= s.start_ns < start + HOUR_NS]
        ref = reference(raw)
        got = merge(r for r in hours if r.window_start_ns == start)
        assert (got.count, got.sum_ns, got.min_ns, got.max_ns) == (
            ref["count"],
            ref["sum"],
            ref["min"],
            ref["max"],
        )
        assert got.count == sum(
            r.count for r in minutes if start <= r.window_start_ns < start + HOUR_NS
        )
    assert sum(r.count for r in hours) == sum(r.count for r in minutes) == 6000
    assert sum(r.errors for r in hours) == len(range(0, 6000, 7))
    assert {r.level for r in hours} == {Level.PROD} and {r.node for r in hours} == {"n1"}
    assert len({r.id for r in rows}) == len(rows)


def test_log_rows_count_the_logs_of_each_window_path_and_level() -> None:
    records = spans_and_logs()
    rows = log_rows(run(live(), records))
    truth = Counter(
        (r.ts_ns - r.ts_ns % MINUTE, r.path, r.level) for r in records if type(r) is LogRecord
    )
    got: Counter[tuple[int, str, str]] = Counter()
    for r in rows:
        assert (r.window_ns, r.service, r.node) == (MINUTE, "svc", "n1")
        got[(r.window_start_ns, r.path, r.level)] += r.count
    assert got == truth
    assert sum(got.values()) == 4000 and len(truth) == len(rows) == 1557
    assert {r.level for r in rows} == {"DEBUG", "INFO", "WARNING", "ERROR"}
    assert {r.export_level for r in rows} == {Level.DEBUG, Level.PROD}


def test_hours_are_emitted_once_ended_and_the_current_one_at_close() -> None:
    records = spans_and_logs()
    stats = live()
    before = []
    for i in range(0, len(records), 256):
        part = records[i : i + 256]
        stats.observe(part)
        last = part[-1]
        now = last.end_ns if isinstance(last, SpanRecord) else last.ts_ns
        emitted = stats.emit(now)
        for r in hour_rows(emitted):
            assert r.window_start_ns + HOUR_NS <= now
        before += emitted
    assert sorted({(r.window_start_ns - H0) // HOUR_NS for r in hour_rows(before)}) == [-1, 0, 1]
    at_close = stats.close()
    closing = hour_rows(at_close)
    # The hour being recorded, 10 minutes of it: a partial hour row per group.
    assert {r.window_start_ns for r in closing} == {H0 + 2 * HOUR_NS} and len(closing) == 8
    minutes = [r for r in minute_rows(before + at_close) if r.window_start_ns >= H0 + 2 * HOUR_NS]
    assert sum(r.count for r in closing) == sum(r.count for r in minutes) == 382
    assert stats.close() == []


def test_a_flush_writes_window_rows_and_no_hour_row() -> None:
    stats = live()
    stats.observe([span(0, H0 + 5, 100), span(1, H0 + MINUTE, 300)])
    flushed = stats.emit()
    assert [type(r) for r in flushed] == [SpanStatsRecord, SpanStatsRecord]
    stats.observe([span(2, H0 + 2 * MINUTE, 200)])
    assert hour_rows(stats.emit(H0 + HOUR_NS - 1)) == []
    (hour,) = stats.emit(H0 + HOUR_NS)
    assert type(hour) is SpanStatsHourRecord
    assert (hour.window_start_ns, hour.window_ns, hour.count, hour.sum_ns) == (
        H0,
        HOUR_NS,
        3,
        600,
    )
    assert (hour.min_ns, hour.max_ns, hour.mean_ns, hour.m2) == (100, 300, 200.0, 20000.0)
    assert stats.emit(H0 + 2 * HOUR_NS) == [] and stats.close() == []


@pytest.mark.parametrize(
    ("window_ns", "fits"),
    [
        (MINUTE, True),
        (HOUR_NS, True),
        (500_000_000, True),
        (7 * MINUTE, False),
        (90 * MINUTE, False),
        (700_000_000, False),
    ],
)
def test_no_hour_tier_when_the_window_does_not_divide_an_hour(window_ns: int, fits: bool) -> None:
    assert hour_tier_fits(window_ns) is fits
    assert live(window_ns).hour_tier is fits
    assert live(window_ns, hours=False).hour_tier is False


def test_a_seven_minute_window_writes_window_rows_and_log_counts_only() -> None:
    records = spans_and_logs()
    rows = run(live(7 * MINUTE), records)
    assert hour_rows(rows) == []
    assert sum(r.count for r in minute_rows(rows)) == 6000
    logs = log_rows(rows)
    assert sum(r.count for r in logs) == 4000
    assert {r.window_ns for r in logs} == {7 * MINUTE}
    assert all(r.window_start_ns % (7 * MINUTE) == 0 for r in logs)


def test_the_new_rows_survive_the_spool_codec_as_their_own_class() -> None:
    rows = run(live(), spans_and_logs(600, 300))
    assert {type(r) for r in rows} == {SpanStatsRecord, SpanStatsHourRecord, LogStatsRecord}
    assert loads_batch(dumps_batch(rows)) == rows
    for r in rows:
        back = decode(encode(r))
        assert type(back) is type(r) and back == r
    # The same fields in the other tier's class are another record.
    hour = hour_rows(rows)[0]
    as_minute = SpanStatsRecord(**attrs.asdict(hour, recurse=False))
    assert as_minute != hour and not isinstance(hour, SpanStatsRecord)


def test_a_forked_child_forgets_the_parents_hours_and_logs() -> None:
    stats = live()
    log = LogRecord("1" * 32, H0, "svc", "INFO", "m", None, None, {}, None, "svc", "n1")
    stats.observe([span(0, H0, 10), log])
    assert len(stats.emit()) == 2  # the window row and the log count; the hour is held
    stats.observe([log])
    stats._pid = -1  # as in a forked child
    assert stats.close() == []
