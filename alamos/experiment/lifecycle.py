"""Creating experiment trees: :func:`alamos.new`.

``new()`` reads the configuration (:mod:`~alamos.experiment.config`), builds
the pipeline (:mod:`~alamos.experiment.pipeline`) and the root.  Closing is
the root state's (:meth:`~alamos.experiment.root.RootState.close`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from alamos.core import process
from alamos.core.exporter import Exporter
from alamos.core.handoff import DEFAULT_MAX_BYTES
from alamos.experiment.config import Config
from alamos.experiment.experiment import Experiment
from alamos.experiment.pipeline import attach_root, build_pipeline, exporters_of
from alamos.experiment.retention import start_retention
from alamos.experiment.root import RootState, default_node
from alamos.experiment.rules import attach_rules
from alamos.metrics.exposition import add_process_collectors
from alamos.retention.policy import Policy

__all__ = ["new"]


def new(
    key: str,
    *,
    level: object = None,
    service: str | None = None,
    node: str | None = None,
    sampler: object = None,
    exporters: Sequence[Exporter] = (),
    db: str | None = None,
    debug: bool = False,
    strict: bool = False,
    console: bool | None = None,
    batch_size: int = 512,
    flush_interval: float = 0.5,
    max_queue: int = 100_000,
    max_queue_bytes: int = DEFAULT_MAX_BYTES,
    metrics_interval: float = 10.0,
    report_interval: float = 60.0,
    spool_dir: str | os.PathLike[str] | None = None,
    ignore: Sequence[type[BaseException]] = (),
    process_metrics: bool = True,
    rules: object = None,
    stats_interval: float | None = 60.0,
    stats_attributes: Sequence[str] = (),
    retention: Policy | None = None,
    retention_interval: float = 3600.0,
) -> Experiment:
    """Create the root of a new experiment tree.  See the README for every option."""
    config = Config.read(
        key,
        level=level,
        service=service,
        node=node,
        sampler=sampler,
        exporters=exporters,
        db=db,
        debug=debug,
        strict=strict,
        console=console,
        batch_size=batch_size,
        flush_interval=flush_interval,
        max_queue=max_queue,
        max_queue_bytes=max_queue_bytes,
        metrics_interval=metrics_interval,
        report_interval=report_interval,
        spool_dir=spool_dir,
        ignore=ignore,
        process_metrics=process_metrics,
        rules=rules,
        stats_interval=stats_interval,
        stats_attributes=stats_attributes,
        retention=retention,
        retention_interval=retention_interval,
    )
    state = RootState(
        level_filter=config.level,
        service=config.service,
        node=config.node if config.node is not None else default_node(),
        sampler=config.sampler,
        exporters=exporters_of(config),
        debug=config.debug,
        strict=config.strict,
        console=config.console,
    )
    build_pipeline(config, state)
    root = Experiment(state, key, None)
    root.trace.set_ignore(config.ignore)
    if config.process_metrics:
        add_process_collectors(state.registry)
    state.index[root.path] = root
    root._refresh()
    root._announce()
    attach_root(config, state, root)
    attach_rules(config, state, root)
    start_retention(config, state)
    state.track_process(node_given=config.node is not None)
    process.root_created(root)
    return root
