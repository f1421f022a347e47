"""Records PostgreSQL refuses for good, end to end (issue 10, #2): an
experiment key of 3,000 letters makes "index row size ... exceeds btree
version 4 maximum 2704 for index alamos_experiments_pkey".  Before, that one
record blocked its exporter forever: every later batch went to the spool,
nothing was counted, and a restart did not help (the refused batch sat at
the head of the oldest spool file).  Now the real SQLExporter says
``RecordsRejected``, the delivery isolates the record, writes it to the
dead-letter file next to the spool, counts it as ``rejected``, and stores
everything else.

Keys are limited at the source now, so a tree cannot make such a record any
more; it still reaches the database from a spool written before the limit,
or from any code that builds records.  Both ways are tested here.
"""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest

from alamos.core.records import Record
from alamos.report.pipeline.delivery import Delivery
from alamos.report.pipeline.spool import DeadLetters, Spool
from alamos.report.sql import SQLExporter

from .pipeline_support import HANG, count, new_root, wait_until
from .test_sql import experiment, log, span

pytestmark = pytest.mark.postgres

#: 3,000 letters that do not compress (PostgreSQL compresses an index entry
#: before it checks its size: "a" * 3000 would fit).
LONG = "".join(random.Random(10).choices(string.ascii_letters, k=3000))


def test_pg_a_refused_record_is_dead_lettered_and_the_rest_stored(
    pg_url: str, tmp_path: Path
) -> None:
    exporter = SQLExporter(pg_url)
    drops: list[tuple[int, str]] = []
    delivery = Delivery(
        exporter,
        spool_dir=tmp_path / "spool",
        retry_initial=0.01,
        retry_max=0.1,
        on_drop=lambda n, why: drops.append((n, why)),
    )
    poison = experiment(f"root/{LONG}")
    batch: list[Record] = [*(span(i) for i in range(40)), poison, *(log(i) for i in range(40))]
    delivery.submit(batch)
    delivery.submit([span(i) for i in range(100, 110)])  # the exporter goes on
    assert delivery.flush(HANG) is False  # one record could not be stored
    assert delivery.close(HANG)
    assert count(pg_url, "alamos_spans") == 50
    assert count(pg_url, "alamos_logs") == 40
    assert count(pg_url, "alamos_experiments") == 0
    assert delivery.stats.rejected == 1 and delivery.stats.dropped == 1
    assert [n for n, why in drops if why.startswith("rejected:")] == [1]
    (letter,) = DeadLetters(tmp_path / "spool").read()
    assert letter.record == poison
    assert "exceeds btree version 4 maximum 2704" in letter.reason
    assert not list((tmp_path / "spool").glob("spool-*.jsonl"))  # nothing waits


def test_pg_a_refused_batch_at_the_head_of_the_spool_no_longer_blocks_it(
    pg_url: str, tmp_path: Path
) -> None:
    # An earlier process spooled a batch with the long key (the database was
    # down then), and more after it.
    name = SQLExporter(pg_url).name
    folder = tmp_path / "spool" / "svc" / name
    spool = Spool(folder)
    spool.append([span(1), experiment(f"root/{LONG}"), log(1)])
    spool.append([span(2), log(2)])
    spool.close()

    root = new_root("svc", pg_url, tmp_path / "spool")
    with root.trace.prod("now"):
        pass
    wait_until(lambda: root.stats().spool_pending_bytes == 0, "the spool to be replayed")
    result = root.close(HANG)
    assert count(pg_url, "alamos_spans") == 3  # span 1, span 2, and "now"
    assert count(pg_url, "alamos_logs") == 2
    assert count(pg_url, "alamos_experiments", "path = 'svc'") == 1
    assert root.stats().rejected == 1
    assert result.dropped == 1 and not result.complete  # the refused record, counted
    assert len(DeadLetters(folder).read()) == 1

    # A restart finds nothing left to replay, and refuses nothing again.
    again = new_root("svc", pg_url, tmp_path / "spool")
    again_result = again.close(HANG)
    assert again.stats().rejected == 0 and again_result.complete
    assert len(DeadLetters(folder).read()) == 1
