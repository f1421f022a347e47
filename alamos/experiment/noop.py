"""``alamos.NOOP``: the experiment to pass when there is no instrumentation.

Library code takes ``exp: alamos.Experiment = alamos.NOOP`` and calls it
unconditionally.  Every call on NOOP is a cheap no-op (the same shared
no-op span, logger and metrics as a filtered-out experiment), and
``NOOP.sub(x) is NOOP``, so a library can build its sub-tree without
checking.
"""

from __future__ import annotations

from typing import Any

from alamos.experiment.experiment import Experiment
from alamos.experiment.filter import Filter
from alamos.experiment.root import RootState
from alamos.trace.sampling import NEVER

__all__ = ["NOOP"]


class _NoopExperiment(Experiment):
    def sub(self, key: str) -> Experiment:
        return self

    def find(self, path: str) -> Experiment | None:
        return None

    def attach(self, key: str, provider: Any, level: Any = "prod") -> None:
        return None

    def report(self) -> dict[str, Any]:
        return {"key": self.key, "path": self.path, "reports": {}, "metrics": {}, "children": {}}

    def set_level(self, spec: object) -> None:
        return None

    def flush(self, timeout: float | None = 10.0) -> bool:
        return True

    def close(self, timeout: float | None = 10.0) -> None:
        return None

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
    exp = _NoopExperiment(state, "noop", None)
    state.index[exp.path] = exp
    exp._refresh()
    return exp


NOOP: Experiment = _make()
