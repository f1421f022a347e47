"""alamos.report.pipeline: transport, from the hand-off to the exporters.

``collector`` (the worker: items to records, batches, pollers for metric and
report snapshots), ``delivery`` (one thread per background exporter: submit,
flush, close; built on ``delivery_state``, the batches and their settling,
``delivery_export``, isolating rejected records, and ``delivery_thread``,
retry, backoff and replay), ``spool`` (the on-disk fallback, its file format
in ``spool_format``), ``dead_letters`` (records refused for good),
``codec`` (records as spool lines) and ``stats`` (``root.stats()``).  It
imports only the ground floor (:mod:`alamos.core`): it knows records and
exporters, not spans, logs or the experiment tree.
"""
