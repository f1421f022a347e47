"""Process-wide state: the one module of alamos that holds globals.

Everything else hangs off a tree's root.  What cannot (because it is per
process by nature) lives here, in one place:

* the registry of live objects that need a hook at fork or at exit: roots,
  their collectors, deliveries and spools.  It holds them weakly (an object
  nobody uses is not kept alive by it) and forgets an object at its close;
* one :func:`atexit` hook, which runs the exit hooks (closing the roots
  still open);
* the roots of the process (weakly), and who wants to hear of a new one:
  the pytest plugin's capture mode attaches each test's recorder to every
  tree, including the ones made at import time (:func:`root_created`,
  :func:`live_roots`, :func:`watch_roots`);
* one set of :func:`os.register_at_fork` hooks, registered once per process
  at import, which run the registered objects' fork hooks.  (A hook per
  object could never be removed, so they would pile up over a long test run.)

Hooks are unbound functions of the object, called with it; they run in
registration order.  A hook that raises is reported on the ``alamos`` logger
and does not stop the others.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

import attrs

__all__ = [
    "Hooks",
    "live_count",
    "live_roots",
    "root_created",
    "track",
    "untrack",
    "watch_roots",
]

log = logging.getLogger("alamos")

Hook = Callable[[Any], None] | None


@attrs.frozen(slots=True)
class Hooks:
    before_fork: Hook = None
    after_fork_in_parent: Hook = None
    after_fork_in_child: Hook = None
    at_exit: Hook = None


_LOCK = threading.RLock()
_LIVE: weakref.WeakKeyDictionary[Any, Hooks] = weakref.WeakKeyDictionary()


def track(obj: Any, hooks: Hooks) -> None:
    """Run ``hooks`` for ``obj`` at fork and exit until :func:`untrack` (or
    until ``obj`` is garbage)."""
    with _LOCK:
        _LIVE[obj] = hooks


def untrack(obj: Any) -> None:
    with _LOCK:
        _LIVE.pop(obj, None)


def live_count() -> int:
    """How many objects have hooks registered now (for tests and health checks)."""
    with _LOCK:
        return len(_LIVE)


_ROOTS: weakref.WeakSet[Any] = weakref.WeakSet()
_ROOT_WATCHERS: list[Callable[[Any], None]] = []


def root_created(root: Any) -> None:
    """Called by ``alamos.new`` with each new root: remembered (weakly), and
    passed to every watcher (a watcher that raises is logged and skipped)."""
    with _LOCK:
        _ROOTS.add(root)
        watchers = list(_ROOT_WATCHERS)
    for watcher in watchers:
        try:
            watcher(root)
        except Exception:
            log.exception("alamos: a watcher of new roots failed on %r", root)


def live_roots() -> list[Any]:
    """The roots made in this process and still alive (open or closed)."""
    with _LOCK:
        return list(_ROOTS)


def watch_roots(watcher: Callable[[Any], None]) -> Callable[[], None]:
    """Call ``watcher(root)`` for every root made from now on; returns the
    function that stops it."""
    with _LOCK:
        _ROOT_WATCHERS.append(watcher)

    def unwatch() -> None:
        with _LOCK:
            if watcher in _ROOT_WATCHERS:
                _ROOT_WATCHERS.remove(watcher)

    return unwatch


def _run(which: str) -> None:
    for obj, hooks in list(_LIVE.items()):
        hook = getattr(hooks, which)
        if hook is None:
            continue
        try:
            hook(obj)
        except Exception:
            log.exception("alamos: %s hook of %r failed", which, obj)


def _before_fork() -> None:
    # Held across the fork, so no other thread is half-way through a
    # registration when the child's copy of the registry is taken.
    _LOCK.acquire()
    _run("before_fork")


def _after_fork_in_parent() -> None:
    try:
        _run("after_fork_in_parent")
    finally:
        _LOCK.release()


def _after_fork_in_child() -> None:
    try:
        _run("after_fork_in_child")
    finally:
        _LOCK.release()


def _at_exit() -> None:
    # Newest first: a tree opened later may use one opened earlier.
    for obj, hooks in reversed(list(_LIVE.items())):
        if hooks.at_exit is not None:
            try:
                hooks.at_exit(obj)
            except Exception:  # interpreter shutdown: best effort
                log.debug("alamos: exit hook of %r failed", obj, exc_info=True)


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
atexit.register(_at_exit)
