"""The on-disk format of a spool file, and the file operations that keep it durable.

Each process writes its own file ``spool-<pid>-<random>.jsonl`` and holds an
exclusive :func:`fcntl.flock` on it while it has it open, so several processes
can share a folder: a file that can be locked belongs to nobody alive and may
be replayed.  The file starts with a fixed-size header line::

    #alamos-spool v1 consumed=<16 hex digits> crc=<8 hex digits>\\n

``consumed`` is the byte offset of the first line not yet replayed (a replayer
updates it in place, with a CRC32 of the digits so a torn update is detected
and only causes re-delivery).  Every other line is one batch, as written by
:func:`alamos.report.pipeline.codec.dumps_batch`: a JSON array of encoded records.

Kept apart from :class:`~alamos.report.pipeline.spool.Spool` (which decides
when to write, replay and delete) so that the byte layout, and the
create-lock-rename dance that makes a new file safe to share, can be read
in one place; :mod:`~alamos.report.pipeline.dead_letters` writes with the same
helpers.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import zlib
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "HEADER_LEN",
    "PREFIX",
    "STALE_TMP_NS",
    "SUFFIX",
    "create",
    "data_start",
    "fsync_dir",
    "header",
    "lines",
    "remove_stale_tmp",
    "write_all",
]

PREFIX = "spool-"
SUFFIX = ".jsonl"
_MAGIC = b"#alamos-spool v1 consumed="
_READ_CHUNK = 1 << 20
STALE_TMP_NS = 60 * 10**9  # a temp file is renamed within microseconds of creation


def header(consumed: int) -> bytes:
    """The header line of a file whose first unreplayed line starts at ``consumed``."""
    digits = b"%016x" % consumed
    return _MAGIC + digits + b" crc=%08x\n" % zlib.crc32(digits)


HEADER_LEN = len(header(0))


def data_start(head: bytes) -> int:
    """The offset replay starts at, given the first bytes of a spool file."""
    if not head.startswith(b"#alamos-spool"):
        return 0  # no header: every line is data
    try:
        consumed = int(head[len(_MAGIC) : len(_MAGIC) + 16], 16)
    except ValueError:
        consumed = -1
    if consumed >= HEADER_LEN and head[:HEADER_LEN] == header(consumed):
        return consumed
    # A torn header update: start over after the header (re-delivery is fine).
    return HEADER_LEN if head[HEADER_LEN - 1 : HEADER_LEN] == b"\n" else 0


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written (a write may be short)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(directory: Path) -> None:
    """Make a new directory entry durable (best effort where unsupported)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot fsync a directory
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def create(directory: Path) -> tuple[int, Path]:
    """A new locked spool file with its header, durably in ``directory``.

    Created under a temporary name replay ignores, locked, then renamed: a
    replayer can never lock (and delete) a spool file before its owner does."""
    name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(6)}{SUFFIX}"
    final, tmp = directory / name, directory / f".{name}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        write_all(fd, header(HEADER_LEN))
        os.fsync(fd)
        os.rename(tmp, final)
        fsync_dir(directory)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return fd, final


def remove_stale_tmp(path: Path) -> None:
    """A file a crashed process created but never renamed (no data in it)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(path)
    finally:
        os.close(fd)


def lines(fd: int, pos: int) -> Iterator[tuple[bytes, int]]:
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
