"""SIGTERM and SIGINT end a run cleanly: an exception unwinds the current step, so temp files and half-written
checkpoint folders are removed on the way out, and the CLI exits 143 or 130 without Paddle's C++ crash report.

Paddle installs its own C-level handlers when it is imported (they print a "FatalError: Termination signal"
report); ``install()`` is called again right after paddle is imported to take the signals back.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from types import FrameType
from typing import Iterator, Optional


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


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """SIGTERM and SIGINT wait until the block is done, then act as they would have: for steps that must not be cut
    in half (the two renames that swap a checkpoint or export folder in). Main thread only; elsewhere a plain block.

    The Python-level handlers are swapped for one that only notes the signal (blocking the signal with
    ``pthread_sigmask`` would not do: it blocks it in this thread only, and another thread then takes it).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list = []
    # a handler set outside Python (getsignal gives None) cannot be put back: leave that signal alone
    previous = {s: h for s in (signal.SIGTERM, signal.SIGINT) if (h := signal.getsignal(s)) is not None}
    for signum in previous:
        signal.signal(signum, lambda signum, frame: noted.append(signum))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if noted:
            handler = previous[noted[0]]
            if callable(handler):
                handler(noted[0], None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(noted[0])
