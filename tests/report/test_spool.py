"""The record codec and the on-disk spool, with real files and real processes."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from alamos.core.level import Level
from alamos.core.records import (
    EventRecord,
    ExperimentRecord,
    LogRecord,
    MetricRecord,
    Record,
    ReportRecord,
    SpanRecord,
)
from alamos.report.pipeline.codec import decode, dumps_batch, encode, loads_batch
from alamos.report.pipeline.spool import Spool

ROOT = Path(__file__).resolve().parents[2]
HANG = 60.0  # generous "did not hang" guard for subprocesses


def logs(prefix: str, n: int = 3) -> list[Record]:
    return [
        LogRecord(
            id=f"{prefix}-{i}",
            ts_ns=1_700_000_000_000_000_000 + i,
            path="root/job",
            level="INFO",
            message=f"message {i} é\n",
            trace_id=None,
            span_id=None,
            attributes={"i": i},
            location=None,
            service="svc",
            node="node-1",
        )
        for i in range(n)
    ]


def all_kinds() -> list[Record]:
    span = SpanRecord(
        trace_id="a" * 32,
        span_id="b" * 16,
        parent_id=None,
        path="root/db",
        name="query",
        level=Level.DEBUG,
        start_ns=10,
        end_ns=2**70,
        status="error",
        error_text='boom\n"quoted"',
        attributes={"s": "x", "b": True, "i": -3, "f": 1.5, "t": (1, "two", (3.0, False))},
        events=(
            EventRecord("flushed", 11, {"pages": 3}),
            EventRecord("tupled", 12, {"xs": ("a", "b")}),
        ),
        service="svc",
        node="node-1",
        session_id="sess",
        location="mod.py:12",
    )
    log = LogRecord(
        id="log-1",
        ts_ns=5,
        path="root",
        level="WARNING",
        message="\udcff lone surrogate and \u2603",
        trace_id="a" * 32,
        span_id="b" * 16,
        attributes={},
        location=None,
        service="svc",
        node="n",
        session_id=None,
    )
    metric = MetricRecord(
        id="m-1",
        ts_ns=6,
        path="root",
        name="latency",
        kind="histogram",
        labels={"route": "/x"},
        value=4.5,
        sum=4.5,
        count=3.0,
        buckets={"0.1": 1.0, "+Inf": 3.0},
        service="svc",
        node="n",
        level=Level.BENCH,
    )
    gauge = MetricRecord(
        id="m-2",
        ts_ns=7,
        path="root",
        name="g",
        kind="gauge",
        labels={},
        value=None,
        sum=None,
        count=None,
        buckets=None,
        service="svc",
        node="n",
    )
    report = ReportRecord(
        id="r-1",
        ts_ns=8,
        path="root",
        key="pool",
        report={"list": [1, [2]], "tuple": (1, (2, 3)), "nested": {"k": None}, "tag": {"x": 1}},
        service="svc",
        node="n",
        level=Level.DEBUG,
    )
    experiment = ExperimentRecord(
        path="root/job", parent_path="root", key="job", service="svc", node="n", created_ns=9
    )
    return [span, log, metric, gauge, report, experiment]


# -- codec ----------------------------------------------------------------------------


def test_codec_round_trips_every_record_kind() -> None:
    records = all_kinds()
    for record in records:
        data = encode(record)
        assert isinstance(data["t"], str)
        assert decode(data) == record
    line = dumps_batch(records)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    line.decode("ascii")  # pure ASCII: newlines and non-ASCII text are escaped
    back = loads_batch(line)
    assert back == records
    span = back[0]
    assert isinstance(span, SpanRecord)
    assert isinstance(span.attributes["t"], tuple) and isinstance(span.attributes["t"][2], tuple)
    assert isinstance(span.events[1].attributes["xs"], tuple)
    assert span.level is Level.DEBUG
    assert isinstance(back[4], ReportRecord)
    assert back[4].report["tuple"] == (1, (2, 3)) and back[4].report["list"] == [1, [2]]


def test_codec_keeps_nan_and_infinities() -> None:
    record = MetricRecord(
        id="m",
        ts_ns=1,
        path="p",
        name="n",
        kind="histogram",
        labels={},
        value=math.nan,
        sum=math.inf,
        count=-math.inf,
        buckets={"+Inf": math.inf, "nan": math.nan},
        service="s",
        node="n",
    )
    (back,) = loads_batch(dumps_batch([record]))
    assert isinstance(back, MetricRecord)
    assert back.value is not None and math.isnan(back.value)
    assert back.sum == math.inf and back.count == -math.inf
    assert back.buckets is not None
    assert back.buckets["+Inf"] == math.inf and math.isnan(back.buckets["nan"])


@pytest.mark.parametrize("line", [b"", b"garbage\n", b'[{"t":"span"}]\n', b'{"t":1}\n', b"[1]\n"])
def test_loads_batch_rejects_malformed_lines(line: bytes) -> None:
    with pytest.raises(ValueError):
        loads_batch(line)


# -- spool ----------------------------------------------------------------------------


def spool_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("spool-*.jsonl"))


def collect(spool: Spool) -> tuple[list[list[Record]], int]:
    got: list[list[Record]] = []
    result = spool.replay(got.append)
    assert result.error is None
    return got, result.torn_lines


def test_append_then_replay_deletes_the_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    batches = [logs("a"), all_kinds(), logs("b", 1)]
    for batch in batches:
        spool.append(batch)
    spool.append([])  # nothing to write
    (path,) = spool_files(tmp_path / "spool")
    assert re.fullmatch(rf"spool-{os.getpid()}-[0-9a-f]+\.jsonl", path.name)
    assert spool.pending() > 0
    assert spool.stats.batches_spooled == 3 and spool.stats.records_spooled == 10

    got, torn = collect(spool)
    assert got == batches and torn == 0
    assert spool_files(tmp_path / "spool") == [] and spool.pending() == 0
    assert spool.stats.batches_replayed == 3 and spool.stats.records_replayed == 10

    spool.append(logs("c"))  # a new file after the rotation
    assert collect(spool)[0] == [logs("c")]
    spool.close()
    spool.close()


def test_failed_consume_keeps_the_rest_and_resumes_there(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    batches = [logs(f"b{i}") for i in range(6)]
    for batch in batches:
        spool.append(batch)
    seen: list[list[Record]] = []

    def flaky(batch: list[Record]) -> None:
        if len(seen) == 2:
            raise ConnectionError("database down")
        seen.append(batch)

    result = spool.replay(flaky)
    assert isinstance(result.error, ConnectionError) and not result.complete
    assert result.batches == 2 and len(spool_files(tmp_path)) == 1
    # A new Spool (e.g. the next process) resumes after the consumed batches.
    got, _ = collect(Spool(tmp_path))
    assert seen + got == batches
    assert spool_files(tmp_path) == []


def test_torn_last_line_is_skipped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(logs("a"))
    spool.append(logs("b"))
    (path,) = spool_files(tmp_path)
    spool.close()
    half = dumps_batch(logs("c"))
    with path.open("ab") as f:
        f.write(half[: len(half) // 2])
    got, torn = collect(Spool(tmp_path))
    assert got == [logs("a"), logs("b")] and torn == 1
    assert spool_files(tmp_path) == []


def test_garbage_line_in_the_middle_loses_nothing_else(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(logs("a"))
    (path,) = spool_files(tmp_path)
    spool.close()
    with path.open("ab") as f:
        f.write(b"\x00\xffnot json at all\n")
        f.write(dumps_batch(logs("b")))
    reader = Spool(tmp_path)
    got, torn = collect(reader)
    assert got == [logs("a"), logs("b")] and torn == 1
    assert reader.stats.torn_lines == 1


def test_torn_progress_header_means_redelivery_not_loss(tmp_path: Path) -> None:
    spool = Spool(tmp_path, save_every=1)
    for i in range(4):
        spool.append(logs(f"b{i}"))
    calls: list[list[Record]] = []

    def fail_third(batch: list[Record]) -> None:
        if len(calls) == 2:
            raise OSError("down")
        calls.append(batch)

    assert spool.replay(fail_third).batches == 2
    (path,) = spool_files(tmp_path)
    data = bytearray(path.read_bytes())
    data[40] = ord("f") if data[40] != ord("f") else ord("e")  # corrupt a digit: CRC mismatch
    path.write_bytes(bytes(data))
    got, _ = collect(Spool(tmp_path))
    assert got == [logs(f"b{i}") for i in range(4)]  # everything again, nothing lost


def test_a_file_held_by_a_live_spool_is_left_alone(tmp_path: Path) -> None:
    owner = Spool(tmp_path)
    owner.append(logs("a"))
    other = Spool(tmp_path)  # separate open file: flock conflicts even in one process
    result = other.replay(lambda batch: pytest.fail("must not replay a live file"))
    assert result.files_skipped == 1 and len(spool_files(tmp_path)) == 1
    owner.close()
    assert collect(other)[0] == [logs("a")]


def test_append_raises_oserror_when_the_disk_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the spool folder should be")
    spool = Spool(blocker / "spool")
    with pytest.raises(OSError):
        spool.append(logs("a"))
    assert spool.stats.batches_spooled == 0
    assert spool.replay(lambda batch: None).batches == 0 and spool.pending() == 0


@pytest.fixture
def run_child() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``python -c code args...`` with alamos importable; killed at teardown."""
    children: list[subprocess.Popen[str]] = []

    def run(code: str, *args: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            cwd=ROOT,
        )
        children.append(child)
        return child

    yield run
    for child in children:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=HANG)


CHILD_PRELUDE = """
    import os, sys, time
    from pathlib import Path
    from alamos.report.pipeline.codec import dumps_batch
    from alamos.core.records import LogRecord
    from alamos.report.pipeline.spool import Spool

    def batch(i):
        return [LogRecord(id=f"b{i}-{j}", ts_ns=j, path="p", level="INFO", message="m" * 200,
                          trace_id=None, span_id=None, attributes={}, location=None,
                          service="s", node="n") for j in range(3)]
"""


def test_sigkill_while_appending_loses_no_acknowledged_batch(
    tmp_path: Path, run_child: Callable[..., subprocess.Popen[str]]
) -> None:
    child = run_child(
        CHILD_PRELUDE
        + """
    spool = Spool(Path(sys.argv[1]))
    i = 0
    while True:
        spool.append(batch(i))
        print(i, flush=True)
        i += 1
    """,
        str(tmp_path),
    )
    assert child.stdout is not None
    acked = [int(child.stdout.readline()) for _ in range(40)]
    # While the writer is alive its file is locked: replay leaves it alone.
    assert Spool(tmp_path).replay(lambda b: pytest.fail("live file replayed")).files_skipped == 1
    child.send_signal(signal.SIGKILL)
    out, _ = child.communicate(timeout=HANG)
    acked += [int(x) for x in out.split()]
    assert child.returncode == -signal.SIGKILL

    got, torn = collect(Spool(tmp_path))
    ids = {int(r.id.split("-")[0][1:]) for batch in got for r in batch}
    assert set(acked) <= ids  # every acknowledged append survived
    assert all(len(batch) == 3 for batch in got) and torn <= 1
    assert spool_files(tmp_path) == []


def test_sigkill_mid_write_leaves_one_torn_line(
    tmp_path: Path, run_child: Callable[..., subprocess.Popen[str]]
) -> None:
    child = run_child(
        CHILD_PRELUDE
        + """
    spool = Spool(Path(sys.argv[1]))
    for i in range(5):
        spool.append(batch(i))
    line = dumps_batch(batch(5))
    os.write(spool._fd, line[: len(line) // 2])  # the crash hits in the middle of a write
    print("torn", flush=True)
    time.sleep(600)
    """,
        str(tmp_path),
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "torn"
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=HANG)
    spool = Spool(tmp_path)
    got, torn = collect(spool)
    assert [batch[0].id for batch in got] == [f"b{i}-0" for i in range(5)]
    assert torn == 1 and spool.stats.torn_lines == 1


def test_sigkill_mid_replay_redelivers_but_never_loses(
    tmp_path: Path, run_child: Callable[..., subprocess.Popen[str]]
) -> None:
    writer = Spool(tmp_path)
    for i in range(10):
        writer.append(logs(f"b{i}", 1))
    writer.close()
    child = run_child(
        CHILD_PRELUDE
        + """
    def consume(records):
        if records[0].id == "b5-0":
            print("stuck", flush=True)
            time.sleep(600)
        print(records[0].id, flush=True)

    Spool(Path(sys.argv[1]), save_every=2).replay(consume)
    """,
        str(tmp_path),
    )
    assert child.stdout is not None
    child_seen = []
    while (line := child.stdout.readline().strip()) != "stuck":
        child_seen.append(line)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=HANG)
    assert child_seen == [f"b{i}-0" for i in range(5)]

    got, _ = collect(Spool(tmp_path))
    again = [batch[0].id for batch in got]
    assert set(child_seen) | set(again) == {f"b{i}-0" for i in range(10)}
    # Progress was saved after b3 (every 2 batches): only b4 is delivered twice.
    assert again == [f"b{i}-0" for i in range(4, 10)]


def test_forked_child_writes_its_own_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(logs("parent"))
    parent_file = spool.path
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            spool.append(logs("child"))
            ok = spool.path != parent_file and f"-{os.getpid()}-" in str(spool.path)
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert spool.path == parent_file and len(spool_files(tmp_path)) == 2
    spool.append(logs("parent2"))  # the parent's file and lock are intact
    got, _ = collect(spool)
    assert sorted(batch[0].id for batch in got) == ["child-0", "parent-0", "parent2-0"]
