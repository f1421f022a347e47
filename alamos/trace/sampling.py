"""Samplers decide, when a trace starts, whether its spans are recorded.

A span that is not sampled is still created and made current, so its ids
propagate to children and across processes (``traceparent`` carries the
sampled flag), but it builds no record and costs no export.

* :data:`ALWAYS` and :data:`NEVER`;
* :func:`ratio` keeps a fraction of traces, decided from the trace id so that
  every process in a distributed trace makes the same choice;
* :func:`parent_based` follows the parent's decision when there is a parent
  (local or remote) and asks another sampler for root spans.  The default is
  ``parent_based(ALWAYS)``, as in OpenTelemetry.

``sampler=`` on :func:`alamos.new` also accepts the strings ``"always"``,
``"never"``, ``"parent"`` and a float in [0, 1] (a ratio).
"""

from __future__ import annotations

import attrs

__all__ = [
    "ALWAYS",
    "DEFAULT",
    "FULL",
    "NEVER",
    "Sampler",
    "coerce_sampler",
    "parent_based",
    "ratio",
]


@attrs.frozen(slots=True)
class Sampler:
    """A sampling decision.  ``root`` decides for spans without a parent."""

    name: str
    threshold: int
    """Root spans are sampled when the low 64 bits of the trace id are below it."""
    follow_parent: bool = True

    def sample(self, trace_id: int, parent_sampled: bool | None) -> bool:
        if parent_sampled is not None and self.follow_parent:
            return parent_sampled
        return (trace_id & 0xFFFFFFFFFFFFFFFF) < self.threshold


#: The threshold of a sampler that keeps every trace (all 64 low bits pass).
FULL = 1 << 64

ALWAYS = Sampler("always", FULL, follow_parent=False)
NEVER = Sampler("never", 0, follow_parent=False)


def ratio(fraction: float) -> Sampler:
    """Sample ``fraction`` of traces, consistently by trace id (no parent rule)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"sampling ratio must be in [0, 1], got {fraction!r}")
    return Sampler(f"ratio({fraction})", int(fraction * FULL), follow_parent=False)


def parent_based(root: Sampler = ALWAYS) -> Sampler:
    """Follow the parent's decision; use ``root`` for spans with no parent."""
    return Sampler(f"parent_based({root.name})", root.threshold, follow_parent=True)


DEFAULT = parent_based(ALWAYS)


def coerce_sampler(value: object) -> Sampler:
    if value is None:
        return DEFAULT
    if isinstance(value, Sampler):
        return value
    if isinstance(value, str):
        named = {"always": ALWAYS, "never": NEVER, "parent": DEFAULT, "parent_based": DEFAULT}
        if value.lower() in named:
            return named[value.lower()]
    if isinstance(value, float | int) and not isinstance(value, bool):
        return ratio(float(value))
    raise ValueError(
        f"invalid sampler {value!r}: use alamos.sampling.ALWAYS, NEVER, ratio(p), "
        "parent_based(...), or 'always' / 'never' / 'parent' / a float ratio"
    )
