"""alamos.report."""
