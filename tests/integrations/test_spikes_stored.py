"""Stored spike flags (issue 11, part 2): ``store_spikes``, ``budget_report(...,
store_spikes=True)``, ``alamos budgets --store-spikes``, read back by
``spike_traces`` and ``stored_spikes``, on SQLite and PostgreSQL.  Storing
twice stores nothing twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from alamos.report.query import (
    budget_report,
    spike_traces,
    store_spikes,
    stored_spikes,
)

from .test_budgets import BASE, SECOND, export, run, spike_workload

SPIKES = [f"{34:032x}", f"{36:032x}"]  # frames 33 and 35 of spike_workload


def count_rows(url: str) -> int:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM alamos_spikes")).scalar()
    engine.dispose()
    return int(n or 0)


def test_spikes_are_stored_once_and_read_back(db_url: str) -> None:
    export(db_url, spike_workload())
    assert spike_traces(db_url) == []
    assert store_spikes(db_url, "tick") == 2
    assert store_spikes(db_url, "tick") == 0  # stored already: nothing twice
    assert count_rows(db_url) == 2
    assert spike_traces(db_url) == SPIKES
    assert spike_traces(db_url, since_ns=BASE + 34 * SECOND) == [SPIKES[1]]
    assert spike_traces(db_url, until_ns=BASE + 34 * SECOND) == [SPIKES[0]]
    rows = stored_spikes(db_url)
    assert [(r.trace_id, r.name, r.path, r.duration_ns, r.factor, r.window) for r in rows] == [
        (SPIKES[0], "tick", "api", 131, 1.3, 32),
        (SPIKES[1], "tick", "api", 200, 1.3, 32),
    ]
    assert rows[0].baseline_ns == pytest.approx(100)
    assert rows[1].baseline_ns == pytest.approx((100 * 30 + 131 + 130) / 32)
    assert rows[0].start_ns == BASE + 33 * SECOND
    assert stored_spikes(db_url, name="other") == []
    # Another rule flags more frames (32 to 36); the two flagged already keep their row.
    assert store_spikes(db_url, "tick", spike_window=2, spike_factor=1.2) == 0
    assert store_spikes(db_url, "tick", spike_factor=0.5) == 3
    assert count_rows(db_url) == 5
    assert [(r.trace_id, r.factor) for r in stored_spikes(db_url)] == [
        (f"{33:032x}", 0.5),
        (SPIKES[0], 1.3),
        (f"{35:032x}", 0.5),
        (SPIKES[1], 1.3),
        (f"{37:032x}", 0.5),
    ]


def test_a_budget_report_stores_its_spikes_when_asked(db_url: str) -> None:
    export(db_url, spike_workload())
    report = budget_report(db_url, "tick", {"db": "sql.*"})
    assert report.stored_spikes is None
    assert spike_traces(db_url) == []
    report = budget_report(db_url, "tick", {"db": "sql.*"}, store_spikes=True)
    assert (report.stored_spikes, report.frame.spikes) == (2, 2)
    assert spike_traces(db_url) == SPIKES
    since = budget_report(db_url, "tick", since_ns=BASE + 34 * SECOND, store_spikes=True)
    assert since.stored_spikes == 0
    assert count_rows(db_url) == 2


def test_cli_store_spikes(db_url: str) -> None:
    export(db_url, spike_workload())
    code, out, err = run("budgets", "--db", db_url, "--frame", "tick")
    assert code == 0, err
    assert "stored in alamos_spikes" not in out
    assert spike_traces(db_url) == []
    code, out, err = run("budgets", "--db", db_url, "--frame", "tick", "--store-spikes")
    assert code == 0, err
    assert "2 new spikes stored in alamos_spikes" in out
    code, out, _ = run("budgets", "--db", db_url, "--frame", "tick", "--store-spikes", "--json")
    assert json.loads(out)["stored_spikes"] == 0
    assert spike_traces(db_url) == SPIKES


def test_spike_traces_of_a_database_without_the_table(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alamos_spans (span_id TEXT)"))
    engine.dispose()
    assert spike_traces(f"sqlite:///{db}") == []
    assert stored_spikes(f"sqlite:///{db}") == []
