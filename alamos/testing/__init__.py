"""Test helpers: assert what instrumented code emitted (see the README's
"Testing your code").

:class:`Recorder` keeps every record in memory; the pytest plugin
(:mod:`alamos.testing.plugin`, loaded automatically) gives each test a fresh
one as the ``alamos_recorder`` fixture.
"""

from alamos.testing.recorder import LogFilters, Recorder, SpanFilters

__all__ = ["LogFilters", "Recorder", "SpanFilters"]
