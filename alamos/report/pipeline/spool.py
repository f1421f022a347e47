"""An append-only spool of record batches on local disk.

When an exporter cannot keep up or is down, its :class:`~alamos.report.pipeline.delivery.Delivery`
writes batches here, and replays them through the exporter later.  The byte
layout of a spool file (one file per process, a header with the replay
offset, one batch a line) is in :mod:`~alamos.report.pipeline.spool_format`;
records the database refused for good go to
:mod:`~alamos.report.pipeline.dead_letters` instead.  This module decides when
to write, replay and delete, and keeps that safe across threads and forks.

Guarantees
----------
``append`` returns only after ``write`` + ``fsync`` of the line (and, for a
new file, of the header and the directory entry), so a returned ``append``
survives a crash.  A crash (SIGKILL, power loss) during an ``append`` can only
leave a torn last line for that one unacknowledged batch; replay skips and
counts it.  Replay deletes a file only after every line in it was consumed;
a crash during replay re-delivers at most the batches consumed since the
offset was last saved (export is idempotent), it never loses one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from alamos.core import process
from alamos.core.records import Record
from alamos.report.pipeline.codec import dumps_batch, loads_batch
from alamos.report.pipeline.dead_letters import DeadLetters
from alamos.report.pipeline.spool_format import (
    HEADER_LEN,
    PREFIX,
    STALE_TMP_NS,
    SUFFIX,
    create,
    data_start,
    header,
    lines,
    remove_stale_tmp,
    write_all,
)

# DeadLetters is re-exported: it was defined here first, and is public.
__all__ = ["DeadLetters", "PartlyConsumed", "ReplayStats", "Spool", "SpoolStats"]


class PartlyConsumed(Exception):
    """Raised by a replay's ``consume`` that dealt with part of its batch and
    put the rest back in the spool itself: the line counts as consumed (it is
    not replayed again, which would repeat what was done), and the replay
    stops with ``error``, the failure that interrupted it."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@attrs.define
class SpoolStats:
    """Counters of one :class:`Spool` (this process only)."""

    batches_spooled: int = 0
    records_spooled: int = 0
    batches_replayed: int = 0
    records_replayed: int = 0
    torn_lines: int = 0


@attrs.define
class ReplayStats:
    """What one :meth:`Spool.replay` did."""

    batches: int = 0
    records: int = 0
    torn_lines: int = 0
    files_done: int = 0
    """Files fully replayed, then deleted."""
    files_skipped: int = 0
    """Files locked by a live process (its own spool), left alone."""
    error: Exception | None = None
    """What ``consume`` raised; replay stopped there and kept the rest."""

    @property
    def complete(self) -> bool:
        return self.error is None


class Spool:
    """The spool folder ``directory`` (created on first append).

    Thread-safe: ``append`` and ``replay`` may run concurrently in different
    threads.  ``save_every``: during replay, the progress offset is made
    durable every that many batches (and whenever ``consume`` fails).
    """

    def __init__(self, directory: Path | str, *, save_every: int = 64) -> None:
        self.directory = Path(directory)
        self._save_every = max(1, save_every)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._replay_fds: set[int] = set()
        self._stats = SpoolStats()
        self._track()

    @property
    def stats(self) -> SpoolStats:
        with self._lock:
            return attrs.evolve(self._stats)

    @property
    def path(self) -> Path | None:
        """This process's current spool file, if one is open."""
        return self._path

    # -- writing --------------------------------------------------------------

    def append(self, records: Sequence[Record]) -> None:
        """Durably append one batch (one line).  Raises OSError if the disk fails."""
        if not records:
            return
        line = dumps_batch(records)
        with self._lock:
            fd = self._open_locked()
            try:
                write_all(fd, line)
                os.fsync(fd)
            except BaseException:
                self._abandon_locked()
                raise
            self._size += len(line)
            self._stats.batches_spooled += 1
            self._stats.records_spooled += len(records)

    def _open_locked(self) -> int:
        if self._fd is None:
            self._track()  # again, if it was closed
            self.directory.mkdir(parents=True, exist_ok=True)
            for attempt in range(3):
                try:
                    self._fd, self._path = create(self.directory)
                    break
                except FileNotFoundError:  # the folder or our temp file vanished
                    if attempt == 2:
                        raise
            self._size = HEADER_LEN
        assert self._fd is not None
        return self._fd

    def _abandon_locked(self) -> None:
        """After a failed write: cut a partial line if possible, and never
        append to this file again (a torn line is then at most the last one)."""
        fd = self._fd
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, self._size)
        self._close_locked()

    def _close_locked(self) -> None:
        fd, self._fd, self._path = self._fd, None, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # releases the flock

    def close(self) -> None:
        """Close this process's file (it becomes replayable).  Idempotent; a
        later ``append`` opens a new file."""
        with self._lock:
            self._close_locked()
        process.untrack(self)

    # -- reading --------------------------------------------------------------

    def _spool_files(self) -> list[Path]:
        try:
            entries = list(os.scandir(self.directory))
        except (FileNotFoundError, NotADirectoryError):
            return []
        found: list[tuple[int, str, Path]] = []
        for entry in entries:
            name = entry.name
            if name.startswith(PREFIX) and name.endswith(SUFFIX):
                try:
                    found.append((entry.stat().st_mtime_ns, name, Path(entry.path)))
                except FileNotFoundError:
                    continue
            elif name.startswith("." + PREFIX) and name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    if time.time_ns() - entry.stat().st_mtime_ns > STALE_TMP_NS:
                        remove_stale_tmp(Path(entry.path))
        return [path for _, _, path in sorted(found)]

    def replay(self, consume: Callable[[list[Record]], None]) -> ReplayStats:
        """Feed every batch of every unlocked spool file in the folder to
        ``consume``, oldest file first, deleting each file once all of it was
        consumed.  Lines that do not parse are skipped and counted.  If
        ``consume`` raises, replay stops, keeps the rest for a later replay and
        returns with ``error`` set.  This process's own file is closed first so
        that it is replayed too (later appends go to a new file)."""
        result = ReplayStats()
        with self._lock:
            self._close_locked()
        for path in self._spool_files():
            self._replay_file(path, consume, result)
            if result.error is not None:
                break
        return result

    def _replay_file(
        self, path: Path, consume: Callable[[list[Record]], None], result: ReplayStats
    ) -> None:
        with self._lock:  # held across open + add: a fork cannot fall in between
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                return  # gone (replayed by another process) or unreadable
            self._replay_fds.add(fd)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                result.files_skipped += 1  # its owner is alive
                return
            # Another replayer may have finished (and deleted) it since we opened it.
            st, cur = os.fstat(fd), os.stat(path)
            if (st.st_ino, st.st_dev) != (cur.st_ino, cur.st_dev):
                return
            if self._consume_file(fd, consume, result):
                os.unlink(path)
                result.files_done += 1
        except FileNotFoundError:
            return
        except OSError:
            result.files_skipped += 1  # unreadable for now: kept for a later replay
        finally:
            with self._lock:
                if fd in self._replay_fds:  # not if closed by a fork in this thread
                    self._replay_fds.discard(fd)
                    os.close(fd)

    def _consume_file(
        self, fd: int, consume: Callable[[list[Record]], None], result: ReplayStats
    ) -> bool:
        """Replay one locked file; True if all of it was consumed."""
        pos = data_start(os.pread(fd, HEADER_LEN, 0))
        can_save = pos >= HEADER_LEN
        saved, unsaved = pos, 0
        for line, end in lines(fd, pos):
            try:
                batch = loads_batch(line)
            except ValueError:
                result.torn_lines += 1
                with self._lock:
                    self._stats.torn_lines += 1
                pos = end
                continue
            if batch:
                try:
                    consume(batch)
                except PartlyConsumed as exc:
                    result.error = exc.error
                    if can_save:
                        self._save(fd, end)
                    return False
                except Exception as exc:
                    result.error = exc
                    if can_save and pos != saved:
                        self._save(fd, pos)
                    return False
                result.batches += 1
                result.records += len(batch)
                with self._lock:
                    self._stats.batches_replayed += 1
                    self._stats.records_replayed += len(batch)
                unsaved += 1
            pos = end
            if can_save and unsaved >= self._save_every:
                self._save(fd, pos)
                saved, unsaved = pos, 0
        return True

    @staticmethod
    def _save(fd: int, consumed: int) -> None:
        """Make replay progress durable (best effort: failing only means the
        consumed batches are delivered again)."""
        with contextlib.suppress(OSError):
            os.pwrite(fd, header(consumed), 0)
            os.fsync(fd)

    def pending(self) -> int:
        """Bytes of spooled batches not yet replayed, in all files of the folder."""
        total = 0
        for path in self._spool_files():
            with contextlib.suppress(OSError), path.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                total += max(0, size - data_start(f.read(HEADER_LEN)))
        return total

    # -- dead letters ---------------------------------------------------------

    def dead_letters(self) -> DeadLetters:
        """The dead-letter files of this folder."""
        return DeadLetters(self.directory)

    # -- fork -----------------------------------------------------------------

    def _track(self) -> None:
        # While open (from creation, or from an append after close, to close).
        process.track(
            self,
            process.Hooks(
                before_fork=Spool._before_fork,
                after_fork_in_parent=Spool._after_fork_in_parent,
                after_fork_in_child=Spool._after_fork_in_child,
            ),
        )

    def _before_fork(self) -> None:
        # Hold the lock over the fork, so that no file is half opened (open,
        # but not yet known to the child's clean-up) at the moment of fork.
        self._lock.acquire()

    def _after_fork_in_parent(self) -> None:
        self._lock.release()

    def _after_fork_in_child(self) -> None:
        # The child shares the parent's open files and their locks: close its
        # copies without unlocking (the parent still holds them) and start over.
        self._lock = threading.Lock()
        for fd in (self._fd, *self._replay_fds):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd, self._path, self._size = None, None, 0
        self._replay_fds = set()
        self._stats = SpoolStats()
