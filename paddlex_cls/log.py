"""The one ``paddlex_cls`` logger: INFO to stderr on rank 0 (WARNING elsewhere), optionally also to a file."""
from __future__ import annotations

import logging
import os
import sys

LOGGER_NAME = "paddlex_cls"
_FORMAT = "[%(asctime)s] paddlex_cls %(levelname)s: %(message)s"


def rank() -> int:
    """This process' rank under paddle.distributed.launch (0 when not distributed)."""
    return int(os.environ.get("PADDLE_TRAINER_ID", "0") or 0)


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
    logger = logging.getLogger(LOGGER_NAME)
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
    logging.getLogger(LOGGER_NAME).addHandler(handler)
    return handler
