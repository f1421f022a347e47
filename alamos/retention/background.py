"""Garbage collection in the background: ``alamos.new(..., retention=Policy(...))``.

:class:`Background` runs :func:`~alamos.retention.collect.gc` on its own thread
(not the collector's worker, which must keep draining the queue): once when
started, then every ``interval`` seconds, until :meth:`Background.stop`
(the root's close).  A gc in progress stops between two batches; the next
one (in this process or another) finishes it.

Failures are logged on the ``"alamos.retention"`` logger, never raised: a
database without tables yet (nothing exported) is skipped quietly, another
gc holding the lock (another process of the same database) is skipped with
an info message.  A forked child does not inherit the thread: the process
that made the root runs it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from alamos.core.errors import GcRunning, NothingToCollect, RetentionError
from alamos.retention.collect import DEFAULT_BATCH_SIZE, gc
from alamos.retention.policy import Policy
from alamos.retention.summary import GcSummary

__all__ = ["Background"]

log = logging.getLogger("alamos.retention")


class Background:
    """Runs ``policy`` on each of ``urls`` every ``interval`` seconds."""

    def __init__(
        self,
        urls: Sequence[str],
        policy: Policy,
        interval: float,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if not isinstance(policy, Policy):
            raise TypeError(f"retention must be an alamos.retention.Policy, not {policy!r}")
        if not interval > 0:
            raise ValueError(f"retention_interval must be > 0 seconds (got {interval!r})")
        self.urls = tuple(urls)
        self.policy = policy
        self.interval = float(interval)
        self.batch_size = batch_size
        #: Completed runs (one per database per round), and the last summary.
        self.runs = 0
        self.last: GcSummary | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="alamos-retention", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop after the current batch; wait up to ``timeout`` for it."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def run_once(self) -> None:
        """One round: gc on every database."""
        for url in self.urls:
            if self._stop.is_set():
                return
            try:
                summary = gc(url, self.policy, batch_size=self.batch_size, stop=self._stop)
            except NothingToCollect as exc:
                log.debug("alamos retention: nothing to collect yet: %s", exc)
                continue
            except GcRunning as exc:
                log.info("alamos retention: skipped: %s", exc)
                continue
            except RetentionError as exc:
                log.warning("alamos retention: %s", exc)
                continue
            except Exception:
                log.exception("alamos retention: gc failed on %s", url)
                continue
            self.runs += 1
            self.last = summary
            log.info(
                "alamos retention: %d traces deleted, %d kept; rows deleted: %s",
                summary.deleted,
                summary.kept,
                ", ".join(f"{k} {v}" for k, v in summary.rows.items() if v) or "none",
            )

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval)
