"""SIGTERM and SIGINT end a run cleanly: an exception unwinds the current step, so temp files and half-written
checkpoint folders are removed on the way out, and the CLI exits 143 or 130 without Paddle's C++ crash report.

Paddle installs its own C-level handlers when it is imported (they print a "FatalError: Termination signal"
report); ``install()`` is called again right after paddle is imported to take the signals back.
"""
from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Optional


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM (a BaseException, like KeyboardInterrupt, so no ``except Exception``
    swallows it)."""

    exit_code = 143


def _on_sigterm(signum: int, frame: Optional[FrameType]) -> None:
    raise Terminated()


def install() -> None:
    """Route SIGTERM to ``Terminated`` and SIGINT to KeyboardInterrupt (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if "paddle" in sys.modules:
            sys.modules["paddle"].disable_signal_handler()
    except (AttributeError, RuntimeError):
        pass
    signal.signal(signal.SIGTERM, _on_sigterm)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a shell's background job ignores SIGINT: keep it so
        signal.signal(signal.SIGINT, signal.default_int_handler)
