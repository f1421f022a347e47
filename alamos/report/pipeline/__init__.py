"""alamos.report.pipeline: transport, from the hand-off to the exporters.

``collector`` (the worker: items to records, batches, pollers for metric and
report snapshots), ``delivery`` (one thread per background exporter: retry,
spool, replay), ``spool`` (the on-disk fallback), ``codec`` (records as spool
lines) and ``stats`` (``root.stats()``).  It imports only the ground floor
(:mod:`alamos.core`): it knows records and exporters, not spans, logs or the
experiment tree.
"""
