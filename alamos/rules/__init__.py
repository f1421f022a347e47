"""alamos.rules: recording rules that turn finished spans into Prometheus
series, live on the collector's worker, and backfill the same series from
stored spans.

It sits beside the instruments and the export side: it imports the ground
floor (:mod:`alamos.core`) and, to backfill, the storage side
(:mod:`alamos.report.sql`); the tree (:mod:`alamos.experiment`) wires it to
the collector as an observer.
"""
