"""alamos.retention: a retention policy (TTLs, the last N traces per
handler, errors and slowest kept longer, holds) and the garbage collection
that applies it to an alamos database in short batches.

It sits beside the export side: it imports the ground floor
(:mod:`alamos.core`) and the storage side (:mod:`alamos.report.sql`); the
tree (:mod:`alamos.experiment`) can run it in the background.
"""
