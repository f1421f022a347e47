"""The options of :func:`alamos.new`, read once, with their environment defaults.

Configuration is injected here, once per tree, and nowhere else: there is no
global provider to patch between tests.  ``ALAMOS_LEVEL`` is read by
:class:`~alamos.experiment.filter.Filter`; the others here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import attrs

from alamos.core.exporter import Exporter
from alamos.core.handoff import check_max_bytes
from alamos.experiment.filter import Filter, coerce_filter
from alamos.experiment.keys import validate_key
from alamos.experiment.rules import coerce_rules
from alamos.retention.policy import Policy
from alamos.rules import RuleSet
from alamos.trace.sampling import Sampler, coerce_sampler
from alamos.trace.tracer import check_ignore

__all__ = ["ENV_CONSOLE", "ENV_DB", "ENV_SPOOL", "Config"]

ENV_DB = "ALAMOS_DB"
ENV_SPOOL = "ALAMOS_SPOOL_DIR"
ENV_CONSOLE = "ALAMOS_CONSOLE"


@attrs.frozen(slots=True)
class Config:
    """Every option of one tree, validated (see the README for each)."""

    key: str
    level: Filter
    service: str
    node: str | None
    """None: ``<hostname>:<pid>``, refreshed in a forked child."""
    sampler: Sampler
    exporters: tuple[Exporter, ...]
    db: str | None
    debug: bool
    strict: bool
    console: bool
    batch_size: int
    flush_interval: float
    max_queue: int
    max_queue_bytes: int
    metrics_interval: float
    report_interval: float
    spool_dir: Path
    ignore: tuple[type[BaseException], ...]
    """Exception types every span of the tree treats as expected."""
    process_metrics: bool
    """Process and GC collectors in ``root.registry``."""
    rules: RuleSet | None = None
    """Recording rules (:mod:`alamos.experiment.rules`)."""
    stats_interval: float | None = 60.0
    """Window of the live span statistics in seconds; None: no statistics."""
    stats_attributes: tuple[str, ...] = ()
    retention: Policy | None = None
    """Garbage collection in the background (see alamos.experiment.retention)."""
    retention_interval: float = 3600.0

    @classmethod
    def read(
        cls,
        key: str,
        *,
        level: object,
        service: str | None,
        node: str | None,
        sampler: object,
        exporters: Sequence[Exporter],
        db: str | None,
        debug: bool,
        strict: bool,
        console: bool | None,
        batch_size: int,
        flush_interval: float,
        max_queue: int,
        max_queue_bytes: int,
        metrics_interval: float,
        report_interval: float,
        spool_dir: str | os.PathLike[str] | None,
        ignore: Sequence[type[BaseException]] = (),
        process_metrics: bool = True,
        rules: object = None,
        stats_interval: float | None = 60.0,
        stats_attributes: Sequence[str] = (),
        retention: Policy | None = None,
        retention_interval: float = 3600.0,
    ) -> Config:
        """The arguments of :func:`alamos.new`, checked, with the environment's defaults."""
        validate_key(key)
        for exporter in exporters:
            if not isinstance(exporter, Exporter):
                raise TypeError(
                    f"{exporter!r} is not an exporter: it needs min_level, name, synchronous, "
                    "export(records) and close() (see alamos.Exporter)"
                )
        if batch_size < 1 or max_queue < 1:
            raise ValueError(
                f"batch_size and max_queue must be at least 1 (got {batch_size} and {max_queue})"
            )
        check_max_bytes(max_queue_bytes)
        if retention is not None and not isinstance(retention, Policy):
            raise TypeError(
                f"retention must be an alamos.retention.Policy (or None), not {retention!r}"
            )
        if isinstance(retention_interval, bool) or not retention_interval > 0:
            raise ValueError(f"retention_interval must be > 0 seconds (got {retention_interval!r})")
        if flush_interval <= 0 or metrics_interval <= 0 or report_interval <= 0:
            raise ValueError("flush_interval, metrics_interval and report_interval must be > 0")
        _check_stats(stats_interval, stats_attributes)
        return cls(
            key=key,
            level=coerce_filter(level),
            service=service if service is not None else key,
            node=node,
            sampler=coerce_sampler(sampler),
            exporters=tuple(exporters),
            db=db if db is not None else (os.environ.get(ENV_DB) or None),
            debug=debug,
            strict=strict,
            console=_console_default() if console is None else console,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_queue=max_queue,
            max_queue_bytes=max_queue_bytes,
            metrics_interval=metrics_interval,
            report_interval=report_interval,
            spool_dir=Path(spool_dir) if spool_dir is not None else _default_spool_dir(),
            ignore=check_ignore(ignore),
            process_metrics=bool(process_metrics),
            rules=coerce_rules(rules),
            stats_interval=None if stats_interval is None else float(stats_interval),
            stats_attributes=tuple(stats_attributes),
            retention=retention,
            retention_interval=float(retention_interval),
        )


def _check_stats(interval: float | None, attributes: Sequence[str]) -> None:
    if interval is not None and (
        isinstance(interval, bool)
        or not isinstance(interval, int | float)
        or not 0.001 <= interval <= 86_400 * 366
    ):
        raise ValueError(
            f"stats_interval must be a number of seconds from 0.001 to a year, or None "
            f"for no statistics (got {interval!r})"
        )
    if isinstance(attributes, str) or not all(isinstance(a, str) and a for a in attributes):
        raise ValueError(
            "stats_attributes must be a list of attribute names, e.g. ('bytes', 'rows') "
            f"(got {attributes!r})"
        )


def _default_spool_dir() -> Path:
    env = os.environ.get(ENV_SPOOL)
    if env:
        return Path(env)
    return Path.cwd() / ".alamos" / "spool"


def _console_default() -> bool:
    value = os.environ.get(ENV_CONSOLE, "").strip().lower()
    return value not in ("0", "false", "no", "off")
