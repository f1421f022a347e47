"""alamos.metrics."""
