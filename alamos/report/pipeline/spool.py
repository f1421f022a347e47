"""An append-only spool of record batches on local disk.

When an exporter cannot keep up or is down, its :class:`~alamos.report.pipeline.delivery.Delivery`
writes batches here, and replays them through the exporter later.

File format
-----------
Each process writes its own file ``spool-<pid>-<random>.jsonl`` and holds an
exclusive :func:`fcntl.flock` on it while it has it open, so several processes
can share a folder: a file that can be locked belongs to nobody alive and may
be replayed.  The file starts with a fixed-size header line::

    #alamos-spool v1 consumed=<16 hex digits> crc=<8 hex digits>\\n

``consumed`` is the byte offset of the first line not yet replayed (a replayer
updates it in place, with a CRC32 of the digits so a torn update is detected
and only causes re-delivery).  Every other line is one batch, as written by
:func:`alamos.report.pipeline.codec.dumps_batch`: a JSON array of encoded records.

Guarantees
----------
``append`` returns only after ``write`` + ``fsync`` of the line (and, for a
new file, of the header and the directory entry), so a returned ``append``
survives a crash.  A crash (SIGKILL, power loss) during an ``append`` can only
leave a torn last line for that one unacknowledged batch; replay skips and
counts it.  Replay deletes a file only after every line in it was consumed;
a crash during replay re-delivers at most the batches consumed since the
offset was last saved (export is idempotent), it never loses one.

Dead letters
------------
Records the database refused for good (:class:`alamos.RecordsRejected`)
are written next to the spool files, to ``dead-letter-<pid>.jsonl`` (one
JSON line per record, with the database's reason: see
:func:`alamos.report.pipeline.codec.dumps_dead_letter`), ``fsync``-ed.  Replay
never reads them: they wait for a human (:meth:`DeadLetters.read`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import attrs

from alamos.core import process
from alamos.core.records import Record
from alamos.report.pipeline.codec import (
    DeadLetter,
    dumps_batch,
    dumps_dead_letter,
    loads_batch,
    loads_dead_letter,
)

__all__ = ["DeadLetters", "PartlyConsumed", "ReplayStats", "Spool", "SpoolStats"]

_PREFIX = "spool-"
_SUFFIX = ".jsonl"
_MAGIC = b"#alamos-spool v1 consumed="
_READ_CHUNK = 1 << 20
_STALE_TMP_NS = 60 * 10**9  # a temp file is renamed within microseconds of creation
_DEAD_PREFIX = "dead-letter-"
#: A database's message can quote the whole row: keep the first part.
_REASON_LIMIT = 4096


def _header(consumed: int) -> bytes:
    digits = b"%016x" % consumed
    return _MAGIC + digits + b" crc=%08x\n" % zlib.crc32(digits)


_HEADER_LEN = len(_header(0))


def _data_start(head: bytes) -> int:
    """The offset replay starts at, given the first bytes of a spool file."""
    if not head.startswith(b"#alamos-spool"):
        return 0  # no header: every line is data
    try:
        consumed = int(head[len(_MAGIC) : len(_MAGIC) + 16], 16)
    except ValueError:
        consumed = -1
    if consumed >= _HEADER_LEN and head[:_HEADER_LEN] == _header(consumed):
        return consumed
    # A torn header update: start over after the header (re-delivery is fine).
    return _HEADER_LEN if head[_HEADER_LEN - 1 : _HEADER_LEN] == b"\n" else 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot fsync a directory
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _create(directory: Path) -> tuple[int, Path]:
    """A new locked spool file with its header, durably in ``directory``.

    Created under a temporary name replay ignores, locked, then renamed: a
    replayer can never lock (and delete) a spool file before its owner does."""
    name = f"{_PREFIX}{os.getpid()}-{secrets.token_hex(6)}{_SUFFIX}"
    final, tmp = directory / name, directory / f".{name}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _write_all(fd, _header(_HEADER_LEN))
        os.fsync(fd)
        os.rename(tmp, final)
        _fsync_dir(directory)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return fd, final


def _remove_stale_tmp(path: Path) -> None:
    """A file a crashed process created but never renamed (no data in it)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(path)
    finally:
        os.close(fd)


def _lines(fd: int, pos: int) -> Iterator[tuple[bytes, int]]:
    """Lines of ``fd`` from ``pos``, each with the offset just after it.  The
    last one may lack its newline (torn)."""
    buf = b""
    while True:
        chunk = os.pread(fd, _READ_CHUNK, pos + len(buf))
        if not chunk:
            if buf:
                yield buf, pos + len(buf)
            return
        buf += chunk
        start = 0
        while (nl := buf.find(b"\n", start)) >= 0:
            yield buf[start : nl + 1], pos + nl + 1
            start = nl + 1
        buf = buf[start:]
        pos += start


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
                _write_all(fd, line)
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
                    self._fd, self._path = _create(self.directory)
                    break
                except FileNotFoundError:  # the folder or our temp file vanished
                    if attempt == 2:
                        raise
            self._size = _HEADER_LEN
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
            if name.startswith(_PREFIX) and name.endswith(_SUFFIX):
                try:
                    found.append((entry.stat().st_mtime_ns, name, Path(entry.path)))
                except FileNotFoundError:
                    continue
            elif name.startswith("." + _PREFIX) and name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    if time.time_ns() - entry.stat().st_mtime_ns > _STALE_TMP_NS:
                        _remove_stale_tmp(Path(entry.path))
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
        pos = _data_start(os.pread(fd, _HEADER_LEN, 0))
        can_save = pos >= _HEADER_LEN
        saved, unsaved = pos, 0
        for line, end in _lines(fd, pos):
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
            os.pwrite(fd, _header(consumed), 0)
            os.fsync(fd)

    def pending(self) -> int:
        """Bytes of spooled batches not yet replayed, in all files of the folder."""
        total = 0
        for path in self._spool_files():
            with contextlib.suppress(OSError), path.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                total += max(0, size - _data_start(f.read(_HEADER_LEN)))
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
        return self.directory / f"{_DEAD_PREFIX}{os.getpid()}{_SUFFIX}"

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
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            _fsync_dir(self.directory)
        return path

    def files(self) -> list[Path]:
        """Every dead-letter file of the folder (every process), by name."""
        return sorted(self.directory.glob(f"{_DEAD_PREFIX}*{_SUFFIX}"))

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
