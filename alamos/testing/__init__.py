"""Test helpers: assert what instrumented code emitted (see the README)."""

from alamos.testing.recorder import Recorder

__all__ = ["Recorder"]
