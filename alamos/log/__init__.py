"""alamos.log: per-experiment logging on loguru (see ``logger.py``), and
:func:`capture` of plain loguru calls into a tree."""

from alamos.log.capture import Capture, capture
from alamos.log.logger import Logger

__all__ = ["Capture", "Logger", "capture"]
