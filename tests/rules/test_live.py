"""Recording rules, live: every finished span feeds the rules' series on the
collector's worker; the series are in the tree's registry (``/metrics``)
and in the metric snapshots; past ``max_series`` new label sets go to one
overflow series ``{overflow="true"}``, counted and warned about."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from sqlalchemy import create_engine, text

import alamos
from alamos.report.sql import normalize_url
from alamos.rules import Rule, RuleEngine, RulesError, RuleSet
from alamos.testing import Recorder

try:
    from support import MINUTE, T0, span
except ImportError:
    from tests.rules.support import MINUTE, T0, span

RULES = [
    Rule("requests", group_by=["name", "status"], help="Requests by handler and status"),
    Rule(
        "kv_seconds",
        aggregation="duration_histogram",
        buckets=[0.001, 0.01],
        name_glob="* /kv",
    ),
    Rule("kv_busy_seconds", aggregation="duration_sum", name_regex="(GET|PUT) /kv"),
    Rule(
        "put_bytes",
        aggregation="sum(bytes)",
        group_by=["route=http.route"],
        attributes={"http.method": "PUT"},
        labels={"team": "storage"},
        path="svc.api*",
        level="prod",
    ),
]


def record(root: alamos.Experiment) -> None:
    """10 GET /kv (2 failing), 5 PUT /kv with bytes 0..40, 3 debug "scan"."""
    api = root.sub("api")
    for i in range(10):
        with api.trace.prod("GET /kv") as s:
            s.set("http.method", "GET")
            if i < 2:
                s.set_status("error", "boom")
    for i in range(5):
        with api.trace.prod("PUT /kv") as s:
            s.set_attributes({"http.method": "PUT", "http.route": "/kv", "bytes": 10 * i})
    for _ in range(3):
        with root.sub("db").trace.debug("scan") as s:
            s.set("bytes", 1000)


def test_rules_feed_the_registry_of_a_tree_without_exporters() -> None:
    root = alamos.new("svc", level="debug", rules=RULES, console=False)
    try:
        record(root)
        assert root.flush(timeout=60)
        get = root.registry.get_sample_value
        assert get("requests_total", {"name": "GET /kv", "status": "error"}) == 2.0
        assert get("requests_total", {"name": "GET /kv", "status": "unset"}) == 8.0
        assert get("requests_total", {"name": "PUT /kv", "status": "unset"}) == 5.0
        assert get("requests_total", {"name": "scan", "status": "unset"}) == 3.0
        assert get("kv_seconds_count", {}) == 15.0
        assert get("kv_seconds_bucket", {"le": "+Inf"}) == 15.0
        assert get("put_bytes_total", {"route": "/kv", "team": "storage"}) == 100.0
        text_out = generate_latest(root.registry).decode()
        assert "# HELP requests_total Requests by handler and status\n" in text_out
        assert "# TYPE kv_seconds histogram\n" in text_out
        assert "alamos_rule_overflow" not in text_out  # nothing overflowed
    finally:
        root.close(timeout=60)


def test_a_recorder_tree_runs_rules_on_a_worker(rec: Recorder) -> None:
    root = rec.new("svc", rules=RULES)
    record(root)
    assert root.flush(timeout=60)
    assert root.registry.get_sample_value("kv_seconds_count", {}) == 15.0
    assert (
        root.registry.get_sample_value("requests_total", {"name": "scan", "status": "unset"}) == 3.0
    )


def test_values_are_exact_sums_of_integer_nanoseconds() -> None:
    engine = RuleEngine(RuleSet(RULES), path="svc")
    durations = [300_000, 700_000, 5_000_000, 1_000_000, 10_000_000, 20_000_001]
    engine.observe([span(i, "GET /kv", T0 + i, duration_ns=d) for i, d in enumerate(durations)])
    assert engine.value("kv_busy_seconds") == 37_000_001 / 1e9
    rows = {r.name: r for r in engine.full("svc", "n1")}
    hist = rows["kv_seconds"]
    assert (hist.count, hist.sum) == (6.0, 37_000_001 / 1e9)
    # le is inclusive: 1 ms and 10 ms fall in their own bucket.
    assert dict(hist.buckets or {}) == {"0.001": 3.0, "0.01": 5.0, "+Inf": 6.0}
    assert (hist.path, hist.service, hist.node, hist.kind) == ("svc", "svc", "n1", "histogram")


def test_periodic_snapshots_hold_only_the_changed_series() -> None:
    engine = RuleEngine(RuleSet([Rule("requests", group_by=["name"])]), path="svc")
    engine.observe([span(0, "a", T0), span(1, "b", T0), span(2, "b", T0)])
    first = engine.changed("svc", "n1")
    assert [(dict(r.labels), r.value) for r in first] == [
        ({"name": "a"}, 1.0),
        ({"name": "b"}, 2.0),
    ]
    assert engine.changed("svc", "n1") == []
    engine.observe([span(3, "b", T0 + MINUTE)])
    assert [(dict(r.labels), r.value) for r in engine.changed("svc", "n1")] == [
        ({"name": "b"}, 3.0)
    ]
    assert [(dict(r.labels), r.value) for r in engine.full("svc", "n1")] == [
        ({"name": "a"}, 1.0),
        ({"name": "b"}, 3.0),
    ]


def test_past_max_series_new_label_sets_go_to_one_overflow_series(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rule = Rule("by_user", group_by=["user"], labels={"team": "t"}, max_series=2)
    root = alamos.new("svc", rules=[rule], console=False)
    try:
        with caplog.at_level(logging.WARNING, logger="alamos"):
            for user in ["u0", "u1", "u2", "u3", "u4"]:
                for _ in range(2):
                    with root.trace.prod("req") as s:
                        s.set("user", user)
            assert root.flush(timeout=60)
        get = root.registry.get_sample_value
        assert get("by_user_total", {"user": "u0", "team": "t"}) == 2.0
        assert get("by_user_total", {"user": "u1", "team": "t"}) == 2.0
        assert get("by_user_total", {"user": "u2", "team": "t"}) is None
        assert get("by_user_total", {"overflow": "true", "team": "t"}) == 6.0
        assert get("alamos_rule_overflow_total", {"rule": "by_user"}) == 6.0
        warnings = [r.getMessage() for r in caplog.records if "by_user" in r.getMessage()]
        assert warnings == [
            "alamos: recording rule by_user reached its limit of 2 series; new label sets go "
            'to its overflow series {overflow="true"} from now on (counted in '
            "alamos_rule_overflow_total): drop the unbounded group_by label or raise max_series"
        ]
        exposition = generate_latest(root.registry).decode()
        assert 'by_user_total{overflow="true",team="t"} 6.0\n' in exposition
        assert 'alamos_rule_overflow_total{rule="by_user"} 6.0\n' in exposition
    finally:
        root.close(timeout=60)


def test_the_series_are_stored_with_the_metric_snapshots(db_url: str, tmp_path: Path) -> None:
    root = alamos.new(
        "svc", level="debug", db=db_url, rules=RULES, console=False, spool_dir=tmp_path / "sp"
    )
    record(root)
    assert root.flush(timeout=60)
    node = root.node
    with root.sub("api").trace.prod("GET /kv"):
        pass
    root.close(timeout=60)
    engine = create_engine(normalize_url(db_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT name, labels, value, count FROM alamos_metrics "
                    "WHERE path = 'svc' AND node = :node AND name = 'requests' "
                    "ORDER BY ts_ns, value"
                ),
                {"node": node},
            ).all()
    finally:
        engine.dispose()

    def labels(raw: object) -> dict[str, str]:
        import json

        return json.loads(raw) if isinstance(raw, str) else dict(raw)  # type: ignore[arg-type]

    values = [(labels(r.labels)["name"], labels(r.labels)["status"], r.value) for r in rows]
    # The flush stored every series; close stored every series again, GET /kv
    # unset one more.
    flushed = [
        ("GET /kv", "error", 2.0),
        ("GET /kv", "unset", 8.0),
        ("PUT /kv", "unset", 5.0),
        ("scan", "unset", 3.0),
    ]
    final = [
        ("GET /kv", "error", 2.0),
        ("GET /kv", "unset", 9.0),
        ("PUT /kv", "unset", 5.0),
        ("scan", "unset", 3.0),
    ]
    assert sorted(values[:4]) == flushed
    assert sorted(values[-4:]) == final
    assert len(values) == 8


def test_bad_rules_are_refused_by_new(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rules]]\nmetric = "x"\naggregation = "p99"\n', encoding="utf-8")
    with pytest.raises(RulesError, match=r"bad.toml: rule 1 \('x'\): field 'aggregation'"):
        alamos.new("svc", rules=str(bad), console=False)
    with pytest.raises(RulesError, match=r"field 'file': cannot read it"):
        alamos.new("svc", rules=tmp_path / "missing.toml", console=False)
    with pytest.raises(TypeError, match=r"invalid rules 42: give a list of alamos.rules.Rule"):
        alamos.new("svc", rules=42, console=False)
    with pytest.raises(ValueError, match=r"clashes with a metric of the tree"):
        alamos.new("svc", rules=[Rule("svc_alamos_dropped_records")], console=False)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_series_from_zero() -> None:
    engine = RuleEngine(RuleSet([Rule("requests")]), path="svc")
    engine.observe([span(i, "a", T0) for i in range(3)])
    pid = os.fork()
    if pid == 0:  # the child: its own spans only
        ok = False
        try:
            before = engine.value("requests")
            engine.observe([span(9, "a", T0)])
            ok = before is None and engine.value("requests") == 1.0
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert engine.value("requests") == 3.0
