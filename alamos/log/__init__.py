"""alamos.log: per-experiment logging on loguru (see ``logger.py``)."""

from alamos.log.capture import Capture, capture
from alamos.log.logger import Logger, NoopLogger

__all__ = ["Capture", "Logger", "NoopLogger", "capture"]
