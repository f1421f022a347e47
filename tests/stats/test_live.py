"""The live statistics (alamos.stats.live) and their merge, without a database:
exact counts, sums, extremes; mean and m2 equal to the exact ones; quantiles
within the sketch's 1%."""

from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path

import pytest

from alamos.core.level import Level
from alamos.core.records import LogRecord, LogStatsRecord, SpanRecord, SpanStatsRecord
from alamos.report.pipeline.codec import decode, encode
from alamos.stats import RELATIVE_ACCURACY, group_by, merge
from alamos.stats.live import LiveStats
from alamos.stats.sketch import decode as decode_sketch

from .support import MINUTE, T0, attribute_reference, close, reference, span, workload


def live(attributes: tuple[str, ...] = ("bytes", "ratio")) -> LiveStats:
    return LiveStats(MINUTE, lambda: ("svc", "n1"), attributes)


def feed(stats: LiveStats, spans: list[SpanRecord], batch: int) -> None:
    for i in range(0, len(spans), batch):
        stats.observe(spans[i : i + batch])


def group_key(s: SpanRecord) -> tuple[int, str, str, str]:
    return (s.start_ns - s.start_ns % MINUTE, s.path, s.name, s.status)


def test_each_row_holds_the_exact_statistics_of_its_group_and_window() -> None:
    spans = workload(3000)
    stats = live()
    feed(stats, spans, 512)
    rows = stats.emit()
    assert len(stats) == 0
    groups: dict[tuple[int, str, str, str], list[SpanRecord]] = defaultdict(list)
    for s in spans:
        groups[group_key(s)].append(s)
    # 5 windows x 2 paths x 2 names x 2 statuses, each seen.
    assert len(groups) == 40
    assert sorted((r.window_start_ns, r.path, r.name, r.status) for r in rows) == sorted(groups)
    for r in rows:
        members = groups[(r.window_start_ns, r.path, r.name, r.status)]
        ref = reference([s.duration_ns for s in members])
        assert (r.count, r.sum_ns, r.min_ns, r.max_ns) == (
            ref["count"],
            ref["sum"],
            ref["min"],
            ref["max"],
        )
        assert r.errors == (r.count if r.status == "error" else 0)
        # Integers summed exactly, then one rounding: the exact figures.
        assert r.mean_ns == ref["mean"]
        assert close(r.m2, ref["m2"], 1e-12)
        assert r.window_ns == MINUTE and r.level is Level.PROD
        assert (r.service, r.node) == ("svc", "n1")
        for name in ("bytes", "ratio"):
            a = attribute_reference(members, name)
            got = r.attributes[name]
            assert got["count"] == a["count"]
            assert (got["min"], got["max"]) == (a["min"], a["max"])
            for k in ("sum", "mean", "m2"):
                assert close(got[k], a[k]), (name, k)
    assert sum(r.count for r in rows) == 3000
    assert sum(r.errors for r in rows) == len(range(0, 3000, 7))
    assert len({r.id for r in rows}) == len(rows)


@pytest.mark.parametrize("batch", [1, 3, 100, 3000])
def test_the_batching_does_not_change_the_rows(batch: int) -> None:
    """One group per batch, a few, many, windows mixed: the same figures."""
    spans = workload(3000)
    whole = live()
    feed(whole, spans, 512)
    expected = {(r.window_start_ns, r.path, r.name, r.status): r for r in whole.emit()}
    stats = live()
    feed(stats, spans, batch)
    got = stats.emit()
    assert len(got) == len(expected)
    for r in got:
        e = expected[(r.window_start_ns, r.path, r.name, r.status)]
        exact = ("count", "errors", "sum_ns", "min_ns", "max_ns", "mean_ns", "m2", "sketch")
        assert [getattr(r, f) for f in exact] == [getattr(e, f) for f in exact]
        for name, a in r.attributes.items():
            assert a["count"] == e.attributes[name]["count"]
            for k in ("sum", "mean", "m2", "min", "max"):
                assert close(a[k], e.attributes[name][k], 1e-12)


def test_only_ended_windows_are_emitted_then_forgotten() -> None:
    stats = live(())
    stats.observe([span(0, T0 + 5, 100), span(1, T0 + MINUTE + 5, 200)])
    assert stats.emit(T0 + MINUTE - 1) == []
    (first,) = stats.emit(T0 + MINUTE)
    assert (first.window_start_ns, first.count, first.sum_ns) == (T0, 1, 100)
    assert len(stats) == 1
    # A late span of the ended window starts a new row of that window.
    stats.observe([span(2, T0 + 7, 50)])
    rows = stats.emit()
    assert [(r.window_start_ns, r.count, r.sum_ns) for r in rows] == [
        (T0, 1, 50),
        (T0 + MINUTE, 1, 200),
    ]
    assert merge([first, rows[0]]).sum_ns == 150
    assert stats.emit() == []


def test_logs_are_counted_apart_and_levels_are_kept_apart() -> None:
    stats = live(())
    log = LogRecord("1" * 32, T0, "svc", "INFO", "m", None, None, {}, None, "svc", "n1")
    stats.observe([log])
    assert len(stats) == 0
    stats.observe([span(0, T0, 10), span(1, T0, 30, level=Level.DEBUG), log])
    rows = stats.emit()
    spans = [r for r in rows if type(r) is SpanStatsRecord]
    assert [(r.level, r.count, r.sum_ns) for r in spans] == [
        (Level.DEBUG, 1, 30),
        (Level.PROD, 1, 10),
    ]
    assert [r.export_level for r in spans] == [Level.DEBUG, Level.PROD]
    (logs,) = [r for r in rows if type(r) is LogStatsRecord]
    assert (logs.window_start_ns, logs.path, logs.level, logs.count) == (T0, "svc", "INFO", 2)
    assert len(rows) == 3


def test_zero_and_negative_durations_are_counted() -> None:
    stats = live(())
    stats.observe([span(0, T0, 0), span(1, T0, -5), span(2, T0, 1000)])
    (row,) = stats.emit()
    assert (row.count, row.sum_ns, row.min_ns, row.max_ns) == (3, 995, -5, 1000)
    sk = decode_sketch(row.sketch)
    assert sk.count == 3
    assert sk.get_quantile_value(0.0) == 0
    assert math.isclose(sk.get_quantile_value(1.0), 1000, rel_tol=RELATIVE_ACCURACY)


def test_attributes_count_only_finite_numbers() -> None:
    stats = LiveStats(MINUTE, lambda: ("svc", "n1"), ("bytes",))
    values: list[object] = [3, 4.5, True, "7", None, float("nan"), float("inf"), (1, 2), 10**3]
    stats.observe([span(i, T0, 10, attributes={"bytes": v}) for i, v in enumerate(values)])
    stats.observe([span(99, T0, 10)])
    (row,) = stats.emit()
    b = row.attributes["bytes"]
    assert (b["count"], b["sum"], b["min"], b["max"]) == (3, 1007.5, 3, 1000)
    assert close(b["mean"], 1007.5 / 3)
    assert close(
        b["m2"],
        attribute_reference([span(0, T0, 1, attributes={"x": v}) for v in (3, 4.5, 1000)], "x")[
            "m2"
        ],
    )
    assert row.count == 10


def test_merging_five_windows_equals_the_statistics_of_the_raw_spans() -> None:
    spans = workload(5000)
    stats = live()
    feed(stats, spans, 300)
    rows = stats.emit()
    assert len({r.window_start_ns for r in rows}) == 5
    got = merge(rows)
    ref = reference([s.duration_ns for s in spans])
    assert (got.count, got.sum_ns, got.min_ns, got.max_ns) == (
        5000,
        ref["sum"],
        ref["min"],
        ref["max"],
    )
    assert got.errors == len(range(0, 5000, 7))
    assert got.rows == len(rows)
    assert close(got.mean_ns, ref["mean"], 1e-12)
    assert close(got.m2, ref["m2"], 1e-9)
    assert close(got.stddev_ns, math.sqrt(ref["m2"] / 5000), 1e-9)
    for name in ("bytes", "ratio"):
        a = attribute_reference(spans, name)
        m = got.attributes[name]
        assert (m.count, m.min, m.max) == (a["count"], a["min"], a["max"])
        assert close(m.mean, a["mean"]) and close(m.m2, a["m2"]) and close(m.sum, a["sum"])
    # The merged sketch: every quantile within 1% of the true one.
    ordered = sorted(s.duration_ns for s in spans)
    for q in (0.0, 0.1, 0.5, 0.9, 0.99, 1.0):
        true = ordered[int(q * (len(ordered) - 1))]
        estimate = got.quantile(q)
        assert estimate is not None
        assert abs(estimate - true) <= RELATIVE_ACCURACY * true, q
    # Per group, across the windows: the same.
    per_name = group_by(rows, lambda r: (r.path, r.name))
    assert len(per_name) == 4
    for (path, name), merged in per_name.items():
        members = [s.duration_ns for s in spans if (s.path, s.name) == (path, name)]
        r = reference(members)
        assert (merged.count, merged.sum_ns, merged.min_ns, merged.max_ns) == (
            r["count"],
            r["sum"],
            r["min"],
            r["max"],
        )
        assert close(merged.mean_ns, r["mean"], 1e-12) and close(merged.m2, r["m2"], 1e-9)


def test_merge_accepts_rows_as_mappings_and_nothing() -> None:
    stats = live(())
    stats.observe([span(0, T0, 10), span(1, T0, 30)])
    (row,) = stats.emit()
    as_dict = {f: getattr(row, f) for f in ("count", "errors", "sum_ns", "mean_ns", "m2", "min_ns")}
    as_dict.update(max_ns=row.max_ns, sketch=row.sketch, attributes=row.attributes)
    got = merge([as_dict, row])
    assert (got.count, got.sum_ns, got.min_ns, got.max_ns, got.mean_ns, got.m2) == (
        4,
        80,
        10,
        30,
        20.0,
        400.0,
    )
    nothing = merge([])
    assert (nothing.count, nothing.min_ns, nothing.quantile(0.5)) == (0, None, None)
    assert nothing.error_rate == 0.0


def test_a_row_survives_the_spool_codec() -> None:
    stats = live()
    feed(stats, workload(200), 50)
    rows = stats.emit()
    back = [decode(encode(r)) for r in rows]
    assert back == rows
    assert all(type(r) is SpanStatsRecord for r in back)


def test_a_forked_child_starts_afresh() -> None:
    stats = live(())
    stats.observe([span(0, T0, 10)])
    run = stats.emit()[0].id[:16]
    stats.observe([span(1, T0, 10)])
    stats._pid = -1  # as in a forked child: another pid than the one that counted
    assert stats.emit() == []  # the parent emits what it held
    stats.observe([span(2, T0, 10)])
    (row,) = stats.emit()
    assert row.id[:16] != run and row.count == 1


def test_a_real_fork_does_not_emit_the_parents_rows(tmp_path: Path) -> None:
    stats = live(())
    stats.observe([span(0, T0, 10)])
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            stats.observe([span(1, T0, 30)])
            rows = stats.emit()
            os.write(write, f"{len(rows)} {rows[0].count} {rows[0].sum_ns}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert os.read(read, 100) == b"1 1 30"
    os.close(read)
    (row,) = stats.emit()
    assert (row.count, row.sum_ns) == (1, 10)
