"""The per-metric cardinality limit (issue 10, defect 9): label sets past the
limit go to one overflow series, counted and warned about once; the enabled
hot path stays prometheus_client's own."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from prometheus_client import generate_latest

import alamos
from alamos import Experiment
from alamos.core.records import MetricRecord
from alamos.metrics.metric import DEFAULT_CARDINALITY_LIMIT, OVERFLOW_LABEL_VALUE
from alamos.report.pipeline.codec import loads_batch
from alamos.testing import Recorder

OVER = OVERFLOW_LABEL_VALUE


@pytest.fixture
def root(alamos_recorder: Recorder) -> Experiment:
    return alamos_recorder.new("server", level="prod")


def series(metric: alamos.metrics.Metric) -> dict[tuple[str, ...], float]:
    return {tuple(s["labels"].values()): s["value"] for s in metric.samples()}


def test_label_sets_past_the_limit_go_to_one_overflow_series(
    root: Experiment, caplog: pytest.LogCaptureFixture
) -> None:
    reqs = root.sub("api").metrics.counter("requests", labelnames=["user"], cardinality_limit=10)
    with caplog.at_level(logging.WARNING, logger="alamos"):
        for i in range(100):
            reqs.labels(f"u{i}").inc()
        reqs.labels("u3").inc()  # a known label set keeps its own series
        reqs.labels(user="u4").inc(2)
    got = series(reqs)
    assert len(got) == 11  # the limit, plus the overflow series
    assert got[(OVER,)] == 90.0
    assert got[("u3",)] == 2.0 and got[("u4",)] == 3.0
    assert sum(got.values()) == 103.0  # the total stays right
    assert reqs.overflows == 90
    warnings = [r for r in caplog.records if "cardinality limit" in r.getMessage()]
    assert len(warnings) == 1  # once per metric
    assert warnings[0].name == "alamos"
    assert "server_api_requests" in warnings[0].getMessage()
    # The count is exported too, next to the metric (and so to the database).
    text = generate_latest(root.registry).decode()
    assert 'server_api_alamos_label_overflows_total{metric="requests"} 90.0' in text
    assert f'server_api_requests_total{{user="{OVER}"}} 90.0' in text


def test_the_default_limit_is_opentelemetrys(root: Experiment) -> None:
    assert DEFAULT_CARDINALITY_LIMIT == 2000
    reqs = root.metrics.counter("requests", labelnames=["id"])
    assert reqs.cardinality_limit == 2000
    for i in range(2500):
        reqs.labels(str(i)).inc()
    assert len(reqs.samples()) == 2001
    assert reqs.overflows == 500
    assert reqs.value(id=OVER) == 500.0


def test_every_label_of_the_overflow_series_is_marked(root: Experiment) -> None:
    lat = root.metrics.histogram(
        "lat", labelnames=["route", "code"], buckets=[1.0], cardinality_limit=2
    )
    for i in range(5):
        lat.labels(f"/r{i}", "200").observe(0.5)
    (overflow,) = [s for s in lat.samples() if s["labels"]["route"] == OVER]
    assert overflow["labels"] == {"route": OVER, "code": OVER}
    assert overflow["count"] == 3.0
    gauge = root.metrics.gauge("g", labelnames=["k"], cardinality_limit=1)
    gauge.labels("a").set(1)
    gauge.labels("b").set(7)
    assert series(gauge) == {("a",): 1.0, (OVER,): 7.0}


def test_non_str_and_keyword_label_values_are_one_label_set(root: Experiment) -> None:
    codes = root.metrics.counter("codes", labelnames=["code"], cardinality_limit=2)
    codes.labels(200).inc()
    codes.labels("200").inc()
    codes.labels(code=200).inc()
    codes.labels(404).inc()
    codes.labels(code="404").inc()  # at the limit: known sets still find their series
    codes.labels(500).inc()  # the third: overflow
    assert series(codes) == {("200",): 3.0, ("404",): 2.0, (OVER,): 1.0}
    assert codes.overflows == 1


def test_invalid_label_calls_still_raise_at_the_limit(root: Experiment) -> None:
    reqs = root.metrics.counter("requests", labelnames=["method"], cardinality_limit=1)
    reqs.labels("GET").inc()
    reqs.labels("POST").inc()  # overflow
    for call in (
        lambda: reqs.labels(),
        lambda: reqs.labels("GET", "x"),
        lambda: reqs.labels(code="GET"),
        lambda: reqs.labels("GET", method="GET"),
    ):
        with pytest.raises(ValueError):  # prometheus_client's own checks
            call()
    assert reqs.overflows == 1
    unlabelled = root.metrics.counter("plain")
    with pytest.raises(ValueError, match="No label names"):
        unlabelled.labels("x")


def test_a_known_label_set_is_one_dict_lookup(root: Experiment) -> None:
    reqs = root.metrics.counter("requests", labelnames=["method"])
    child = reqs.labels("GET")
    assert reqs.labels("GET") is child is reqs.prometheus.labels("GET")
    assert reqs.inc.__self__ is reqs.prometheus  # the unlabelled hot path is untouched
    plain = root.metrics.counter("plain")
    assert plain.inc == plain.prometheus.inc


def test_removed_label_sets_make_room_again(root: Experiment) -> None:
    reqs = root.metrics.counter("requests", labelnames=["k"], cardinality_limit=2)
    reqs.labels("a").inc()
    reqs.labels("b").inc()
    reqs.prometheus.clear()
    reqs.labels("c").inc()  # the dict was replaced: read afresh
    reqs.labels("d").inc()
    assert series(reqs) == {("c",): 1.0, ("d",): 1.0}
    assert reqs.overflows == 0


def test_the_limit_is_exact_under_threads(root: Experiment) -> None:
    reqs = root.metrics.counter("requests", labelnames=["k"], cardinality_limit=50)
    barrier = threading.Barrier(8)

    def worker(t: int) -> None:
        barrier.wait()
        for i in range(100):
            reqs.labels(f"{t}-{i}").inc()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    got = series(reqs)
    assert len(got) == 51
    assert reqs.overflows == 750 and got[(OVER,)] == 750.0
    assert sum(got.values()) == 800.0


def test_filtered_out_then_enabled_metric_is_limited(root: Experiment) -> None:
    cache = root.metrics.gauge("cache", labelnames=["k"], level="debug", cardinality_limit=1)
    cache.labels("a").set(1)  # filtered out: a no-op, no label set made
    assert cache.samples() == [] and cache.overflows == 0
    root.set_level("debug")
    cache.labels("a").set(1)
    cache.labels("b").set(2)
    assert series(cache) == {("a",): 1.0, (OVER,): 2.0}


def test_cardinality_limit_option(root: Experiment) -> None:
    for bad in (0, -1, True, "10", 2.5):
        with pytest.raises(ValueError, match=r"invalid cardinality_limit .*: use an int >= 1"):
            root.metrics.counter("x", labelnames=["k"], cardinality_limit=bad)  # type: ignore[arg-type]
    reqs = root.metrics.counter("requests", labelnames=["k"], cardinality_limit=10)
    assert root.metrics.counter("requests") is reqs  # no limit given: "the one I made"
    assert root.metrics.counter("requests", cardinality_limit=10) is reqs
    with pytest.raises(ValueError) as info:
        root.metrics.counter("requests", cardinality_limit=20)
    assert str(info.value) == (
        "metric 'requests' of 'server' already has cardinality_limit 10, not 20: pick another name"
    )
    assert alamos.NOOP.metrics.counter("x", labelnames=["k"], cardinality_limit=5).labels("a")


def test_a_user_metric_named_like_the_overflow_counter(root: Experiment) -> None:
    root.metrics.gauge("alamos_label_overflows")  # taken: overflows are counted on the metric
    reqs = root.metrics.counter("requests", labelnames=["k"], cardinality_limit=1)
    reqs.labels("a").inc()
    reqs.labels("b").inc()
    assert reqs.overflows == 1 and reqs.value(k=OVER) == 1.0


def test_database_down_spools_at_most_the_limit_per_metric(tmp_path: Path) -> None:
    """With the database down, 20,000 label values used to become 20,000
    spooled records (200,000: one 49 MiB spool line); now the limit bounds them."""
    blocked = tmp_path / "db"
    blocked.write_text("not a folder: the database cannot be created here")
    spool = tmp_path / "spool"
    root = alamos.new(
        "down",
        db=f"sqlite:///{blocked / 'alamos.db'}",
        spool_dir=spool,
        console=False,
        metrics_interval=3600,
        report_interval=3600,
    )
    try:
        reqs = root.metrics.counter("requests", labelnames=["id"])
        for i in range(20_000):
            reqs.labels(str(i)).inc()
        root.flush(60)
    finally:
        root.close(60)
    spooled: list[MetricRecord] = []
    for path in spool.rglob("spool-*.jsonl"):
        for line in path.read_bytes().splitlines()[1:]:  # after the header line
            spooled += [r for r in loads_batch(line) if isinstance(r, MetricRecord)]
    ours = [r for r in spooled if r.name == "requests"]
    # One flush and the close, each a full snapshot of the capped series.
    assert len(ours) == 2 * (DEFAULT_CARDINALITY_LIMIT + 1)
    overflow = [r.value for r in ours if r.labels == {"id": OVER}]
    assert overflow == [18_000.0, 18_000.0]
    counted = [r.value for r in spooled if r.name == "alamos_label_overflows"]
    assert counted == [18_000.0, 18_000.0]


def test_unhashable_label_values_take_their_str(root: Experiment) -> None:
    tags = root.metrics.counter("tags", labelnames=["tag"], cardinality_limit=1)
    tags.labels(["a"]).inc()  # prometheus_client stores str(["a"])
    tags.labels("['a']").inc()
    tags.labels(["b"]).inc()
    assert series(tags) == {("['a']",): 2.0, (OVER,): 1.0}
