"""Level filters: which (level, path) pairs are recorded.

A filter is decided once per experiment and level, when the experiment is
created or the filter changes, and stored as plain booleans on the
experiment.  The hot path therefore never parses or matches anything: a
filtered-out call is one attribute check.

Spec strings look like ``"prod,server.cesium=debug"``: a bare level is the
default threshold, ``path=level`` sets the threshold of a subtree, and the
longest matching path prefix wins.  A callable ``(level, path) -> bool`` is
also accepted, for anything a spec can't say.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from alamos.core.level import Level, parse_level
from alamos.experiment.keys import validate_path

__all__ = ["Filter", "coerce_filter", "level_from_env"]

ENV_LEVEL = "ALAMOS_LEVEL"


def level_from_env() -> str | None:
    """The filter spec from ``ALAMOS_LEVEL``, or ``None`` if unset or empty."""
    value = os.environ.get(ENV_LEVEL, "").strip()
    return value or None


class Filter:
    """A parsed filter spec (or a wrapped callable)."""

    __slots__ = ("_default", "_func", "_rules", "spec")

    def __init__(self, spec: object = None) -> None:
        if spec is None:
            env = level_from_env()
            if env is not None:
                try:
                    Filter(env)
                except ValueError as exc:
                    raise ValueError(f"{exc} (from the environment variable {ENV_LEVEL})") from None
            spec = env or Level.PROD
        self.spec = spec
        self._func: Callable[[Level, str], bool] | None = None
        self._default = Level.PROD
        self._rules: list[tuple[str, Level]] = []
        if isinstance(spec, Filter):
            self._func, self._default, self._rules = spec._func, spec._default, spec._rules
        elif isinstance(spec, Level):
            self._default = spec
        elif isinstance(spec, str):
            self._parse(spec)
        elif callable(spec):
            self._func = spec
        else:
            raise ValueError(
                f"invalid level filter {spec!r}: use a level ('prod'), a spec string "
                "like 'prod,server.cesium=debug', or a callable (level, path) -> bool"
            )

    def _parse(self, spec: str) -> None:
        default: Level | None = None
        for raw in spec.split(","):
            item = raw.strip()
            if not item:
                continue
            if "=" in item:
                path, _, lvl = item.partition("=")
                try:
                    path = validate_path(path.strip())
                    level = parse_level(lvl)
                except ValueError as exc:
                    raise ValueError(f"invalid level filter {spec!r} at {item!r}: {exc}") from None
                # As for the default: two rules for one path contradict each
                # other (or repeat), and the order of a spec must not decide.
                for seen, seen_level in self._rules:
                    if seen == path:
                        raise ValueError(
                            f"invalid level filter {spec!r}: more than one rule for the path "
                            f"{path!r} ({seen_level} and {level}); give each path once"
                        )
                self._rules.append((path, level))
            else:
                if default is not None:
                    raise ValueError(
                        f"invalid level filter {spec!r}: more than one default level "
                        f"({default} and {item}); give one bare level and path=level rules"
                    )
                try:
                    default = parse_level(item)
                except ValueError as exc:
                    raise ValueError(f"invalid level filter {spec!r}: {exc}") from None
        self._default = default if default is not None else Level.PROD
        # Longest prefix first, so the first match is the most specific.
        self._rules.sort(key=lambda r: -len(r[0]))

    def threshold(self, path: str) -> Level | None:
        """The threshold that applies at ``path`` (``None`` for a callable filter)."""
        if self._func is not None:
            return None
        for prefix, level in self._rules:
            if path == prefix or path.startswith(prefix + "."):
                return level
        return self._default

    def enabled(self, level: Level, path: str) -> bool:
        """Whether a record of ``level`` made at ``path`` passes."""
        if self._func is not None:
            try:
                return bool(self._func(level, path))
            except Exception:
                # A broken user filter must not break instrumentation: fail open
                # for prod, closed for the rest.
                return level >= Level.PROD
        threshold = self.threshold(path)
        assert threshold is not None
        return level >= threshold

    def __repr__(self) -> str:
        return f"Filter({self.spec!r})"


def coerce_filter(spec: object) -> Filter:
    """Accept anything a ``level=`` argument accepts."""
    if isinstance(spec, Filter):
        return spec
    if isinstance(spec, str | Level) or callable(spec) or spec is None:
        return Filter(spec)
    if isinstance(spec, int) and not isinstance(spec, bool):
        return Filter(parse_level(spec))
    return Filter(spec)
