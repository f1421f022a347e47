"""Records the database refused for good, kept on disk for a human.

Records the database refused for good (:class:`alamos.RecordsRejected`)
are written next to the spool files, to ``dead-letter-<pid>.jsonl`` (one
JSON line per record, with the database's reason: see
:func:`alamos.report.pipeline.codec.dumps_dead_letter`), ``fsync``-ed.  Replay
never reads them: they wait for a human (:meth:`DeadLetters.read`).

Apart from the :class:`~alamos.report.pipeline.spool.Spool` because nothing
flows back from here: the files are append-only, never replayed nor
deleted, and share only the folder and the durable-write helpers of
:mod:`~alamos.report.pipeline.spool_format`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

from alamos.core.records import Record
from alamos.report.pipeline.codec import DeadLetter, dumps_dead_letter, loads_dead_letter
from alamos.report.pipeline.spool_format import SUFFIX, fsync_dir, write_all

__all__ = ["DeadLetters"]

_DEAD_PREFIX = "dead-letter-"
#: A database's message can quote the whole row: keep the first part.
_REASON_LIMIT = 4096


class DeadLetters:
    """The dead-letter files of a spool folder (see the module doc).

    One file per process, named by the pid at each append (a forked child
    writes its own).  Each append opens, writes, ``fsync``-s and closes the
    file: rejections are rare, and nothing is left open across a fork.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    @property
    def path(self) -> Path:
        """This process's dead-letter file."""
        return self.directory / f"{_DEAD_PREFIX}{os.getpid()}{SUFFIX}"

    def append(self, rejected: Sequence[tuple[Record, str]], exporter: str) -> Path:
        """Durably append ``(record, reason)`` pairs; returns the file.  Raises
        OSError if the disk fails."""
        path = self.path
        if not rejected:
            return path
        ts = time.time_ns()
        data = b"".join(
            dumps_dead_letter(record, reason[:_REASON_LIMIT], exporter, ts)
            for record, reason in rejected
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        try:
            new = os.fstat(fd).st_size == 0
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            fsync_dir(self.directory)
        return path

    def files(self) -> list[Path]:
        """Every dead-letter file of the folder (every process), by name."""
        return sorted(self.directory.glob(f"{_DEAD_PREFIX}*{SUFFIX}"))

    def read(self) -> list[DeadLetter]:
        """Every dead letter of the folder, file by file (a torn last line,
        from a crash mid-write, is skipped)."""
        out: list[DeadLetter] = []
        for path in self.files():
            with contextlib.suppress(OSError), path.open("rb") as f:
                for line in f:
                    with contextlib.suppress(ValueError):
                        out.append(loads_dead_letter(line))
        return out
