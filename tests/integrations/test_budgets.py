"""Frame budgets, top offenders and spikes (issue 11, part 2), on real SQLite files
and PostgreSQL databases: exact per-frame sums on a constructed workload, the
same numbers as a plain Python walk on random workloads, the budget map (exact,
glob, TOML) and its SQL translation, the merge of top offenders, spikes, and
``alamos budgets``."""

from __future__ import annotations

import fnmatch
import json
import random
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType

import pytest
from click.testing import CliRunner
from sqlalchemy import Text, cast, create_engine, literal, select

import alamos
from alamos.cli import main
from alamos.core.errors import TraceQueryError
from alamos.core.level import Level
from alamos.core.records import SpanRecord
from alamos.report.query import (
    BudgetMap,
    FrameBudget,
    budget_report,
    frame_budgets,
    frames_of,
    merge_offenders,
)
from alamos.report.query.budget_sql import glob_match as _glob_match
from alamos.report.sql import SQLExporter

SECOND = 1_000_000_000
BASE = 1_700_000_000 * SECOND
FRAME = "GET /items/{id}"
T1, T2, T3, T4, T5 = (f"{i:032x}" for i in range(1, 6))
MAP = {
    "db": ["sql.*"],
    "cache": "cache.get",
    "remote": "GET /storage",
    "ui": ["render"],
    "io": ["disk.*"],
}


def span(
    trace: str,
    span_id: str,
    parent: str | None,
    name: str,
    start: int,
    dur: int,
    *,
    service: str = "api",
    node: str = "n1",
    foreign_parent: bool = False,
) -> SpanRecord:
    """A span of ``trace``; ``span_id`` and ``parent`` are made unique across
    traces (see :func:`in_trace`) unless ``foreign_parent`` keeps ``parent``."""
    return SpanRecord(
        trace_id=trace,
        span_id=in_trace(trace, span_id),
        parent_id=parent if parent is None or foreign_parent else in_trace(trace, parent),
        path=service,
        name=name,
        level=Level.PROD,
        start_ns=BASE + start,
        end_ns=BASE + start + dur,
        status="unset",
        error_text=None,
        attributes=MappingProxyType({}),
        events=(),
        service=service,
        node=node,
    )


def sid(n: int) -> str:
    return f"{n:016x}"


def in_trace(trace: str, span_id: str) -> str:
    """``span_id`` with the trace's last four digits in front.  Span ids are
    unique within a trace only, and the tests do not depend on the database
    keeping two traces' spans of the same id apart."""
    return trace[-4:] + span_id[4:]


def export(url: str, records: Iterable[SpanRecord]) -> None:
    exporter = SQLExporter(url)
    try:
        exporter.export(list(records))
    finally:
        exporter.close()


# The constructed workload.  Frame 1 is served by two processes: the api
# (node n1) calls the storage service (node n2), whose spans are exported by
# another exporter.
API_1 = [
    span(T1, sid(1), None, FRAME, 0, 1000),
    span(T1, sid(2), sid(1), "sql.query", 10, 300),
    span(T1, sid(3), sid(2), "sql.fetch", 20, 100),  # db inside db: not counted again
    span(T1, sid(4), sid(3), "sql.decode", 30, 30),  # nor two levels down
    span(T1, sid(5), sid(2), "cpu.parse", 130, 60),
    span(T1, sid(6), sid(5), "sql.prepare", 140, 20),  # db above, with a non-db between
    span(T1, sid(7), sid(1), "cache.get", 320, 50),
    span(T1, sid(8), sid(1), "http.call", 400, 400),
    span(T1, sid(9), sid(1), "render", 820, 150),
    span(T1, sid(10), sid(9), "sql.query", 830, 40),  # db inside ui: counted in both
]
STORAGE_1 = [
    span(T1, sid(11), sid(8), "GET /storage", 420, 350, service="storage", node="n2"),
    span(T1, sid(12), sid(11), "sql.query", 430, 200, service="storage", node="n2"),
    span(T1, sid(13), sid(11), "disk.read", 640, 100, service="storage", node="n2"),
    span(T1, sid(14), sid(11), "sql.query", 745, 50, service="storage", node="n2"),
]
OTHERS = [
    span(T2, sid(1), None, FRAME, 10 * SECOND, 500),
    span(T2, sid(2), sid(1), "sql.query", 10 * SECOND + 10, 100),
    span(T2, sid(3), sid(1), "cache.get", 10 * SECOND + 120, 20),
    span(T2, sid(4), sid(1), "cache.get", 10 * SECOND + 150, 30),
    span(T3, sid(1), None, FRAME, 20 * SECOND, 800),
    span(T3, sid(2), sid(1), "log.flush", 20 * SECOND + 10, 70),
    # Not frames, and not below one: never counted.
    span(T4, sid(1), None, "GET /health", 30 * SECOND, 90),
    span(T4, sid(2), sid(1), "sql.query", 30 * SECOND, 80),
    span(T4, sid(3), sid(99), "sql.query", 30 * SECOND, 70),  # orphan
    # Its parent id is frame 1's span id, but in another trace: not its child.
    span(T5, sid(20), in_trace(T1, sid(1)), "sql.query", 40 * SECOND, 60, foreign_parent=True),
]


@pytest.fixture
def workload(db_url: str) -> str:
    export(db_url, API_1 + OTHERS)
    export(db_url, STORAGE_1)  # the storage process
    return db_url


def lines(rows: Iterable[FrameBudget]) -> list[tuple[str, str, int, int]]:
    return [(r.trace_id, r.budget, r.count, r.duration_ns) for r in rows]


def test_exact_per_frame_sums_with_a_map(workload: str) -> None:
    rows = frame_budgets(workload, FRAME, MAP)
    assert lines(rows) == [
        # db: sql.query 300 (not its sql.fetch, sql.decode, sql.prepare), the
        # storage process' 200 and 50, and 40 inside render.
        (T1, "cache", 1, 50),
        (T1, "db", 4, 300 + 200 + 50 + 40),
        (T1, "io", 1, 100),
        (T1, "remote", 1, 350),
        (T1, "ui", 1, 150),
        (T2, "cache", 2, 50),
        (T2, "db", 1, 100),
    ]
    assert {(r.trace_id, r.frame_ns, r.start_ns - BASE) for r in rows} == {
        (T1, 1000, 0),
        (T2, 500, 10 * SECOND),
    }
    assert rows[1].share == pytest.approx(0.59)


def test_exact_per_frame_sums_without_a_map(workload: str) -> None:
    got = lines(frame_budgets(workload, FRAME))
    assert got == [
        (T1, "GET /storage", 1, 350),
        (T1, "cache.get", 1, 50),
        (T1, "cpu.parse", 1, 60),
        (T1, "disk.read", 1, 100),
        (T1, "http.call", 1, 400),
        (T1, "render", 1, 150),
        (T1, "sql.decode", 1, 30),
        (T1, "sql.fetch", 1, 100),
        (T1, "sql.prepare", 1, 20),
        (T1, "sql.query", 4, 590),
        (T2, "cache.get", 2, 50),
        (T2, "sql.query", 1, 100),
        (T3, "log.flush", 1, 70),
    ]


def test_across_frames_and_top_offenders(workload: str) -> None:
    report = budget_report(workload, FRAME, MAP, top=1)
    f = report.frame
    assert (f.name, f.frames, f.total_ns, f.min_ns, f.max_ns, f.spikes) == (
        FRAME,
        3,
        2300,
        500,
        1000,
        0,
    )
    stats = [(b.budget, b.frames, b.count, b.total_ns, b.min_ns, b.max_ns) for b in report.budgets]
    assert stats == [  # largest total first; ties by name
        ("db", 2, 5, 690, 100, 590),
        ("remote", 1, 1, 350, 350, 350),
        ("ui", 1, 1, 150, 150, 150),
        ("cache", 2, 3, 100, 50, 50),
        ("io", 1, 1, 100, 100, 100),
    ]
    db = report.budgets[0]
    assert db.mean_ns == 345 and db.share == pytest.approx(690 / 2300)
    # One offender per budget; the cache tie (50 and 50) goes to the earlier frame.
    assert [(o.budget, o.trace_id, o.duration_ns) for o in report.offenders] == [
        ("cache", T1, 50),
        ("db", T1, 590),
        ("io", T1, 100),
        ("remote", T1, 350),
        ("ui", T1, 150),
    ]
    full = budget_report(workload, FRAME, MAP)
    assert full.top == 100
    assert [(o.trace_id, o.duration_ns) for o in full.offenders_of("db")] == [
        (T1, 590),
        (T2, 100),
    ]
    # Frames since frame 2 started.
    later = budget_report(workload, FRAME, MAP, since_ns=BASE + 10 * SECOND)
    assert (later.frame.frames, later.frame.total_ns) == (2, 1300)
    assert [(b.budget, b.total_ns) for b in later.budgets] == [("db", 100), ("cache", 50)]
    assert later.budgets[0].share == pytest.approx(100 / 1300)
    until = frame_budgets(workload, FRAME, MAP, until_ns=BASE + 10 * SECOND)
    assert {r.trace_id for r in until} == {T1}


def test_no_frames(workload: str) -> None:
    report = budget_report(workload, "no such span", MAP)
    assert (report.frame.frames, report.frame.total_ns, report.frame.min_ns) == (0, 0, None)
    assert report.budgets == () and report.offenders == ()
    assert frame_budgets(workload, "no such span") == []
    assert frames_of(workload, "no such span") == []


# ---------------------------------------------------------------------------
# The same numbers as a walk in Python, on random workloads
# ---------------------------------------------------------------------------

NAMES = ["sql.query", "sql.fetch", "cache.get", "render", "x|y", "100%", FRAME, "misc"]


def random_workload(seed: int) -> list[SpanRecord]:
    rnd = random.Random(seed)
    out: list[SpanRecord] = []
    for t in range(40):
        trace = f"{t + 100:032x}"
        spans = [span(trace, sid(1), None, FRAME if t % 5 else "other", t * SECOND, 10_000)]
        for n in range(2, rnd.randint(2, 30)):
            parent = rnd.choice(spans)
            spans.append(
                span(
                    trace,
                    sid(n),
                    parent.span_id,
                    rnd.choice(NAMES),
                    parent.start_ns - BASE + 1,
                    rnd.randint(1, 1000),
                    node=rnd.choice(["n1", "n2", "n3"]),
                )
            )
        out.extend(spans)
    return out


def reference(
    spans: list[SpanRecord], bmap: BudgetMap | None
) -> list[tuple[str, str, str, int, int]]:
    """Per frame and budget, walking the tree in Python."""
    children: dict[tuple[str, str], list[SpanRecord]] = {}
    for s in spans:
        if s.parent_id is not None:
            children.setdefault((s.trace_id, s.parent_id), []).append(s)
    sums: dict[tuple[str, str, str], list[int]] = {}
    frames = sorted(
        (s for s in spans if s.name == FRAME), key=lambda s: (s.start_ns, s.trace_id, s.span_id)
    )
    for frame in frames:
        stack = [(c, frozenset[str]()) for c in children.get((frame.trace_id, frame.span_id), [])]
        while stack:
            s, above = stack.pop()
            budget = s.name if bmap is None else bmap.budget_of(s.name)
            if budget is not None and budget not in above:
                acc = sums.setdefault((frame.trace_id, frame.span_id, budget), [0, 0])
                acc[0] += 1
                acc[1] += s.end_ns - s.start_ns
            below = above if budget is None else above | {budget}
            stack.extend((c, below) for c in children.get((s.trace_id, s.span_id), []))
    order = {(f.trace_id, f.span_id): i for i, f in enumerate(frames)}
    return sorted(
        ((t, sp, b, n, d) for (t, sp, b), (n, d) in sums.items()),
        key=lambda r: (order[(r[0], r[1])], r[2]),
    )


@pytest.mark.parametrize(
    "bmap",
    [
        None,
        BudgetMap.from_mapping({"db": ["sql.*"], "odd": ["x|y", "100%"], "frame": [FRAME]}),
        BudgetMap.from_mapping({"db": "sql.query", "all": "*"}, unmatched="rest"),
    ],
    ids=["no-map", "map", "catch-all"],
)
def test_matches_a_python_walk(db_url: str, bmap: BudgetMap | None) -> None:
    spans = random_workload(7)
    export(db_url, spans)
    got = [
        (r.trace_id, r.span_id, r.budget, r.count, r.duration_ns)
        for r in frame_budgets(db_url, FRAME, bmap)
    ]
    want = reference(spans, bmap)
    assert len(want) > 50
    assert got == want


def test_deep_chains_and_a_cycle_through_the_frame(db_url: str) -> None:
    chain = [span(T1, sid(1), None, FRAME, 0, 10_000)]
    for i in range(2, 1002):  # 1,000 levels, alternating a and b
        chain.append(span(T1, sid(i), sid(i - 1), "ab"[i % 2], i, 1000 - i // 2))
    # Corrupt rows: frame 2's parent is its own child.
    cycle = [
        span(T2, sid(1), sid(2), FRAME, SECOND, 100),
        span(T2, sid(2), sid(1), "loop", SECOND, 10),
    ]
    export(db_url, chain + cycle)
    assert lines(frame_budgets(db_url, FRAME)) == [
        (T1, "a", 1, 1000 - 1),  # the outermost a (depth 1) and b (depth 2) only
        (T1, "b", 1, 1000 - 1),
        (T2, "loop", 1, 10),
    ]


def test_only_the_frames_subtree_counts(db_url: str) -> None:
    """What a shortcut through the frame's trace (every span of the trace
    with the same trace id) would get wrong: a frame that is not the trace's
    root, with spans of its trace beside and above it; and a root frame whose
    trace also holds orphans (their parent never stored), a second root and a
    corrupt cycle that does not pass through the frame."""
    records = [
        # T1: a job whose inner step is the frame.
        span(T1, sid(1), None, "job", 0, 10_000),
        span(T1, sid(2), sid(1), "sql.query", 10, 500),  # beside the frame
        span(T1, sid(3), sid(1), FRAME, 600, 2000),
        span(T1, sid(4), sid(3), "sql.query", 610, 300),
        span(T1, sid(5), sid(4), "sql.query", 620, 100),  # db inside db
        span(T1, sid(6), sid(3), "cache.get", 950, 40),
        span(T1, sid(7), sid(1), "cache.get", 3000, 70),  # after the frame, beside it
        # T2: a root frame, with what is in its trace but not below it.
        span(T2, sid(1), None, FRAME, SECOND, 1000),
        span(T2, sid(2), sid(1), "sql.query", SECOND + 10, 200),
        span(T2, sid(3), sid(99), "sql.query", SECOND + 20, 900),  # orphan
        span(T2, sid(4), sid(3), "cache.get", SECOND + 30, 90),  # below the orphan
        span(T2, sid(5), None, "other root", SECOND, 800),
        span(T2, sid(6), sid(5), "cache.get", SECOND, 80),
        span(T2, sid(7), sid(8), "cache.get", SECOND, 7),  # a cycle beside the frame
        span(T2, sid(8), sid(7), "sql.query", SECOND, 9),
    ]
    export(db_url, records)
    want = [
        (T1, "cache", 1, 40),
        (T1, "db", 1, 300),
        (T2, "db", 1, 200),
    ]
    assert lines(frame_budgets(db_url, FRAME, MAP)) == want
    assert [
        (r.trace_id, r.span_id, r.budget, r.count, r.duration_ns)
        for r in frame_budgets(db_url, FRAME, BudgetMap.from_mapping(MAP))
    ] == [(t, sp, b, n, d) for t, sp, b, n, d in reference(records, BudgetMap.from_mapping(MAP))]
    report = budget_report(db_url, FRAME, MAP)
    assert [(b.budget, b.frames, b.count, b.total_ns) for b in report.budgets] == [
        ("db", 2, 2, 500),
        ("cache", 1, 1, 40),
    ]
    assert (report.frame.frames, report.frame.total_ns) == (2, 3000)


# ---------------------------------------------------------------------------
# Spikes
# ---------------------------------------------------------------------------


def spike_workload() -> list[SpanRecord]:
    # Frame 0 is slow but has no history: not a spike.  Frames 1..32 take 100;
    # frame 32's window still holds frame 0 (mean 128): not a spike.
    durations = [1000] + [100] * 32 + [131, 130, 200, 100]
    out = []
    for i, dur in enumerate(durations):
        trace = f"{i + 1:032x}"
        out.append(span(trace, sid(1), None, "tick", i * SECOND, dur))
        if i == 35:
            out.append(span(trace, sid(2), sid(1), "sql.query", i * SECOND, 150))
        elif i == 5:
            out.append(span(trace, sid(2), sid(1), "sql.query", i * SECOND, 50))
    return out


def test_spikes(db_url: str) -> None:
    export(db_url, spike_workload())
    rows = frames_of(db_url, "tick")
    assert len(rows) == 37
    assert [i for i, r in enumerate(rows) if r.spike] == [33, 35]
    assert rows[0].previous_mean_ns is None
    assert rows[32].previous_mean_ns == pytest.approx(128.125)
    assert rows[33].previous_mean_ns == pytest.approx(100)  # 131 > 1.3 x 100
    assert rows[34].previous_mean_ns == pytest.approx(100 + 31 / 32)  # 130 < 1.3 x 100.97
    report = budget_report(db_url, "tick", {"db": "sql.*"})
    assert report.frame.spikes == 2
    assert [(o.trace_id, o.spike) for o in report.offenders] == [
        (f"{36:032x}", True),
        (f"{6:032x}", False),
    ]
    # The window looks before --since: frame 33 is still a spike.
    since = frames_of(db_url, "tick", since_ns=BASE + 33 * SECOND, spikes_only=True)
    assert [r.trace_id for r in since] == [f"{34:032x}", f"{36:032x}"]
    assert [r.trace_id for r in frames_of(db_url, "tick", spikes_only=True, limit=1)] == [
        f"{36:032x}"
    ]
    # Another rule: a window of 2, a factor of 5.
    custom = frames_of(db_url, "tick", spike_window=2, spike_factor=5)
    assert [i for i, r in enumerate(custom) if r.spike] == []
    custom = frames_of(db_url, "tick", spike_window=2, spike_factor=1.2)
    assert [i for i, r in enumerate(custom) if r.spike] == [33, 35]


# ---------------------------------------------------------------------------
# Merging top offenders from separate runs or nodes
# ---------------------------------------------------------------------------


def test_merge_equals_top_of_the_union(db_url: str, tmp_path: Path) -> None:
    spans = random_workload(11)
    traces = sorted({s.trace_id for s in spans})
    node_a = [s for s in spans if traces.index(s.trace_id) % 2 == 0]
    node_b = [s for s in spans if traces.index(s.trace_id) % 2 == 1]
    url_a, url_b = (f"sqlite:///{tmp_path / n}" for n in ("a.db", "b.db"))
    export(url_a, node_a)
    export(url_b, node_b)
    export(db_url, spans)
    # A run's spike flags come from the frames it saw, so they are left out
    # here (a factor no frame reaches): the rest must be the same.
    never = 1e9
    for top in (1, 3, 100):
        a = budget_report(url_a, FRAME, top=top, spike_factor=never).offenders
        b = budget_report(url_b, FRAME, top=top, spike_factor=never).offenders
        both = budget_report(db_url, FRAME, top=top, spike_factor=never).offenders
        assert merge_offenders([a, b], top=top) == both
        assert merge_offenders([b, a, a], top=top) == both  # order and repeats do not matter
    full = budget_report(db_url, FRAME).offenders
    assert merge_offenders([full]) == full
    assert merge_offenders([], top=5) == ()
    with pytest.raises(ValueError, match="top"):
        merge_offenders([full], top=0)


# ---------------------------------------------------------------------------
# The budget map
# ---------------------------------------------------------------------------


def test_budget_map_rules() -> None:
    bmap = BudgetMap.from_mapping(
        {"db": ["sql.*", "query"], "reads": ["sql.read*", "*.get"], "exact": "sql.special"},
        unmatched="other",
    )
    assert bmap.budget_of("query") == "db"
    assert bmap.budget_of("sql.x") == "db"
    assert bmap.budget_of("sql.read_one") == "db"  # the first glob in the map's order wins
    assert bmap.budget_of("sql.special") == "exact"  # an exact name wins over every glob
    assert bmap.budget_of("cache.get") == "reads"
    assert bmap.budget_of("SQL.x") == "other"  # case-sensitive
    assert bmap.budgets == ("db", "exact", "reads", "other")
    assert BudgetMap.from_mapping({"db": "sql.*"}).budget_of("x") is None


def test_budget_map_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "budgets.toml"
    path.write_text(
        'unmatched = "other"\n[budgets]\ndb = ["sql.*", "query"]\nrender = "render"\n',
        encoding="utf-8",
    )
    bmap = BudgetMap.from_toml(path)
    assert bmap == BudgetMap.from_mapping(
        {"db": ["sql.*", "query"], "render": "render"}, unmatched="other"
    )
    assert BudgetMap.from_toml('[budgets]\n"a b" = ["x[0-9]"]\n').budget_of("x7") == "a b"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[budgets\n", "is not valid TOML"),
        ("db = 1\n", "unknown key(s) 'db'"),
        ("[budgets]\n", "has no [budgets] table"),
        ("budgets = 3\n", "has no [budgets] table"),
        ('[budgets]\ndb = ["sql.*"]\ncache = ["sql.*"]\n', "is in two budgets: 'db' and 'cache'"),
        ("[budgets]\ndb = []\n", "budget 'db' has no patterns"),
        ("[budgets]\ndb = [1]\n", "must be a string, not int"),
        ('[budgets]\ndb = [""]\n', "is empty"),
        ('[budgets]\ndb = ["a\\u0000"]\n', "holds NUL"),
        ("[budgets]\ndb = {x = 1}\n", "must be a string or a list of strings"),
        ('unmatched = 3\n[budgets]\ndb = "x"\n', "the unmatched budget must be a string"),
    ],
)
def test_bad_budget_maps(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="budget map") as info:
        BudgetMap.from_toml(text)
    assert message in str(info.value)


def test_bad_arguments(workload: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read budget map"):
        BudgetMap.from_toml(tmp_path / "missing.toml")
    with pytest.raises(ValueError, match=r"at most 1000 patterns"):
        BudgetMap.from_mapping({"db": [f"n{i}" for i in range(1001)]})
    with pytest.raises(ValueError, match="top"):
        budget_report(workload, FRAME, top=0)
    with pytest.raises(ValueError, match="spike factor"):
        budget_report(workload, FRAME, spike_factor=float("nan"))
    with pytest.raises(ValueError, match="spike window"):
        frames_of(workload, FRAME, spike_window=0)
    with pytest.raises(ValueError, match="frame"):
        frame_budgets(workload, "")
    with pytest.raises(TraceQueryError, match="no SQLite database"):
        budget_report(f"sqlite:///{tmp_path / 'nope.db'}", FRAME)


# The globs of a map run in the database (GLOB on SQLite, a regex on
# PostgreSQL): each must match exactly what fnmatch.fnmatchcase matches,
# including fnmatch's corner cases and characters special to GLOB, to regexes
# or to LIKE.
HOSTILE_PATTERNS = [
    "[]", "[!]", "[]]", "[!]]", "[^]", "[!^]", "[^a]", "[a-]", "[-a]", "[!-a]", "[z-a]",
    "[!z-a]", "[a-c-e]", "[!b-a-c]", "[\\]", "[]-a]", "[!]-a]", "[[]", "[", "*[", "a[b",
    "[*]", "[?]", "[-]", "[]-]", "[^-]", "[-^]", "[]^]", "[^^]", "[!^-]", "[]-^]", "[ -~]",
    "[!a-z]*", "%", "_", "a_c", "a%c", ".*", "(a|b)", "a+", "\\d", "$a^", "*.*", "?*?",
]  # fmt: skip
HOSTILE_NAMES = [
    "", "a", "[", "]", "^", "-", "!", "\\", "*", "?", "%", "_", "|", ".", "ab", "abc",
    "a_c", "a%c", "aXc", "a\nb", "\n", "é", "É", "\U0001f600", "(a|b)", "a+", "\\d", "$a^",
    "x.y", "A", "z", "~", " ",
]  # fmt: skip


def test_globs_in_sql_match_fnmatch(db_url: str) -> None:
    rnd = random.Random(3)
    alphabet = "ab-]^![*?\\|%_z.\n\u00e9\U0001f600"
    patterns = list(HOSTILE_PATTERNS)
    patterns += [
        "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 6))) for _ in range(150)
    ]
    names = list(HOSTILE_NAMES)
    names += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 5))) for _ in range(60)]
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            dialect = conn.dialect.name
            for pattern in patterns:
                got = conn.execute(
                    select(*[_glob_match(cast(literal(n), Text), pattern, dialect) for n in names])
                ).one()
                want = [fnmatch.fnmatchcase(n, pattern) for n in names]
                assert [bool(g) for g in got] == want, pattern
    finally:
        engine.dispose()


def test_globs_on_stored_spans(db_url: str) -> None:
    names = ["sql.query", "SQL.query", "sql_query", "sqlXquery", "cache[1]", "cache[2]", "a%b"]
    frame = [span(T1, sid(1), None, FRAME, 0, 10_000)]
    frame += [span(T1, sid(i + 2), sid(1), n, i, 10 * (i + 1)) for i, n in enumerate(names)]
    export(db_url, frame)
    bmap = BudgetMap.from_mapping(
        {"db": "sql.query", "dbish": "sql?query", "cache": "cache[[]1]", "pct": "a%b", "rest": "*"}
    )
    assert lines(frame_budgets(db_url, FRAME, bmap)) == [
        (T1, "cache", 1, 50),
        (T1, "db", 1, 10),
        (T1, "dbish", 2, 30 + 40),
        (T1, "pct", 1, 70),
        (T1, "rest", 2, 20 + 60),
    ]


# ---------------------------------------------------------------------------
# Spans recorded by alamos itself
# ---------------------------------------------------------------------------


def test_spans_recorded_by_alamos(db_url: str, tmp_path: Path) -> None:
    with alamos.new("game", db=db_url, console=False, spool_dir=tmp_path / "sp") as root:
        physics = root.sub("physics")
        for i in range(40):
            with root.trace.prod("tick"):
                with physics.trace.prod("physics.step"), physics.trace.prod("physics.collide"):
                    pass
                for _ in range(i % 3):
                    with root.trace.prod("render"):
                        pass
    bmap = BudgetMap.from_mapping({"physics": "physics.*", "render": "render"})
    report = budget_report(db_url, "tick", bmap, top=5)
    assert report.frame.frames == 40
    stats = {b.budget: (b.frames, b.count) for b in report.budgets}
    assert stats == {"physics": (40, 40), "render": (26, 13 + 2 * 13)}
    assert len(report.offenders_of("physics")) == 5
    rows = frame_budgets(db_url, "tick", bmap)
    assert sum(r.duration_ns for r in rows if r.budget == "render") == next(
        b.total_ns for b in report.budgets if b.budget == "render"
    )
    assert all(0 < r.duration_ns <= r.frame_ns for r in rows)


# ---------------------------------------------------------------------------
# alamos budgets
# ---------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str, str]:
    # No colour even where the environment asks for it: the output is checked.
    env = {"FORCE_COLOR": None, "TTY_COMPATIBLE": None, "NO_COLOR": "1"}
    result = CliRunner().invoke(main, list(args), env=env)
    assert not (result.exception and not isinstance(result.exception, SystemExit)), result.exc_info
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def budgets_file(tmp_path: Path) -> Path:
    path = tmp_path / "budgets.toml"
    path.write_text(
        '[budgets]\ndb = ["sql.*"]\ncache = "cache.get"\nremote = "GET /storage"\n'
        'ui = ["render"]\nio = ["disk.*"]\n',
        encoding="utf-8",
    )
    return path


def test_cli_tables(workload: str, budgets_file: Path) -> None:
    code, out, err = run(
        "budgets", "--db", workload, "--frame", FRAME, "--budgets", str(budgets_file)
    )
    assert code == 0, out + err
    assert f"frame {FRAME}: 3 frames, 0.002 ms in all" in out
    budget_lines = [line for line in out.splitlines() if line.startswith("│ ")]
    db_line = next(line for line in budget_lines if line.startswith("│ db "))
    assert [c.strip() for c in db_line.strip("│").split("│")] == [
        "db", "2", "5", "0.001", "0.000", "0.000", "0.001", "30.0%",
    ]  # fmt: skip
    assert "Top offenders: db" in out and "Top offenders: io" in out
    assert T1 in out and T2 in out
    assert "Spikes" not in out  # none


def test_cli_json(workload: str, budgets_file: Path) -> None:
    code, out, _ = run(
        "budgets", "--db", workload, "--frame", FRAME, "--budgets", str(budgets_file),
        "--top", "1", "--json",
    )  # fmt: skip
    assert code == 0, out
    doc = json.loads(out)
    assert doc["frame"] == {
        "name": FRAME, "frames": 3, "total_ns": 2300, "min_ns": 500, "max_ns": 1000,
        "spikes": 0, "mean_ns": 2300 / 3,
    }  # fmt: skip
    assert doc["budgets"][0] == {
        "budget": "db", "frames": 2, "count": 5, "total_ns": 690, "min_ns": 100,
        "max_ns": 590, "share": 0.3, "mean_ns": 345.0,
    }  # fmt: skip
    assert doc["top"] == 1
    assert [(o["budget"], o["trace_id"], o["duration_ns"]) for o in doc["offenders"]] == [
        ("cache", T1, 50), ("db", T1, 590), ("io", T1, 100), ("remote", T1, 350), ("ui", T1, 150),
    ]  # fmt: skip
    assert doc["spikes"] == []


def test_cli_spikes_and_since(db_url: str) -> None:
    export(db_url, spike_workload())
    code, out, _ = run("budgets", "--db", db_url, "--frame", "tick", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["frame"]["spikes"] == 2
    assert [s["trace_id"] for s in doc["spikes"]] == [f"{34:032x}", f"{36:032x}"]
    assert doc["offenders"][0]["spike"] is True
    code, out, _ = run("budgets", "--db", db_url, "--frame", "tick")
    assert code == 0
    assert "2 spikes" in out and "Spikes (the last 2)" in out and "1.31x" in out
    assert out.count("spike") >= 3
    # Everything is older than a minute: no frames.
    code, out, err = run("budgets", "--db", db_url, "--frame", "tick", "--since", "1m")
    assert code == 0 and out == "" and "no frames" in err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--frame", FRAME, "--since", "10 parsecs"], 2, "invalid duration '10 parsecs'"),
        (["--frame", FRAME, "--top", "0"], 2, "--top"),
        (["--frame", ""], 2, "a frame is a span name"),
        ([], 2, "Missing option '--frame'"),
        (["--frame", FRAME, "--spike-factor", "0"], 2, "--spike-factor"),
        (["--frame", FRAME, "--budgets", "/nonexistent/b.toml"], 2, "cannot read budget map"),
    ],
)
def test_cli_bad_arguments(workload: str, args: list[str], code: int, message: str) -> None:
    got, out, err = run("budgets", "--db", workload, *args)
    assert got == code, out + err
    assert message in err and "Traceback" not in out + err


def test_cli_bad_toml(workload: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    for text, message in [
        ("[budgets\n", "is not valid TOML"),
        ('[budgets]\ndb = ["sql.*"]\ncache = ["sql.*"]\n', "is in two budgets"),
        ("\xff\xfe", "not valid TOML"),
    ]:
        bad.write_text(text, encoding="utf-8")
        code, out, err = run("budgets", "--db", workload, "--frame", FRAME, "--budgets", str(bad))
        assert code == 2, out + err
        assert "Invalid value for --budgets" in err and message in err
        assert "Traceback" not in out + err
    bad.write_bytes(b"\xff\xfe[budgets]")
    code, _, err = run("budgets", "--db", workload, "--frame", FRAME, "--budgets", str(bad))
    assert code == 2 and "cannot read budget map" in err


def test_cli_unreadable_databases(tmp_path: Path) -> None:
    code, _, err = run("budgets", "--db", f"sqlite:///{tmp_path / 'nope.db'}", "--frame", FRAME)
    assert code == 1 and "no SQLite database at" in err
    assert not (tmp_path / "nope.db").exists()
    code, _, err = run("budgets", "--db", "postgresql://me:s3cret@127.0.0.1:1/x", "--frame", FRAME)
    assert code == 1 and "cannot read postgresql+psycopg://me:***@127.0.0.1:1/x" in err
    assert "s3cret" not in err
    code, _, err = run("budgets", "--db", "mysql://host/x", "--frame", FRAME)
    assert code == 1 and "not supported" in err
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    code, _, err = run("budgets", "--db", f"sqlite:///{empty}", "--frame", FRAME)
    assert code == 1 and "no alamos tables" in err


def test_cli_escapes_names_from_the_database(sqlite_url: str) -> None:
    evil = "[bold]x[/bold]\x1b[2J\u202e"
    export(
        sqlite_url,
        [span(T1, sid(1), None, FRAME, 0, 100), span(T1, sid(2), sid(1), evil, 1, 10)],
    )
    code, out, _ = run("budgets", "--db", sqlite_url, "--frame", FRAME)
    assert code == 0, out
    assert not any(ch in out for ch in "\x1b\u202e"), repr(out)
    assert "[bold]x[/bold]\\x1b[2J\\u202e" in out  # shown as text, not as markup
