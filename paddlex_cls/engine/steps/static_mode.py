"""Static graph mode with oneDNN kernels and the serial executor, entered only around program building and runs.

Measured on Paddle 3.3: these flags take effect when set with ``paddle.set_flags`` after ``import paddle`` (no
environment variable or re-exec needed); a program picks its kernels when the executor first prepares it. Dygraph
ignores them, but restoring them keeps every other path of the process (dygraph steps, ``jit.save``) exactly as
it was.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import paddle

#: oneDNN kernels for every op that has one (both spellings of the flag), and one executor thread: the PIR
#: interpreter's own scheduling threads oversubscribe a 2-core machine.
ONEDNN_FLAGS = {"FLAGS_use_onednn": True, "FLAGS_use_mkldnn": True, "FLAGS_new_executor_serial_run": True}


@contextlib.contextmanager
def static_onednn(scope=None) -> Iterator[None]:
    """Enter static mode with :data:`ONEDNN_FLAGS` (and ``scope`` as the global scope, if given); restore on exit."""
    was_dynamic = paddle.in_dynamic_mode()
    previous = paddle.get_flags(list(ONEDNN_FLAGS))
    paddle.set_flags(ONEDNN_FLAGS)
    if was_dynamic:
        paddle.enable_static()
    try:
        if scope is None:
            yield
        else:
            # the executor writes the LR scheduler's value into the global scope: make that the engine's scope
            with paddle.static.scope_guard(scope):
                yield
    finally:
        if was_dynamic:
            paddle.disable_static()
        paddle.set_flags(previous)


def onednn_enabled() -> bool:
    """Whether static programs run with oneDNN kernels (tests switch it off to compare with native kernels)."""
    return bool(ONEDNN_FLAGS["FLAGS_use_onednn"])
