"""Garbage collection: apply a :class:`~alamos.retention.policy.Policy` to a database.

:func:`gc` runs in four steps, each made of short transactions, so that an
exporter writing to the same database never waits long (SQLite in WAL mode
lets it write while gc reads; PostgreSQL's row locks never meet its inserts):

1. **Decide** (reads only): each trace's fate in one query
   (:mod:`~alamos.retention.decide`), streamed; the traces to delete are
   written to ``alamos_gc_pending`` in batches.
2. **Delete traces**, batch after batch, each its own transaction of at most
   ``batch_size`` rows: whole traces while they fit (their logs, then their
   spans, then their pending row, atomically); a trace larger than a batch
   is marked ``started`` and deleted over several.  Before a trace's first
   rows go, it is checked again: held since, or given a new span or log since,
   it is spared.
3. **Trim by age** the tables without traces (:mod:`~alamos.retention.hooks`),
   ``batch_size`` rows per transaction, and remove expired holds.
4. **Return space**: SQLite files made by this alamos use incremental
   auto-vacuum, run in steps of
   :data:`~alamos.retention.space.VACUUM_STEP_PAGES` pages; ``vacuum=True``
   runs one full ``VACUUM`` (it locks the file while it runs; it also switches
   an older file to incremental auto-vacuum).  PostgreSQL: ``vacuum=True`` runs
   a plain ``VACUUM (ANALYZE)`` (no lock on writers); autovacuum does it anyway.

**Crashes.** Killed at any point, the database is consistent: every
transaction is whole, a trace is deleted atomically unless it is larger than
a batch, and such a trace stays in ``alamos_gc_pending`` with ``started = 1``
until its last row is gone.  The next :func:`gc` finishes those first, drops
the undecided rest of the old decision and decides again.

One gc at a time per database (:meth:`~alamos.retention.db.Db.lock`).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from functools import partial
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, MetaData, Table, delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from alamos.core.errors import RetentionError
from alamos.report.sql.reading import reason_of
from alamos.report.sql.schema import gc_pending, holds, logs, spans
from alamos.retention.db import Db, open_db
from alamos.retention.decide import FATES, fates_query
from alamos.retention.deleting import delete_batch, delete_limited
from alamos.retention.hooks import SpikeSource, TimedTable, spike_tables, timed_tables
from alamos.retention.policy import Policy
from alamos.retention.space import checkpoint, return_space, size_of
from alamos.retention.summary import GcSummary, Handler, HandlerCounts, Space

__all__ = [
    "DEFAULT_BATCH_SECONDS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_PAUSE",
    "MIN_ADAPTED_BATCH",
    "Progress",
    "gc",
]

#: Rows deleted per transaction by default.
DEFAULT_BATCH_SIZE = 5_000
#: The pause (s) between two of gc's write transactions by default, per
#: backend (see ``_Run._yield``).
DEFAULT_PAUSE: Mapping[str, float] = MappingProxyType({"sqlite": 0.1, "postgresql": 0.0})

#: How long one of gc's delete transactions should take, per backend: the
#: batch shrinks below ``batch_size`` (to :data:`MIN_ADAPTED_BATCH` at
#: least) when deleting ``batch_size`` rows takes longer, as
#: pt-online-schema-change's ``--chunk-time`` does.  On SQLite an exporter
#: waits for the whole of gc's transaction, so its length is the stall: on a
#: loaded machine the same 5,000 rows take twice as long.  On PostgreSQL the
#: exporter's inserts never wait for gc's row locks; the bound keeps
#: transactions (and what autovacuum must wait for) short.
DEFAULT_BATCH_SECONDS: Mapping[str, float] = MappingProxyType({"sqlite": 0.2, "postgresql": 0.25})
#: The adapted batch never goes below this many rows (nor above ``batch_size``).
MIN_ADAPTED_BATCH = 500

#: ``progress(task, advance, total)``: ``advance`` more units of ``task`` done,
#: out of ``total`` (``None``: unknown).
Progress = Callable[[str, int, "int | None"], None]

T = TypeVar("T")


class Stop(Protocol):
    def is_set(self) -> bool: ...


def gc(
    url: str,
    policy: Policy,
    *,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    vacuum: bool = False,
    now_ns: int | None = None,
    progress: Progress | None = None,
    stop: Stop | None = None,
    pause: float | None = None,
    batch_seconds: float | None = None,
) -> GcSummary:
    """Apply ``policy`` to the database at ``url``; return what was deleted
    and kept.  ``dry_run``: change nothing, return the same summary.
    ``now_ns``: the time the TTLs count back from (default: now).  ``stop``:
    checked between batches (an object with ``is_set()``); when set, gc
    returns early with ``interrupted=True`` and a later gc finishes.
    ``pause``: seconds between two write transactions (default: the
    backend's, :data:`DEFAULT_PAUSE`).  ``batch_seconds``: how long one
    delete transaction should take; batches shrink (to
    :data:`MIN_ADAPTED_BATCH` rows at least) when ``batch_size`` rows take
    longer (default: the backend's, :data:`DEFAULT_BATCH_SECONDS`).

    Raises :class:`~alamos.core.errors.RetentionError` for a missing or empty
    database, one that cannot be reached, or another gc running on it;
    :class:`ValueError` for ``batch_size < 1``.  Nothing is deleted then.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int of at least 1 (got {batch_size!r})")
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be an alamos.retention.Policy, not {policy!r}")
    if pause is not None and not 0 <= pause <= 60:
        raise ValueError(f"pause must be from 0 to 60 seconds (got {pause!r})")
    if batch_seconds is not None and not 0 < batch_seconds <= 3600:
        raise ValueError(f"batch_seconds must be above 0 and at most 3600 (got {batch_seconds!r})")
    db = open_db(url, upgrade=not dry_run)
    try:
        run = _Run(db, policy, dry_run, batch_size, now_ns, progress, stop)
        if pause is not None:
            run.pause = float(pause)
        if batch_seconds is not None:
            run.batch_seconds = float(batch_seconds)
        if dry_run:
            return run.run(vacuum=False)
        with db.lock():
            return run.run(vacuum=vacuum)
    except SQLAlchemyError as exc:
        raise RetentionError(
            f"garbage collection of {db.shown} stopped: {reason_of(exc)}; the database is "
            "consistent, and running gc again finishes the job"
        ) from exc
    finally:
        db.dispose()


class _Run:
    def __init__(
        self,
        db: Db,
        policy: Policy,
        dry_run: bool,
        batch: int,
        now_ns: int | None,
        progress: Progress | None,
        stop: Stop | None,
    ) -> None:
        self.db = db
        self.policy = policy
        self.dry_run = dry_run
        self.batch = batch
        #: Rows per delete transaction now (see :meth:`_adapt`).
        self.limit = batch
        self.batch_seconds = DEFAULT_BATCH_SECONDS[db.dialect]
        self._rate: float | None = None
        self.now = time.time_ns() if now_ns is None else now_ns
        self.progress = progress or (lambda task, advance, total: None)
        self.stop = stop
        self.rows: Counter[str] = Counter()
        self.batches = 0
        self.spared = 0
        self.interrupted = False
        self.pause = DEFAULT_PAUSE[db.dialect]
        self.spikes: list[SpikeSource] = []

    def _stopped(self) -> bool:
        if self.stop is not None and self.stop.is_set():
            self.interrupted = True
        return self.interrupted

    def run(self, vacuum: bool) -> GcSummary:
        before = 0 if self.dry_run else size_of(self.db)  # a dry run reports no Space
        with self.db.read.connect() as conn:
            has_holds = self.db.has_table(conn, holds.name)
            has_pending = self.db.has_table(conn, gc_pending.name)
            timed = timed_tables(conn)
            self.spikes = spike_tables(conn)
        resumed = self._resume(has_pending)
        query = fates_query(
            self.policy,
            self.now,
            with_holds=has_holds,
            with_pending=has_pending,
            spike_sources=self.spikes,
        )
        traces, handlers, doomed = self._decide(query)
        if not self.dry_run:
            # SQLite: while the decision's read was open, no checkpoint could
            # pass its snapshot, so the WAL grew with every exporter commit;
            # copy it back now, in gc's connection, rather than in the
            # exporter's next commit.
            checkpoint(self.db)
            self._delete_traces(resumed + doomed)
        for t in timed:
            if self._stopped():
                break
            self._trim(t)
        if has_holds and not self._stopped():
            self._expire_holds()
        space = None
        if not self.dry_run and not self.interrupted:
            space = self._vacuum(vacuum, before)
        return GcSummary(
            dry_run=self.dry_run,
            now_ns=self.now,
            traces={f: traces.get(f, 0) for f in FATES},
            rows={k: self.rows.get(k, 0) for k in ("spans", "logs", *sorted(self.rows))},
            handlers=tuple(
                sorted(handlers.values(), key=lambda h: (-h.deleted, -h.kept, _key(h.handler)))
            ),
            resumed=resumed,
            spared=self.spared,
            batches=self.batches,
            interrupted=self.interrupted,
            space=space,
        )

    # -- 1. decide -----------------------------------------------------------------

    def _resume(self, has_pending: bool) -> int:
        """Traces an interrupted gc started deleting; the rest of its decision
        is dropped (decided again below).  A dry run counts their rows."""
        if not has_pending:
            return 0
        p = gc_pending.c
        if self.dry_run:
            with self.db.read.connect() as conn:
                started = select(p.trace_id).where(p.started == 1)
                n = conn.execute(select(func.count()).where(p.started == 1)).scalar() or 0
                for tbl, kind in ((spans, "spans"), (logs, "logs")):
                    q = select(func.count()).where(tbl.c.trace_id.in_(started))
                    self.rows[kind] += conn.execute(q).scalar() or 0
                return int(n)
        with self.db.write.begin() as conn:
            conn.execute(delete(gc_pending).where(p.started == 0))
            n = conn.execute(select(func.count()).select_from(gc_pending)).scalar() or 0
        return int(n)

    def _decide(self, query: Any) -> tuple[Counter[str], dict[Handler, HandlerCounts], int]:
        traces: Counter[str] = Counter()
        by_handler: dict[Handler, Counter[str]] = defaultdict(Counter)
        rows_of: dict[Handler, list[int]] = defaultdict(lambda: [0, 0])
        doomed = 0
        pending: list[dict[str, Any]] = []
        self.progress("decide", 0, None)
        with self.db.read.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=self.batch).execute(
                query
            )
            for chunk in result.partitions():
                for trace_id, service, path, name, n_spans, n_logs, fate in chunk:
                    handler: Handler = (service, path, name)
                    traces[fate] += 1
                    by_handler[handler][fate] += 1
                    if fate != "delete":
                        continue
                    doomed += 1
                    n_spans, n_logs = int(n_spans or 0), int(n_logs or 0)
                    rows_of[handler][0] += n_spans
                    rows_of[handler][1] += n_logs
                    if self.dry_run:
                        self.rows["spans"] += n_spans
                        self.rows["logs"] += n_logs
                    else:
                        pending.append(
                            {
                                "trace_id": trace_id,
                                "n_rows": n_spans + n_logs,
                                "started": 0,
                                "decided_ns": self.now,
                            }
                        )
                        if len(pending) >= self.batch:
                            self._add_pending(pending)
                self.progress("decide", len(chunk), None)
        self._add_pending(pending)
        handlers = {
            h: HandlerCounts(h, dict(c), rows_of[h][0], rows_of[h][1])
            for h, c in by_handler.items()
        }
        return traces, handlers, doomed

    def _add_pending(self, pending: list[dict[str, Any]]) -> None:
        if pending:
            with self.db.write.begin() as conn:
                conn.execute(insert(gc_pending), pending)
            pending.clear()

    # -- 2. delete traces ------------------------------------------------------------

    def _delete_traces(self, total: int) -> None:
        self.progress("traces", 0, total)
        while not self._stopped():
            done = self._delete_batch()
            if done is None:
                return
            self._yield()
            self.progress("traces", done, total)

    def _delete_batch(self) -> int | None:
        """One transaction (:func:`~alamos.retention.deleting.delete_batch`):
        the traces finished or spared, None when none is pending."""
        done = self._write(
            lambda conn: delete_batch(conn, self.policy, self.now, self.limit, self.spikes),
            lambda done: 0 if done is None else done.spans + done.logs,
        )
        if done is None:
            return None
        self.batches += 1
        self.spared += done.spared
        self.rows["spans"] += done.spans
        self.rows["logs"] += done.logs
        return done.done

    def _write(self, work: Callable[[Connection], T], deleted: Callable[[T], int]) -> T:
        """``work(conn)`` in one write transaction, timed: its ``deleted(result)``
        rows and its length adapt the next batch (:meth:`_adapt`)."""
        t0 = time.perf_counter()
        with self.db.write.begin() as conn:
            result = work(conn)
        self._adapt(deleted(result), time.perf_counter() - t0)
        return result

    def _adapt(self, rows: int, seconds: float) -> None:
        """The next batch's rows: what this backend deletes in
        :attr:`batch_seconds` at the rate seen so far (an average of the
        last batches' rates, so one slow batch does not halve the next),
        from :data:`MIN_ADAPTED_BATCH` (or ``batch_size`` if smaller) to
        ``batch_size``."""
        if rows <= 0 or seconds <= 0:
            return
        rate = rows / seconds
        self._rate = rate if self._rate is None else (self._rate + rate) / 2
        floor = min(MIN_ADAPTED_BATCH, self.batch)
        self.limit = max(floor, min(self.batch, int(self._rate * self.batch_seconds)))

    # -- 3. trim by age ----------------------------------------------------------------

    def _trim(self, t: TimedTable) -> None:
        ttl = self.policy.ttl_of(t.kind)
        if ttl is None:
            return
        with self.db.read.connect() as conn:
            tbl = Table(t.table, MetaData(), autoload_with=conn)
        where = tbl.c[t.time_column] < self.now - ttl
        if t.traceless:
            where = where & tbl.c.trace_id.is_(None)
        if self.dry_run:
            with self.db.read.connect() as conn:
                n = conn.execute(select(func.count()).select_from(tbl).where(where)).scalar()
            self.rows[t.label] += int(n or 0)
            return
        self.progress(t.label, 0, None)
        while not self._stopped():
            limit = self.limit
            n = self._write(partial(delete_limited, tbl=tbl, where=where, limit=limit), int)
            self.batches += 1
            self.rows[t.label] += n
            if n:
                self._yield()
            self.progress(t.label, n, None)
            if n < limit:
                return

    def _expire_holds(self) -> None:
        expired = holds.c.until_ns <= self.now
        if self.dry_run:
            with self.db.read.connect() as conn:
                n = conn.execute(select(func.count()).select_from(holds).where(expired)).scalar()
            self.rows["holds"] += int(n or 0)
            return
        with self.db.write.begin() as conn:
            self.rows["holds"] += conn.execute(delete(holds).where(expired)).rowcount

    # -- 4. space ----------------------------------------------------------------------

    def _yield(self) -> None:
        """Between two write transactions: on SQLite, checkpoint; then pause
        :attr:`pause` s (:data:`DEFAULT_PAUSE`).  SQLite: a writer waiting for the lock sleeps in
        SQLite's busy handler (steps up to 100 ms) and would find gc's next
        transaction holding it again: measured on 100,000 spans, exporter
        calls of 1.4-1.6 s (several batches in a row) without the pause."""
        checkpoint(self.db)
        if self.pause > 0:
            time.sleep(self.pause)

    def _vacuum(self, full: bool, before: int) -> Space:
        if full:
            self.progress("vacuum", 0, None)

        def step(pages: int) -> bool:
            self._yield()
            self.progress("vacuum", pages, None)
            return not self._stopped()

        return return_space(self.db, full, before, step)


def _key(h: Handler) -> tuple[str, str, str]:
    return (h[0] or "", h[1] or "", h[2] or "")
