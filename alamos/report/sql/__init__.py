"""alamos.report.sql: the storage side.  Records into SQLite or PostgreSQL.

:class:`SQLExporter` is the public exporter; the modules below it are its
parts: ``schema`` (the tables, and the record field each column stores),
``migrate`` (creating and upgrading them: the schema's versions), ``rows``
(records to rows), ``coerce`` (hostile values made storable), ``writers``
(multi-row INSERT for SQLite, COPY for PostgreSQL); ``exporter`` also
checks the URLs (:func:`normalize_url`).
It imports the ground floor (:mod:`alamos.core`) and nothing from the
instruments or the pipeline.
"""

from alamos.report.sql.exporter import SUPPORTED_URLS, SQLExporter, normalize_url

__all__ = ["SUPPORTED_URLS", "SQLExporter", "normalize_url"]
