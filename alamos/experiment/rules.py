"""Wiring recording rules into a tree (``alamos.new(..., rules=...)``).

The rules run in a :class:`~alamos.rules.live.RuleEngine`, an observer of
the tree's collector: on the worker, never on an instrumented thread.  A
tree given rules always has a collector, even with no background exporter
(no exporters at all, or only the synchronous test Recorder): its spans are
then queued for the worker as with a database, and the rules' series are on
``/metrics`` all the same.  The engine is also:

* a collector of the tree's Prometheus registry (``root.registry``);
* a source of metric snapshots: the changed series every
  ``metrics_interval``, every series at each flush and in the last
  snapshot at close (after the metric snapshots).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from alamos.report.pipeline.collector import Observer, Poller
from alamos.rules import Rule, RuleEngine, RuleSet

if TYPE_CHECKING:
    from alamos.experiment.config import Config
    from alamos.experiment.experiment import Experiment
    from alamos.experiment.root import RootState

__all__ = ["attach_rules", "coerce_rules"]


def coerce_rules(rules: object) -> RuleSet | None:
    """The ``rules=`` option: None, a :class:`~alamos.rules.RuleSet`, a
    sequence of :class:`~alamos.rules.Rule`, or the path of a TOML file.
    Raises :class:`~alamos.core.errors.RulesError` for bad rules."""
    if rules is None:
        return None
    if isinstance(rules, RuleSet):
        return rules if len(rules) else None
    if isinstance(rules, str | os.PathLike):
        loaded = RuleSet.from_toml(os.fspath(rules))
        return loaded if len(loaded) else None
    if isinstance(rules, Rule):
        return RuleSet([rules])
    if isinstance(rules, Sequence) and all(isinstance(r, Rule) for r in rules):
        return RuleSet(rules) if rules else None
    raise TypeError(
        f"invalid rules {rules!r}: give a list of alamos.rules.Rule, an alamos.rules.RuleSet "
        "or the path of a TOML rules file"
    )


def attach_rules(config: Config, state: RootState, root: Experiment) -> RuleEngine | None:
    """Run ``config.rules`` on the tree's worker (see the module docstring)."""
    collector = state.collector
    if config.rules is None or collector is None:
        return None
    engine = RuleEngine(config.rules, path=root.path)
    try:
        root.registry.register(engine)
    except ValueError as exc:
        raise ValueError(
            f"a recording rule's metric clashes with a metric of the tree: {exc}; "
            "rename the rule's metric"
        ) from None
    collector.add_observer(Observer("rules", engine.observe))
    collector.add_poller(
        Poller(
            "rules at flush",
            math.inf,
            lambda: engine.full(state.service, state.node),
            at_flush=True,
        )
    )
    collector.add_poller(
        Poller("rules", config.metrics_interval, lambda: engine.changed(state.service, state.node))
    )
    previous = state.final_snapshot
    state.final_snapshot = lambda: [*previous(), *engine.full(state.service, state.node)]
    return engine
