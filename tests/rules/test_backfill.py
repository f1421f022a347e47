"""Recording rules, backfilled from the stored spans into ``alamos_metrics``:
cumulative samples at the end of each step, equal to the live values on the
same spans, stored once however often the backfill runs (SQLite and
PostgreSQL)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

import alamos
from alamos.cli import main
from alamos.core.errors import TraceQueryError
from alamos.report.sql import SQLExporter, normalize_url
from alamos.rules import Rule, RuleSet
from alamos.rules.backfill import backfill, compute

try:
    from support import MINUTE, SECOND, T0, span
except ImportError:
    from tests.rules.support import MINUTE, SECOND, T0, span

RULES = RuleSet(
    [
        Rule("requests", group_by=["name", "status"]),
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
            group_by=["route=http.route", "code"],
            attributes={"http.method": "PUT"},
            labels={"team": "storage"},
            path="svc.api*",
        ),
        Rule("by_flag", group_by=["flag", "ratio", "tags"], name="flags"),
        Rule("by_user", group_by=["user"], max_series=2, name="req"),
    ]
)


def labels_of(raw: Any) -> dict[str, str]:
    return dict(json.loads(raw) if isinstance(raw, str) else raw)


def rows(url: str, where: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            result = conn.execute(
                text(
                    "SELECT ts_ns, name, labels, value, sum, count, buckets, id "
                    f"FROM alamos_metrics WHERE {where} ORDER BY ts_ns, name, id"
                ),
                params,
            )
            return [tuple(r) for r in result]
    finally:
        engine.dispose()


def last_values(found: list[tuple[Any, ...]]) -> dict[tuple[str, str], tuple[Any, ...]]:
    """The last sample of each series: (name, labels JSON) → (value, sum, count, buckets)."""
    out = {}
    for _, name, raw, value, total, count, buckets, _ in found:
        key = (name, json.dumps(labels_of(raw), sort_keys=True))
        b = None if buckets is None else labels_of(buckets)
        out[key] = (value, total, count, b)
    return out


def record(root: alamos.Experiment) -> None:
    api = root.sub("api")
    for i in range(10):
        with api.trace.prod("GET /kv") as s:
            if i < 3:
                s.set_status("error", "boom")
    for i in range(6):
        with api.trace.prod("PUT /kv") as s:
            s.set_attributes(
                {
                    "http.method": "PUT",
                    "http.route": f"/kv/{i % 2}",
                    "code": 200 + i % 2,
                    "bytes": 100 * i + 1,
                }
            )
    for flag, ratio, tags in [(True, 2.0, ("a", 1)), (False, 0.25, ()), (True, 2.0, ("a", 1))]:
        with root.trace.prod("flags") as s:
            s.set_attributes({"flag": flag, "ratio": ratio, "tags": tags})
    # Sorted order, so live (first arrived) and backfill (first by text) keep the same two.
    for user in ["u0", "u1", "u2", "u3", "u1"]:
        with root.trace.prod("req") as s:
            s.set("user", user)


def test_live_equals_backfill(db_url: str, tmp_path: Path) -> None:
    start = time.time_ns()
    root = alamos.new("svc", db=db_url, rules=RULES, console=False, spool_dir=tmp_path / "sp")
    node = root.node
    record(root)
    result = root.close(timeout=60)
    assert result.complete
    live = last_values(rows(db_url, "node = :node AND path = 'svc'", node=node))
    result2 = backfill(
        db_url, RULES, since_ns=start - MINUTE, step_ns=MINUTE, until_ns=time.time_ns() + 2 * MINUTE
    )
    filled = last_values(rows(db_url, "node = 'backfill' AND path = 'rules'"))
    # Not the tree's own metrics (its path-prefixed ones, and the drop counter,
    # which has a 0 series per reason from the start).
    expected = {
        k: v
        for k, v in live.items()
        if not k[0].startswith("svc_") and k[0] != "alamos_dropped_records"
    }
    assert filled == expected
    # Exact numbers, the same in both.
    assert filled[("requests", '{"name": "GET /kv", "status": "error"}')][0] == 3.0
    assert filled[("requests", '{"name": "GET /kv", "status": "unset"}')][0] == 7.0
    assert filled[("requests", '{"name": "PUT /kv", "status": "unset"}')][0] == 6.0
    assert filled[("kv_seconds", "{}")][2] == 16.0
    put = {k[1]: v[0] for k, v in filled.items() if k[0] == "put_bytes"}
    assert put == {
        '{"code": "200", "route": "/kv/0", "team": "storage"}': 1.0 + 201.0 + 401.0,
        '{"code": "201", "route": "/kv/1", "team": "storage"}': 101.0 + 301.0 + 501.0,
    }
    flags = {k[1]: v[0] for k, v in filled.items() if k[0] == "by_flag"}
    assert flags == {
        '{"flag": "true", "ratio": "2", "tags": "[\\"a\\",1]"}': 2.0,
        '{"flag": "false", "ratio": "0.25", "tags": "[]"}': 1.0,
    }
    users = {k[1]: v[0] for k, v in filled.items() if k[0] in ("by_user", "alamos_rule_overflow")}
    assert users == {
        '{"user": "u0"}': 1.0,
        '{"user": "u1"}': 2.0,
        '{"overflow": "true"}': 2.0,
        '{"rule": "by_user"}': 2.0,
    }
    assert [(r.metric, r.overflowed) for r in result2.rules][-1] == ("by_user", 2)


def test_backfill_twice_stores_nothing_twice(db_url: str, tmp_path: Path) -> None:
    start = time.time_ns()
    with alamos.new("svc", db=db_url, console=False, spool_dir=tmp_path / "sp") as root:
        record(root)
    until = time.time_ns() + 2 * MINUTE
    first = backfill(db_url, RULES, since_ns=start - MINUTE, step_ns=MINUTE, until_ns=until)
    stored = rows(db_url, "node = 'backfill'")
    second = backfill(db_url, RULES, since_ns=start - MINUTE, step_ns=MINUTE, until_ns=until)
    assert first == second
    assert rows(db_url, "node = 'backfill'") == stored
    assert len(stored) == first.samples > 0


def store(url: str, records: list[Any]) -> None:
    exporter = SQLExporter(url, min_level="bench")
    try:
        exporter.export(records)
    finally:
        exporter.close()


def test_samples_are_cumulative_at_the_end_of_each_step(db_url: str) -> None:
    ends = [10, 20, 70, 200, 240, 310]  # seconds after T0 (a minute boundary)
    store(db_url, [span(i, "GET /kv", T0 + s * SECOND) for i, s in enumerate(ends)])
    rules = RuleSet([Rule("requests")])
    # --since 65 s: the spans before it count in the values, no sample before it;
    # --until 300 s: the step that ends at 300 s is the last one.
    records, result = compute(
        db_url, rules, since_ns=T0 + 65 * SECOND, step_ns=MINUTE, until_ns=T0 + 305 * SECOND
    )
    assert [(r.ts_ns - T0, r.value) for r in records] == [
        (2 * MINUTE, 3.0),  # 10 s, 20 s and 70 s
        (4 * MINUTE, 4.0),  # + 200 s; 240 s is at the end of that step: the next one
        (5 * MINUTE, 5.0),  # + 240 s; 310 s is after --until
    ]
    assert result.until_ns == T0 + 5 * MINUTE
    # Another --since gives the same samples where both have them: same ids, same values.
    later, _ = compute(
        db_url, rules, since_ns=T0 + 150 * SECOND, step_ns=MINUTE, until_ns=T0 + 305 * SECOND
    )
    assert [(r.id, r.value) for r in later] == [(r.id, r.value) for r in records[1:]]


def test_backfill_overflow_keeps_the_first_label_sets_by_step_then_text(db_url: str) -> None:
    users = [(0, "u5"), (1, "u3"), (2, "u4"), (70, "u1"), (71, "u5")]  # (seconds, user)
    store(db_url, [span(i, "req", T0 + s * SECOND, user=u) for i, (s, u) in enumerate(users)])
    rules = RuleSet([Rule("by_user", group_by=["user"], max_series=2)])
    records, result = compute(db_url, rules, since_ns=T0, step_ns=MINUTE, until_ns=T0 + 3 * MINUTE)
    assert [(r.ts_ns - T0, r.name, dict(r.labels), r.value) for r in records] == [
        (MINUTE, "by_user", {"user": "u3"}, 1.0),
        (MINUTE, "by_user", {"user": "u4"}, 1.0),
        (MINUTE, "by_user", {"overflow": "true"}, 1.0),
        (MINUTE, "alamos_rule_overflow", {"rule": "by_user"}, 1.0),
        (2 * MINUTE, "by_user", {"overflow": "true"}, 3.0),
        (2 * MINUTE, "alamos_rule_overflow", {"rule": "by_user"}, 3.0),
    ]
    assert (result.rules[0].series, result.rules[0].overflowed) == (3, 3)


def test_the_backfill_command(sqlite_url: str, tmp_path: Path) -> None:
    file = tmp_path / "rules.toml"
    file.write_text('[[rules]]\nmetric = "requests"\ngroup_by = ["name"]\n', encoding="utf-8")
    now = time.time_ns()
    store(sqlite_url, [span(i, "GET /kv", now - 10 * MINUTE + i) for i in range(3)])
    args = ["rules", "backfill", str(file), "--db", sqlite_url, "--since", "1h", "--step", "1m"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output == (
        "requests: 1 series, 1 samples\n"
        "1 samples in all (a sample stored by an earlier run is kept, not stored twice)\n"
    )
    again = CliRunner().invoke(main, [*args, "--json"])
    assert json.loads(again.output)["rules"] == [
        {"metric": "requests", "series": 1, "samples": 1, "overflowed": 0}
    ]
    assert [(r[1], r[3]) for r in rows(sqlite_url, "node = 'backfill'")] == [("requests", 3.0)]
    bad = CliRunner().invoke(main, [*args[:-2], "--step", "soon"])
    assert bad.exit_code == 2
    assert "Invalid value for --step: invalid duration 'soon'" in bad.output
    missing = CliRunner().invoke(
        main, ["rules", "backfill", str(file), "--db", "sqlite:///" + str(tmp_path / "no.db")]
    )
    assert missing.exit_code == 1
    assert "no SQLite database at" in missing.output


def test_backfill_of_a_database_without_spans_says_so(tmp_path: Path) -> None:
    with pytest.raises(TraceQueryError, match=r"no SQLite database at"):
        compute(f"sqlite:///{tmp_path / 'x.db'}", RULES, since_ns=0, step_ns=MINUTE)
