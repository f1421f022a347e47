"""alamos.log."""
