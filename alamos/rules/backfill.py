"""Recording rules, backfilled: the same series computed from stored spans.

``alamos rules backfill FILE --db URL --since 7d --step 1m`` (or
:func:`backfill`) evaluates every rule over the spans in ``alamos_spans``
and stores the series in ``alamos_metrics``, as the live rules would have.

What a backfilled sample is
---------------------------
The series are cumulative counters, as live: the value at time ``t`` counts
every stored span that matched and ended before ``t`` (``end_ns < t``), from
the first stored span on, whatever ``--since`` says.  ``--since`` and
``--until`` only choose which samples are written: one at the end of each
``step`` (``t = k * step`` since the epoch, so runs line up) between them,
for each series that changed during that step (a step where nothing happened
writes nothing: the previous sample still holds, as with live snapshots,
which also leave out unchanged series).  ``--until`` (default: now) is
rounded down to a step: a step that is not over yet is not written, since a
later run could not correct it.

So a sample does not depend on when or how often the backfill runs, and
each one has a deterministic row id (from path, metric, labels and time): a
second run stores nothing twice (``INSERT ... ON CONFLICT DO NOTHING``).
The last sample of a series equals the live value of a tree that saw the
same spans (the tests check it, on SQLite and PostgreSQL).

Rows: ``path`` is ``path=`` (``--path``, default ``"rules"``), ``service``
``"alamos-rules"`` and ``node`` ``"backfill"`` (live rows have the tree's
root path, service and node), kinds and labels as live.

How it runs
-----------
One SQL statement per rule, grouped in the database by step, path, name,
level, status and the attributes the rule reads (as ``json_type`` /
``json_extract`` on SQLite, ``jsonb_typeof`` / ``->>`` on PostgreSQL), with
the counts, duration sums and histogram buckets summed there; only the groups
come back.  The cheap matchers (level, status, exact name) are in the
``WHERE``; the globs, regexes and attribute matchers run on the groups, with
the very code the live rules use, as does turning attribute values into
label text (:mod:`alamos.rules.values`).  Every value is a bound parameter.

Differences from live: spans a tree did not store (an exporter's
``min_level``, dropped records) are not there to backfill; past
``max_series``, live keeps the label sets that came first, a backfill the
first by step and then by label text; float sums of a ``sum(attribute)``
agree to rounding (integers exactly).  A live tree counts its own spans
(sum them over ``node``); a backfill counts every stored span.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

import attrs
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Numeric,
    Select,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from alamos.core.level import Level
from alamos.core.records import MetricRecord
from alamos.report.sql.exporter import SQLExporter
from alamos.report.sql.reading import run_read
from alamos.report.sql.schema import spans
from alamos.rules.live import Series, series_values
from alamos.rules.names import OVERFLOW_METRIC
from alamos.rules.rule import Rule, RuleSet
from alamos.rules.values import db_label_value, db_number

__all__ = [
    "BACKFILL_NODE",
    "BACKFILL_SERVICE",
    "DEFAULT_PATH",
    "BackfillResult",
    "RuleBackfill",
    "backfill",
    "compute",
]

DEFAULT_PATH = "rules"
BACKFILL_SERVICE = "alamos-rules"
BACKFILL_NODE = "backfill"
#: Rows written per transaction.
BATCH = 2000


@attrs.frozen(slots=True)
class RuleBackfill:
    """What a backfill computed for one rule."""

    metric: str
    series: int
    """Label sets found (the overflow series included)."""
    samples: int
    """Rows written for it (overflow counter rows included)."""
    overflowed: int
    """Spans that went to the overflow series."""


@attrs.frozen(slots=True)
class BackfillResult:
    since_ns: int
    until_ns: int
    """Rounded down to a step: no sample after it."""
    step_ns: int
    rules: tuple[RuleBackfill, ...]

    @property
    def samples(self) -> int:
        return sum(r.samples for r in self.rules)


def backfill(
    url: str,
    rules: RuleSet,
    *,
    since_ns: int,
    step_ns: int,
    until_ns: int | None = None,
    path: str = DEFAULT_PATH,
) -> BackfillResult:
    """Compute the series of ``rules`` from the spans stored at ``url`` and
    store them in its ``alamos_metrics`` (see the module docstring).  Raises
    :class:`~alamos.core.errors.TraceQueryError` if the database cannot be
    read, and whatever the exporter raises if it cannot be written."""
    records, result = compute(
        url, rules, since_ns=since_ns, step_ns=step_ns, until_ns=until_ns, path=path
    )
    exporter = SQLExporter(url, min_level="bench", name="rules-backfill")
    try:
        for start in range(0, len(records), BATCH):
            exporter.export(records[start : start + BATCH])
    finally:
        exporter.close()
    return result


def compute(
    url: str,
    rules: RuleSet,
    *,
    since_ns: int,
    step_ns: int,
    until_ns: int | None = None,
    path: str = DEFAULT_PATH,
) -> tuple[list[MetricRecord], BackfillResult]:
    """The rows :func:`backfill` writes, without writing them."""
    if isinstance(step_ns, bool) or not isinstance(step_ns, int) or step_ns <= 0:
        raise ValueError(f"invalid step {step_ns!r}: use a positive number of nanoseconds")
    until = time.time_ns() if until_ns is None else until_ns
    until = until // step_ns * step_ns
    if until <= since_ns:
        raise ValueError(
            f"nothing to backfill: --until ({until} ns, rounded down to a step) is not after "
            f"--since ({since_ns} ns); widen the range or shorten the step"
        )

    def work(conn: Connection) -> tuple[list[MetricRecord], list[RuleBackfill]]:
        records: list[MetricRecord] = []
        done = []
        for rule in rules:
            params = {"since": since_ns, "until": until, "step": step_ns}
            rows = conn.execute(_query(rule, conn.dialect.name), params)
            out, summary = _evaluate(rule, conn.dialect.name, rows, step_ns, path)
            records.extend(out)
            done.append(summary)
        return records, done

    records, done = run_read(url, work)
    return records, BackfillResult(since_ns, until, step_ns, tuple(done))


# ---------------------------------------------------------------------------
# The query
# ---------------------------------------------------------------------------


def _attribute_keys(rule: Rule) -> list[str]:
    """The attributes a rule reads as labels or matchers, in a fixed order."""
    keys = [source[len("attr:") :] for _, source in rule.sources if source.startswith("attr:")]
    keys += [k for k, _ in rule.attributes]
    return sorted(set(keys))


def _json_parts(
    dialect: str, key: str
) -> tuple[ColumnElement[Any], ColumnElement[Any], ColumnElement[Any]]:
    """``(type, value, number)`` of attribute ``key``: its JSON type, its
    value as the driver gives it, and its value where it is a number (else NULL)."""
    attrs_col = spans.c.attributes
    typ: ColumnElement[Any]
    value: ColumnElement[Any]
    if dialect == "postgresql":
        # The operators rather than subscripts: jsonb subscripts need PostgreSQL 14.
        doc = type_coerce(attrs_col, JSONB)
        typ = func.jsonb_typeof(doc.op("->")(literal(key, Text)))
        value = doc.op("->>", return_type=Text)(literal(key, Text))
        number = case((typ == "number", cast(value, Numeric)), else_=None)
        return typ, value, number
    json_path = '$."' + key + '"'  # keys with '"' or '\' are refused by the rule check
    typ = func.json_type(attrs_col, literal(json_path))
    value = func.json_extract(attrs_col, literal(json_path))
    number = case((typ.in_(["integer", "real"]), value), else_=None)
    return typ, value, number


def _query(rule: Rule, dialect: str) -> Select[Any]:
    """The groups of spans a rule needs (see the module docstring)."""
    since = bindparam("since", type_=BigInteger)
    until = bindparam("until", type_=BigInteger)
    step = bindparam("step", type_=BigInteger)
    end = spans.c.end_ns
    columns: list[ColumnElement[Any]] = [
        case((end < since, -1), else_=end // step).label("bucket"),
        spans.c.path,
        spans.c.name,
        spans.c.level,
        spans.c.status,
        spans.c.duration_ns,
    ]
    keys = _attribute_keys(rule)
    for i, key in enumerate(keys):
        typ, value, _ = _json_parts(dialect, key)
        columns += [typ.label(f"t{i}"), value.label(f"v{i}")]
    summed = rule.sum_attribute
    if summed is not None:
        columns.append(_json_parts(dialect, summed)[2].label("number"))
    inner = select(*columns).where(end < until)
    if rule.level:
        inner = inner.where(spans.c.level.in_(rule.level))
    if rule.status:
        inner = inner.where(spans.c.status.in_(rule.status))
    if rule.name is not None:
        inner = inner.where(spans.c.name == rule.name)
    sub = inner.subquery()
    groups = [sub.c.bucket, sub.c.path, sub.c.name, sub.c.level, sub.c.status]
    for i in range(len(keys)):
        groups += [sub.c[f"t{i}"], sub.c[f"v{i}"]]
    aggregates: list[ColumnElement[Any]] = [func.count().label("n")]
    if rule.aggregation in ("duration_sum", "duration_histogram"):
        aggregates.append(func.sum(sub.c.duration_ns).label("total"))
    if rule.kind == "histogram":
        for j, bound in enumerate(rule.bucket_ns()):
            le = literal(bound, BigInteger)
            aggregates.append(func.sum(case((sub.c.duration_ns <= le, 1), else_=0)).label(f"b{j}"))
    if summed is not None:
        aggregates.append(func.sum(sub.c.number).label("total"))
    return select(*groups, *aggregates).group_by(*groups).order_by(sub.c.bucket)


# ---------------------------------------------------------------------------
# The groups, into series
# ---------------------------------------------------------------------------


def _evaluate(
    rule: Rule, dialect: str, rows: Iterable[Any], step: int, path: str
) -> tuple[list[MetricRecord], RuleBackfill]:
    match, key_of = rule.compiled()
    keys = _attribute_keys(rule)
    label_names = rule.label_names
    extra = dict(rule.labels)
    nbounds = len(rule.bucket_bounds) if rule.kind == "histogram" else 0
    series: dict[tuple[str, ...], Series] = {}
    overflow: Series | None = None
    overflowed = 0
    out: list[MetricRecord] = []
    for bucket, group in itertools.groupby(rows, key=lambda r: int(r.bucket)):
        entries = []
        for row in group:
            m = row._mapping
            # The attributes as label text already: the rule's label_value keeps text as is.
            attrs = {k: db_label_value(dialect, m[f"t{i}"], m[f"v{i}"]) for i, k in enumerate(keys)}
            fields = (row.path, row.name, row.level, row.status, attrs)
            if match is not None and not match(*fields):
                continue
            key = key_of(*fields)
            entries.append((key, m))
        entries.sort(key=lambda e: e[0])  # a fixed order for the cardinality limit
        touched: set[tuple[str, ...] | None] = set()
        overflow_before = overflowed
        for key, m in entries:
            s = series.get(key)
            target: tuple[str, ...] | None = key
            if s is None:
                if len(series) < rule.max_series:
                    s = series[key] = Series(nbounds)
                else:
                    overflow = overflow or Series(nbounds)
                    s, target = overflow, None
                    overflowed += int(m["n"])
            _add(s, m, nbounds)
            touched.add(target)
        if bucket < 0:  # before --since: counted, not written
            continue
        ts = (bucket + 1) * step
        for target in sorted(touched, key=lambda k: (k is None, k or ())):
            s = overflow if target is None else series[target]
            assert s is not None
            labels = (
                {**extra, "overflow": "true"}
                if target is None
                else {**dict(zip(label_names, target, strict=True)), **extra}
            )
            out.append(_record(path, rule.metric, rule.kind, labels, ts, series_values(rule, s)))
        if overflowed != overflow_before:
            values = (float(overflowed), None, None, None)
            out.append(_record(path, OVERFLOW_METRIC, "counter", {"rule": rule.metric}, ts, values))
    found = len(series) + (overflow is not None)
    return out, RuleBackfill(rule.metric, found, len(out), overflowed)


def _add(s: Series, m: Any, nbounds: int) -> None:
    n = int(m["n"])
    s.count += n
    if "total" in m:
        s.total += db_number(m["total"])
    if s.buckets is not None:
        below = 0
        for j in range(nbounds):
            cumulative = int(m[f"b{j}"] or 0)
            s.buckets[j] += cumulative - below
            below = cumulative
        s.buckets[nbounds] += n - below


def _record(
    path: str,
    name: str,
    kind: str,
    labels: dict[str, str],
    ts: int,
    values: tuple[Any, ...],
) -> MetricRecord:
    value, total, count, buckets = values
    return MetricRecord(
        row_id(path, name, labels, ts),
        ts,
        path,
        name,
        kind,
        MappingProxyType(labels),
        value,
        total,
        count,
        None if buckets is None else MappingProxyType(buckets),
        BACKFILL_SERVICE,
        BACKFILL_NODE,
        Level.PROD,
    )


def row_id(path: str, name: str, labels: dict[str, str], ts: int) -> str:
    """The deterministic id of a backfilled sample (32 hex digits)."""
    text = json.dumps([path, name, sorted(labels.items()), ts], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
