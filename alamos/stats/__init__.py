"""alamos.stats: windowed span statistics (count, errors, mean/m2, min/max,
sum and a quantile sketch per path, name and status and window), kept live
on the collector's worker and merged exactly across windows, processes and
nodes.

It sits beside the instruments and the export side: it imports the ground
floor (:mod:`alamos.core`) and, to read stored statistics back, the storage
side (:mod:`alamos.report.sql`); the tree (:mod:`alamos.experiment`) wires it
to the collector as an observer.
"""
