"""alamos.report: the export side, after the instruments.

* :mod:`alamos.report.pipeline`: transport (collector, deliveries, spool);
* :mod:`alamos.report.sql`: storage (the SQL exporter and its parts);
* :mod:`alamos.report.query`: reading traces back from the database;
* :mod:`alamos.report.providers`: report providers (``exp.attach``).

Each imports only the ground floor (:mod:`alamos.core`), never the
instruments or the experiment tree; ``query`` reads through ``sql``.
"""
