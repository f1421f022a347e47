"""alamos.trace."""
