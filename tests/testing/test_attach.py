"""A recorder attached to a tree that already exists (issue 14, problem 1),
and ``rec.metric`` failing on a metric that does not exist (problem 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

import alamos
from alamos import Level
from alamos.report.sql import normalize_url
from alamos.report.sql.schema import logs, spans
from alamos.testing import Recorder


def count(url: str, table: object) -> int:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]
    finally:
        engine.dispose()


def shop(tmp_path: Path, **kw: object) -> alamos.Experiment:
    """An application's tree, made before any recorder exists (as at import time)."""
    return alamos.new("shop", console=False, spool_dir=tmp_path / "spool", **kw)  # type: ignore[arg-type]


def test_attach_records_only_while_attached(db_url: str, tmp_path: Path) -> None:
    root = shop(tmp_path, db=db_url, level="debug")
    repo = root.sub("repo")
    queries = repo.metrics.counter("queries", labelnames=["table"])
    with repo.trace.prod("before"):  # the instruments exist before the attach
        repo.log.info("before")
        queries.labels("orders").inc(5)
    rec = Recorder()
    with rec.attach(root) as got:
        assert got is rec
        assert rec.attached == [root]
        with root.trace.prod("GET /orders"), repo.trace.debug("select"):
            repo.log.warning("slow query")
            queries.labels("orders").inc()
            queries.labels("items").inc(2)
        # Counters count from the attach: this test's own increments.
        assert rec.metric("shop.repo", "queries", table="orders") == 1
        assert rec.metric("shop.repo", "queries", table="items") == 2
        assert queries.value(table="orders") == 6  # the tree itself is not reset
    with repo.trace.prod("after"):
        repo.log.info("after")
    assert rec.attached == []
    assert [s.name for s in rec.spans()] == ["select", "GET /orders"]
    rec.assert_tree(
        """
        shop.GET /orders
          shop.repo.select
        """
    )
    assert [(r.path, r.level, r.message) for r in rec.logs()] == [
        ("shop.repo", "WARNING", "slow query")
    ]
    assert rec.span(name="select").level is Level.DEBUG
    # The tree keeps its own exporter and stays open: the database got everything.
    assert not root.closed
    assert root.flush(60)
    assert count(db_url, spans) == 4
    assert count(db_url, logs) == 3
    root.close()


def test_attach_to_a_tree_without_exporters(tmp_path: Path) -> None:
    root = shop(tmp_path, level="prod")  # no exporter: its records went nowhere
    exp = root.sub("api")
    with exp.trace.prod("lost"):
        pass
    rec = Recorder()
    with rec.attach(exp):  # any experiment of the tree attaches the whole tree
        with exp.trace.prod("seen"), exp.trace.debug("filtered out"):
            exp.log.debug("filtered out too")
        assert [s.name for s in rec.spans()] == ["seen"]
    with exp.trace.prod("lost again"):
        pass
    assert [s.name for s in rec.spans()] == ["seen"]
    assert rec.logs() == []
    root.close()


def test_a_sub_experiment_made_while_attached_is_recorded(tmp_path: Path) -> None:
    root = shop(tmp_path)
    rec = Recorder()
    with rec.attach(root):
        late = root.sub("late")
        with late.trace.prod("work"):
            late.log.info("hello")
    assert [(s.path, s.name) for s in rec.spans()] == [("shop.late", "work")]
    assert [e.path for e in rec.experiments] == ["shop.late"]
    root.close()


def test_attach_twice_or_to_its_own_tree_records_once(tmp_path: Path) -> None:
    root = shop(tmp_path)
    rec = Recorder()
    first, second = rec.attach(root), rec.attach(root.sub("x"))
    assert first.attached and not second.attached
    own = rec.new("own")
    assert not rec.attach(own).attached
    with root.trace.prod("a"), own.trace.prod("b"):
        pass
    assert sorted(s.name for s in rec.spans()) == ["a", "b"]
    second.detach()  # changes nothing: the first attachment holds
    with root.trace.prod("c"):
        pass
    first.detach()
    first.detach()  # harmless
    with root.trace.prod("d"):
        pass
    assert sorted(s.name for s in rec.spans()) == ["a", "b", "c"]
    rec.close()
    assert own.closed and not root.closed
    root.close()


def test_closing_the_recorder_detaches_and_leaves_the_tree_open(tmp_path: Path) -> None:
    root = shop(tmp_path)
    rec = Recorder()
    rec.attach(root)
    rec.close()
    assert not root.closed
    assert root.exporters == ()
    with root.trace.prod("after"):
        pass
    assert rec.spans() == []
    root.close()


def test_two_recorders_attached_each_see_their_window(tmp_path: Path) -> None:
    root = shop(tmp_path)
    counter = root.metrics.counter("hits")
    a, b = Recorder(), Recorder()
    with a.attach(root):
        counter.inc()
        with b.attach(root):
            counter.inc(10)
            with root.trace.prod("both"):
                pass
        with root.trace.prod("a only"):
            pass
        assert a.metric("shop", "hits") == 11
    assert [s.name for s in a.spans()] == ["both", "a only"]
    assert [s.name for s in b.spans()] == ["both"]
    root.close()


def test_the_final_values_of_an_attached_tree_closed_in_the_test(tmp_path: Path) -> None:
    root = shop(tmp_path)
    counter = root.metrics.counter("orders")
    gauge = root.metrics.gauge("open_carts")
    counter.inc(3)
    gauge.set(7)
    rec = Recorder()
    with rec.attach(root):
        counter.inc(2)
        gauge.set(4)
        root.close()  # the app's shutdown, inside the test
        assert rec.metric("shop", "orders") == 2  # since the attach, as it was at close
        assert rec.metric("shop", "open_carts") == 4  # a gauge: its value
        # The close's final snapshot reached the recorder (absolute values).
        assert {(m.name, m.value) for m in rec.metrics} == {("orders", 5), ("open_carts", 4)}


def test_a_background_exporter_cannot_be_added_to_a_running_tree(tmp_path: Path) -> None:
    root = shop(tmp_path)

    class Background:
        synchronous = False
        min_level = Level.BENCH
        name = "bg"

        def export(self, records: object) -> None:
            pass

        def close(self) -> None:
            pass

    with pytest.raises(ValueError, match=r"pass background exporters to alamos\.new"):
        root.add_exporter(Background())
    assert root.remove_exporter(Background()) is False
    root.close()


def test_noop_takes_an_attach_and_records_nothing() -> None:
    rec = Recorder()
    with rec.attach(alamos.NOOP), alamos.NOOP.trace.prod("x"):
        pass
    assert rec.records == []


# -- problem 9: a typo must not read as None ------------------------------------


def test_an_unknown_metric_lists_what_exists(tmp_path: Path) -> None:
    rec = Recorder()
    app = rec.new("shop")
    app.sub("repo").metrics.counter("queries", labelnames=["table"]).labels("orders").inc()
    app.metrics.gauge("carts")
    app.sub("cache").metrics.histogram("get_seconds", level="bench")
    app.sub("off").metrics.counter("never", level="bench")
    app.set_level("prod")
    with pytest.raises(AssertionError) as failure:
        rec.metric("shop.repo", "querys", table="orders")
    assert str(failure.value) == (
        "no metric 'querys' of 'shop.repo'. Metrics that exist (4), as path name:\n"
        "  shop carts  (gauge)\n"
        "  shop.cache get_seconds  (histogram, off)\n"
        "  shop.off never  (counter, off)\n"
        "  shop.repo queries  (counter; labels: table)"
    )
    rec.close()
    with pytest.raises(AssertionError, match=r"^no metric 'x' of 'y'\. No metrics exist"):
        Recorder().metric("y", "x")


def test_wrong_label_names_fail(alamos_recorder: Recorder) -> None:
    repo = alamos_recorder.new("shop").sub("repo")
    repo.metrics.counter("queries", labelnames=["table", "op"]).labels("orders", "read").inc()
    repo.metrics.counter("plain").inc()
    assert alamos_recorder.metric("shop.repo", "queries", table="orders", op="read") == 1
    assert alamos_recorder.metric("shop.repo", "queries", table="items", op="read") is None
    with pytest.raises(AssertionError) as failure:
        alamos_recorder.metric("shop.repo", "queries", tabel="orders", op="read")
    assert str(failure.value) == (
        "metric 'queries' of 'shop.repo' has table, op: give exactly those label names "
        "(given: op, tabel)"
    )
    with pytest.raises(AssertionError, match=r"has no labels: .*\(given: table\)"):
        alamos_recorder.metric("shop.repo", "plain", table="orders")


def test_a_metric_known_only_from_records_is_not_unknown() -> None:
    rec = Recorder()
    with alamos.new("elsewhere", exporters=[rec], console=False) as tree:
        tree.metrics.counter("hits", labelnames=["code"]).labels(200).inc(7)
    assert rec.metric("elsewhere", "hits", code=200) == 7
    assert rec.metric("elsewhere", "hits", code=404) is None
    with pytest.raises(
        AssertionError, match=r"elsewhere hits  \(counter; labels: code, recorded\)"
    ):
        rec.metric("elsewhere", "hit", code=200)


def test_two_live_trees_with_the_same_path_count_together(tmp_path: Path) -> None:
    old, new = shop(tmp_path), shop(tmp_path)  # e.g. an app made twice in one process
    old_orders = old.metrics.counter("orders")
    new_orders = new.metrics.counter("orders")
    old.metrics.gauge("carts").set(1)
    new.metrics.gauge("carts").set(2)
    old_orders.inc(10)
    rec = Recorder()
    rec.attach(old)
    rec.attach(new)
    new_orders.inc(2)
    old_orders.inc(1)
    assert rec.metric("shop", "orders") == 3  # what the test counted, in both trees
    assert rec.metric("shop", "carts") == 1  # a gauge: the first attached tree's
    rec.close()
    old.close()
    new.close()


def test_metric_after_the_detach_reads_the_attached_window(tmp_path: Path) -> None:
    root = shop(tmp_path)
    orders = root.metrics.counter("orders")
    carts = root.metrics.gauge("carts")
    orders.inc(100)
    rec = Recorder()
    with rec.attach(root):
        orders.inc(2)
        carts.set(3)
    orders.inc(50)  # after the detach: not this recorder's
    carts.set(9)
    assert rec.metric("shop", "orders") == 2
    assert rec.metric("shop", "carts") == 3  # as it was at the detach
    with rec.attach(root):
        orders.inc(1)
        assert rec.metric("shop", "orders") == 3  # both windows
        assert rec.metric("shop", "carts") == 9  # the attachment in force
    assert rec.metric("shop", "orders") == 3
    with pytest.raises(AssertionError, match=r"(?s)no metric 'order' of 'shop'.*shop orders"):
        rec.metric("shop", "order")
    root.close()
