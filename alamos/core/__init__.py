"""The ground floor: what every other part of alamos builds on.

It imports nothing else from alamos (an import-linter contract says so):

* :mod:`~alamos.core.level`: :class:`Level`, its parsing, the one list of log
  level names;
* :mod:`~alamos.core.context`: :class:`SpanContext` and the current-span variable;
* :mod:`~alamos.core.records`: the frozen record classes;
* :mod:`~alamos.core.ids`: id generation and formatting;
* :mod:`~alamos.core.safe`: repr, str and exception text that never raise;
* :mod:`~alamos.core.json`: JSON-safe data with the one NaN rule, ``clean_text``;
* :mod:`~alamos.core.attributes`: attribute coercion and limits;
* :mod:`~alamos.core.exporter`: the exporter protocol;
* :mod:`~alamos.core.handoff`: the bounded hand-off queue with the one ``put``;
* :mod:`~alamos.core.scope`: the small value each instrument holds;
* :mod:`~alamos.core.errors`: every public error;
* :mod:`~alamos.core.process`: process-wide state (fork and exit hooks);
* :mod:`~alamos.core.codegen`: generated functions visible to tracebacks.
"""
