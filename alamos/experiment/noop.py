"""``alamos.NOOP``: the experiment to pass when there is no instrumentation.

Library code takes ``exp: alamos.Experiment = alamos.NOOP`` and calls it
unconditionally.  Every call on NOOP is a cheap no-op (the same shared
no-op span, logger and metrics as a filtered-out experiment), and
``NOOP.sub(x) is NOOP``, so a library can build its sub-tree without
checking.  Keys are still validated, so a bad key fails the same way with
or without instrumentation.

NOOP is shared by every library in the process, so it keeps nothing: its
metrics are detached no-ops (two libraries may ask it for a counter and a
gauge of the same name), its debug sessions change nothing, and it has no
children, reports or loguru sinks.
"""

from __future__ import annotations

from typing import Any

from alamos.core.level import LevelLike, parse_level
from alamos.experiment.experiment import Experiment
from alamos.experiment.filter import Filter
from alamos.experiment.keys import validate_key
from alamos.experiment.root import RootState
from alamos.experiment.session import DebugSession
from alamos.metrics.factory import NoopMetrics
from alamos.report.pipeline.stats import CloseResult
from alamos.trace.sampling import NEVER
from alamos.trace.tracer import check_ignore

__all__ = ["NOOP"]


class _NoopSession(DebugSession):
    """A debug session of NOOP: it has an id and a path, and changes nothing."""

    __slots__ = ()

    def start(self) -> DebugSession:
        return self

    def stop(self) -> None:
        return None


class _NoopExperiment(Experiment):
    def __init__(self, state: RootState) -> None:
        super().__init__(state, "noop", None)
        self.metrics = NoopMetrics()

    def sub(self, key: str) -> Experiment:
        validate_key(key)
        return self

    def find(self, path: str) -> Experiment | None:
        return None

    def attach(self, key: str, provider: Any, level: Any = "prod") -> None:
        return None

    def add_exporter(self, exporter: Any) -> None:
        return None  # NOOP records nothing: there is nothing to hand over

    def report(self) -> dict[str, Any]:
        return {"key": self.key, "path": self.path, "reports": {}, "metrics": {}, "children": {}}

    def report_entries(self) -> list[Any]:
        return []

    def ignore(self, *types: type[BaseException]) -> None:
        check_ignore(types)  # validated as on a real tree; NOOP spans record nothing

    def set_level(self, spec: object) -> None:
        return None

    def debug_session(self, path: str | None = None, level: LevelLike = "debug") -> DebugSession:
        return _NoopSession(
            self._root_state, self.path if path is None else path, parse_level(level)
        )

    def enabled(self, level: LevelLike) -> bool:
        parse_level(level)
        return False

    def flush(self, timeout: float | None = 10.0) -> bool:
        return True

    def close(self, timeout: float | None = 10.0) -> CloseResult:
        return CloseResult()

    def __repr__(self) -> str:
        return "<alamos.NOOP>"


def _make() -> Experiment:
    state = RootState(
        level_filter=Filter(lambda level, path: False),
        service="noop",
        node="noop",
        sampler=NEVER,
        exporters=(),
        debug=False,
        strict=False,
        console=False,
    )
    state.closed = True
    exp = _NoopExperiment(state)
    state.index[exp.path] = exp
    exp._refresh()
    return exp


NOOP: Experiment = _make()
