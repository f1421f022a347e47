"""The drop counter has a series at 0 for every reason from the start (issue 14,
problem 10): Prometheus then answers 0, not an empty result, before the first drop."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client import generate_latest

import alamos
from alamos.report.pipeline.stats import DROP_REASONS

from .pipeline_support import query


def test_every_reason_is_at_zero_from_the_start(db_url: str, tmp_path: Path) -> None:
    root = alamos.new("shop", db=db_url, console=False, spool_dir=tmp_path / "spool")
    exposition = generate_latest(root.registry).decode()
    for reason in DROP_REASONS:
        assert f'shop_alamos_dropped_records_total{{reason="{reason}"}} 0.0\n' in exposition
    assert len(DROP_REASONS) == 5
    assert root.flush(60)
    rows = query(
        db_url,
        "SELECT labels, value FROM alamos_metrics WHERE name = 'alamos_dropped_records'",
    )
    # JSON text on SQLite, JSONB (a dict) on PostgreSQL.
    stored = sorted(
        ((json.loads(labels) if isinstance(labels, str) else labels)["reason"], value)
        for labels, value in rows
    )
    assert stored == sorted((reason, 0) for reason in DROP_REASONS)
    root.close()


def test_a_tree_without_background_exporters_has_no_drop_counter() -> None:
    # Nothing can be dropped without a queue: no counter, no series.
    root = alamos.new("quiet", console=False)
    assert "alamos_dropped_records" not in generate_latest(root.registry).decode()
    root.close()
