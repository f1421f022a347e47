"""Metric snapshots (issue 10, defect 9): the periodic snapshot exports only
the series that changed since the previous one; a flush and close export
every series, so the database has each series' final value."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import alamos
from alamos import Experiment
from alamos.experiment.snapshots import MetricSnapshots
from alamos.testing import Recorder

#: A "did not hang" guard, never a performance assertion.
HANG = 120.0


@pytest.fixture
def root(alamos_recorder: Recorder) -> Experiment:
    return alamos_recorder.new("server", level="prod")


def names(records: list[alamos.MetricRecord]) -> list[tuple[str, str, tuple[str, ...]]]:
    return sorted((r.path, r.name, tuple(r.labels.values())) for r in records)


def test_only_changed_series_after_the_first_snapshot(root: Experiment) -> None:
    reqs = root.sub("api").metrics.counter("requests", labelnames=["method"])
    lat = root.metrics.histogram("lat", buckets=[1.0])
    nan = root.metrics.gauge("nan")
    nan.set(math.nan)
    reqs.labels("GET").inc()
    reqs.labels("POST").inc()
    snaps = MetricSnapshots(root)
    first = snaps.changed()
    assert names(first) == [
        ("server", "lat", ()),
        ("server", "nan", ()),
        ("server.api", "requests", ("GET",)),
        ("server.api", "requests", ("POST",)),
    ]
    assert snaps.changed() == []  # nothing changed; a NaN gauge that stays NaN neither
    reqs.labels("GET").inc()
    lat.observe(2.0)  # only the +Inf bucket, the sum and the count move
    reqs.labels("PUT")  # a new series
    again = snaps.changed()
    assert names(again) == [
        ("server", "lat", ()),
        ("server.api", "requests", ("GET",)),
        ("server.api", "requests", ("PUT",)),
    ]
    assert {tuple(r.labels.values()): r.value for r in again if r.name == "requests"} == {
        ("GET",): 2.0,
        ("PUT",): 0.0,
    }
    nan.set(1.0)
    assert names(snaps.changed()) == [("server", "nan", ())]
    # A full snapshot (flush, close) has every series, and resets the comparison.
    assert len(snaps.full()) == 5
    assert snaps.changed() == []


def test_a_re_enabled_metric_is_exported_whole_again(root: Experiment) -> None:
    cache = root.metrics.gauge("cache", level="debug", labelnames=["k"])
    root.set_level("debug")
    cache.labels("a").set(1)
    snaps = MetricSnapshots(root)
    assert len(snaps.changed()) == 1
    root.set_level("prod")
    assert snaps.changed() == []  # filtered out: not exported, and forgotten
    root.set_level("debug")
    assert names(snaps.changed()) == [("server", "cache", ("a",))]


def test_removed_series_are_forgotten(root: Experiment) -> None:
    reqs = root.metrics.counter("requests", labelnames=["k"])
    for k in "abc":
        reqs.labels(k).inc()
    snaps = MetricSnapshots(root)
    snaps.changed()
    reqs.prometheus.remove("a")
    assert snaps.changed() == []
    assert len(snaps._last[("server", "requests")]) == 2  # bounded by the live series
    reqs.labels("a")  # back, at 0: new again
    assert names(snaps.changed()) == [("server", "requests", ("a",))]


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def test_periodic_snapshots_skip_unchanged_series_in_the_database(
    sqlite_url: str, tmp_path: Path
) -> None:
    """1,000 idle series and one busy one: a periodic snapshot used to write
    all 1,001 rows again every interval; now only the busy one."""
    root = alamos.new(
        "snap",
        db=sqlite_url,
        spool_dir=tmp_path / "spool",
        console=False,
        metrics_interval=0.05,
        report_interval=3600,
    )
    try:
        reqs = root.metrics.counter("requests", labelnames=["id"])
        for i in range(1000):
            reqs.labels(str(i)).inc()
        assert root.flush(HANG)  # a full snapshot: 1,000 rows
        where = "name = 'requests'"
        (flushed,) = rows(sqlite_url, f"SELECT count(*) FROM alamos_metrics WHERE {where}")[0]
        assert flushed >= 1000
        reqs.labels("busy").inc(5)  # the next periodic snapshot exports this one only
        hot = f"{where} AND json_extract(labels, '$.id') = 'busy'"
        deadline = time.monotonic() + HANG
        while not rows(sqlite_url, f"SELECT 1 FROM alamos_metrics WHERE {hot}"):
            assert time.monotonic() < deadline, "hung: no periodic snapshot reached the database"
            time.sleep(0.05)
        time.sleep(0.3)  # a few more periodic snapshots, with nothing changed
        assert root.flush(HANG)
    finally:
        root.close(HANG)
    by_ts = rows(
        sqlite_url,
        f"SELECT ts_ns, count(*) FROM alamos_metrics WHERE {where} GROUP BY ts_ns ORDER BY ts_ns",
    )
    counts = [n for _, n in by_ts]
    # After the first flush (1,000 rows, after whatever periodic snapshots
    # came before it), periodic snapshots hold nothing until one holds the
    # busy series alone; the second flush and close hold all 1,001.
    assert counts[-3:] == [1, 1001, 1001], counts
    final = rows(
        sqlite_url,
        f"SELECT value FROM alamos_metrics WHERE {hot} ORDER BY ts_ns DESC LIMIT 1",
    )
    assert final == [(5.0,)]
