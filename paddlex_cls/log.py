"""The one ``paddlex_cls`` logger: INFO to stderr on rank 0 (WARNING elsewhere), optionally also to a file."""
from __future__ import annotations

import logging
import os
import sys

from .distributed_env import rank

LOGGER_NAME = "paddlex_cls"
logger = logging.getLogger(LOGGER_NAME)  # the one logger of the package: ``from ..log import logger``
_FORMAT = "[%(asctime)s] paddlex_cls %(levelname)s: %(message)s"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (pytest and notebooks swap it), not the one seen at setup."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def setup_logging(verbose: bool = False) -> logging.Logger:
    """Configure the logger once: rank 0 logs INFO (DEBUG if verbose), other ranks only warnings."""
    if not any(getattr(h, "_paddlex_cls", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(_FORMAT, "%Y/%m/%d %H:%M:%S"))
        handler._paddlex_cls = True
        logger.addHandler(handler)
        logger.propagate = False
    level = logging.DEBUG if verbose else logging.INFO
    logger.setLevel(level if rank() == 0 else logging.WARNING)
    return logger


def add_file_handler(path: str) -> logging.Handler:
    """Also log to ``path`` (e.g. train.log); returns the handler so the caller can remove it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_FORMAT, "%Y/%m/%d %H:%M:%S"))
    logger.addHandler(handler)
    return handler


def remove_handler(handler: logging.Handler) -> None:
    """Detach and close a handler added by ``add_file_handler``."""
    logger.removeHandler(handler)
    handler.close()
