"""alamos.experiment."""
