"""exp.metrics: names, labels, kinds, registries, filtering, values, serve()."""

from __future__ import annotations

import socket
import threading
import urllib.request

import prometheus_client
import pytest
from prometheus_client import generate_latest

import alamos
import alamos.metrics
from alamos import Experiment, Level
from alamos.metrics import Counter, Gauge, Histogram
from alamos.testing import Recorder


@pytest.fixture
def root(rec: Recorder) -> Experiment:
    return rec.new("server", level="prod")


def exposition(exp: Experiment) -> str:
    return generate_latest(exp.registry).decode()


# -- names, kinds, labels ---------------------------------------------------------------


def test_prometheus_names(root: Experiment) -> None:
    cesium = root.sub("cesium")
    writes = cesium.metrics.counter("writes", "Writes accepted")
    cache = cesium.metrics.gauge("cache_bytes", "Bytes cached")
    lat = cesium.metrics.histogram("write_seconds", "Write latency")
    dashed = root.sub("my-db").metrics.counter("ops")
    assert isinstance(writes, Counter) and isinstance(cache, Gauge) and isinstance(lat, Histogram)
    assert (writes.full_name, writes.path, writes.name) == (
        "server_cesium_writes",
        "server.cesium",
        "writes",
    )
    writes.inc()
    dashed.inc()
    text = exposition(root)
    assert "# HELP server_cesium_writes_total Writes accepted" in text
    assert "server_cesium_writes_total 1.0" in text
    assert "server_cesium_cache_bytes 0.0" in text
    assert "server_cesium_write_seconds_bucket" in text
    assert "server_my_db_ops_total 1.0" in text
    assert repr(writes) == "<Counter server_cesium_writes prod on>"


def test_counter_gauge_histogram_api(root: Experiment) -> None:
    writes = root.metrics.counter("writes")
    cache = root.metrics.gauge("cache")
    lat = root.metrics.histogram("lat", buckets=[0.5, 1.0])
    writes.inc()
    writes.inc(2.5)
    cache.set(10)
    cache.inc(2)
    cache.dec()
    lat.observe(0.25)
    lat.observe(0.75)
    with lat.time():
        pass
    assert writes.value() == 3.5
    assert cache.value() == 11.0
    assert lat.value() is not None and lat.value() >= 1.0  # the sum
    (sample,) = lat.samples()
    assert sample["count"] == 3.0
    assert sample["buckets"]["0.5"] >= 1.0 and sample["buckets"]["+Inf"] == 3.0

    @lat.time()
    def timed() -> int:
        return 1

    assert timed() == 1
    assert lat.samples()[0]["count"] == 4.0
    with cache.track_inprogress():
        assert cache.value() == 12.0
    assert cache.value() == 11.0
    with pytest.raises(KeyError), writes.count_exceptions():
        raise KeyError
    assert writes.value() == 4.5


def test_labels(root: Experiment) -> None:
    reqs = root.metrics.counter("requests", "Requests", labelnames=["method", "code"])
    reqs.labels("GET", "200").inc()
    reqs.labels(method="POST", code="500").inc(3)
    assert reqs.value(method="GET", code="200") == 1.0
    assert reqs.value(method="POST", code="500") == 3.0
    assert reqs.value(method="PUT", code="200") is None
    assert reqs.labelnames == ("method", "code")
    assert 'server_requests_total{code="500",method="POST"} 3.0' in exposition(root)
    with pytest.raises(ValueError):  # prometheus_client's own checks
        reqs.labels("GET")
    with pytest.raises(ValueError):
        reqs.inc()  # a labelled metric needs .labels(...)


def test_same_name_returns_the_same_metric(root: Experiment) -> None:
    cesium = root.sub("cesium")
    a = cesium.metrics.counter("writes", "Writes")
    assert cesium.metrics.counter("writes") is a
    assert root.sub("cesium").metrics.counter("writes", "other doc") is a
    assert cesium.metrics.get("writes") is a and cesium.metrics.get("nope") is None
    assert list(cesium.metrics) == [a] and len(cesium.metrics) == 1
    assert root.metrics.counter("writes") is not a  # another experiment, another metric


def test_same_name_other_kind_raises_a_clear_error(root: Experiment) -> None:
    root.sub("cesium").metrics.counter("writes")
    with pytest.raises(ValueError) as info:
        root.sub("cesium").metrics.gauge("writes")
    assert str(info.value) == (
        "metric 'writes' of 'server.cesium' is already a counter; it cannot also be a gauge: "
        "pick another name"
    )


def test_same_name_other_labelnames_raises_a_clear_error(root: Experiment) -> None:
    reqs = root.metrics.counter("requests", labelnames=["method"])
    assert root.metrics.counter("requests") is reqs  # no labelnames: "the one I made"
    with pytest.raises(ValueError) as info:
        root.metrics.counter("requests", labelnames=["code"])
    assert str(info.value) == (
        "metric 'requests' of 'server' already has labelnames ['method'], not ['code']: "
        "pick another name"
    )


def test_paths_mapping_to_the_same_prometheus_name(root: Experiment) -> None:
    root.sub("a").metrics.counter("b_c")
    with pytest.raises(ValueError) as info:
        root.sub("a_b").metrics.counter("c")
    message = str(info.value)
    assert "cannot create counter 'c' at 'server.a_b' (Prometheus name 'server_a_b_c')" in message
    assert "rename one of them" in message


def test_filtered_out_metrics_still_catch_name_clashes(root: Experiment) -> None:
    root.sub("a").metrics.counter("b_c", level="bench")
    with pytest.raises(ValueError, match="Two experiment paths can map to the same"):
        root.sub("a_b").metrics.counter("c", level="bench")


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a.b", "a b", 3])
def test_invalid_metric_names(root: Experiment, name: object) -> None:
    with pytest.raises(ValueError) as info:
        root.metrics.counter(name)  # type: ignore[arg-type]
    assert str(info.value) == (
        f"invalid metric name {name!r}: use letters, digits and '_' "
        "(regex [A-Za-z_][A-Za-z0-9_]*); the experiment path is prefixed for you"
    )


def test_invalid_metric_level(root: Experiment) -> None:
    with pytest.raises(ValueError, match="invalid level 'loud'"):
        root.metrics.counter("x", level="loud")


# -- registries --------------------------------------------------------------------------


def test_trees_have_their_own_registries(rec: Recorder) -> None:
    a = rec.new("server")
    b = rec.new("server")
    ca = a.sub("cesium").metrics.counter("writes")
    cb = b.sub("cesium").metrics.counter("writes")  # same full name, no clash
    ca.inc()
    assert (ca.value(), cb.value()) == (1.0, 0.0)
    assert a.registry is a.sub("cesium").registry is not b.registry
    assert "server_cesium_writes" not in generate_latest(prometheus_client.REGISTRY).decode()


# -- filtering -----------------------------------------------------------------------------------


def test_filtered_out_metric_is_a_no_op(root: Experiment) -> None:
    cache = root.metrics.gauge("cache", level="debug", labelnames=["kind"])
    lat = root.metrics.histogram("lat", level=Level.BENCH)
    assert not cache.enabled and not lat.enabled
    cache.labels("a").set(5)
    cache.labels(kind="b").inc()
    with cache.labels("a").time(), cache.labels("a").track_inprogress():
        pass
    lat.observe(3)
    with lat.time():
        pass

    @lat.time()
    def f() -> int:
        return 2

    assert f() == 2
    assert cache.value(kind="a") is None and lat.value() == 0.0
    assert "server_cache" not in exposition(root)  # not exposed either
    assert "server_lat" not in exposition(root)
    assert repr(cache) == "<Gauge server_cache debug off>"


def test_filtered_out_metric_becomes_live_when_the_filter_changes(root: Experiment) -> None:
    cache = root.sub("cesium").metrics.gauge("cache", level="debug")
    cache.set(1)
    root.set_level("prod,server.cesium=debug")
    assert cache.enabled
    cache.set(2)
    assert cache.value() == 2.0
    assert "server_cesium_cache 2.0" in exposition(root)
    root.set_level("prod")
    cache.set(3)
    assert not cache.enabled and cache.value() == 2.0
    assert "server_cesium_cache" not in exposition(root)


def test_enabled_metric_methods_are_prometheus_own(root: Experiment) -> None:
    writes = root.metrics.counter("writes")
    assert writes.inc == writes.prometheus.inc  # no wrapper on the hot path


def test_metrics_are_thread_safe_to_create(root: Experiment) -> None:
    got: list[Counter] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        c = root.metrics.counter("shared")
        c.inc()
        got.append(c)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in got}) == 1
    assert got[0].value() == 8.0


# -- serve ------------------------------------------------------------------------------------


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return str(response.read().decode())


def test_serve_exposes_metrics(root: Experiment) -> None:
    root.sub("cesium").metrics.counter("writes", "Writes").inc(7)
    root.metrics.gauge("hidden", level="debug")
    with alamos.metrics.serve(root, port=0, addr="127.0.0.1") as server:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        text = get(server.url)
        assert "server_cesium_writes_total 7.0" in text
        assert "server_hidden" not in text
        root.sub("late").metrics.counter("ops").inc()  # read at request time
        assert "server_late_ops_total 1.0" in get(server.url)
    assert not server.thread.is_alive()


def test_serve_unpacks_like_prometheus_client(root: Experiment) -> None:
    running = alamos.metrics.serve(root, 0)
    server, thread = running
    assert thread.is_alive() and server is running.server
    running.close()
    running.close()  # idempotent
    assert not thread.is_alive()


def test_serve_on_a_given_free_port_and_stops_with_the_tree(rec: Recorder) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = rec.new("server")
    root.metrics.counter("up").inc()
    server = alamos.metrics.serve(root, port=port)
    assert server.port == port
    assert "server_up_total 1.0" in get(f"http://127.0.0.1:{port}/metrics")
    root.close()
    assert not server.thread.is_alive()


def test_serve_errors(root: Experiment) -> None:
    for bad in (-1, 70000, "9100", True):
        with pytest.raises(ValueError, match=r"invalid port .*: use an int in \[0, 65535\]"):
            alamos.metrics.serve(root, port=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid if_taken 'ignore': use 'warn' or 'raise'"):
        alamos.metrics.serve(root, port=0, if_taken="ignore")  # type: ignore[arg-type]
    with alamos.metrics.serve(root, port=0) as first, pytest.raises(OSError) as info:
        alamos.metrics.serve(root, port=first.port, if_taken="raise")
    assert isinstance(info.value, alamos.MetricsPortInUse)
    assert "asgi_app(root)" in str(info.value) and "PROMETHEUS_MULTIPROC_DIR" in str(info.value)


def test_serve_on_a_taken_port_warns_and_does_not_break_the_worker(
    root: Experiment, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14, problem 2: the second worker of `uvicorn --workers 2` calling
    serve() on the same port raised OSError, and uvicorn stopped the server."""
    root.metrics.counter("up").inc()
    with alamos.metrics.serve(root, port=0) as first:
        with caplog.at_level("WARNING", logger="alamos"):
            second = alamos.metrics.serve(root, port=first.port)
        assert not second.serving and second.server is None and second.thread is None
        assert second.port == first.port
        second.close()  # nothing to close
        (message,) = [r.getMessage() for r in caplog.records]
        assert f"metrics port 127.0.0.1:{first.port} is taken" in message
        assert "mount alamos.metrics.asgi_app(root)" in message
        assert "PROMETHEUS_MULTIPROC_DIR" in message
        assert repr(second) == f"<MetricsServer not serving (port {first.port} taken)>"
        assert "server_up_total 1.0" in get(first.url)  # the first one still serves


def test_metrics_are_no_ops_after_close(rec: Recorder) -> None:
    root = rec.new("server")
    writes = root.metrics.counter("writes")
    writes.inc()
    root.close()
    assert not writes.enabled
    writes.inc(5)  # after close every call is a no-op, metrics included
    assert writes.prometheus._value.get() == 1.0
