"""Static graph mode with oneDNN kernels and the serial executor, entered only around program building and runs.

Measured on Paddle 3.3: these flags take effect when set with ``paddle.set_flags`` after ``import paddle`` (no
environment variable or re-exec needed); a program picks its kernels when the executor first prepares it. They
must not stay set for the whole process: a ``paddle.jit.to_static`` Layer run in dygraph (``Train.dy2st``) then
fails ("dst_tensor shall be defined") or segfaults. So they are set around static building and runs only.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import paddle

#: oneDNN kernels for every op that has one (both spellings of the flag); one executor thread (the PIR
#: interpreter's own scheduling threads oversubscribe a 2-core machine); no PIR in-place pass (it let an op
#: overwrite a tensor that a gradient op read later: BatchNorm weights silently stopped learning; same peak memory).
ONEDNN_FLAGS = {"FLAGS_use_onednn": True, "FLAGS_use_mkldnn": True, "FLAGS_new_executor_serial_run": True,
                "FLAGS_pir_apply_inplace_pass": False}


@contextlib.contextmanager
def static_onednn(scope=None, kernels: bool = True) -> Iterator[None]:
    """Enter static mode with :data:`ONEDNN_FLAGS` (and ``scope`` as the global scope, if given); restore on exit.

    Args:
        kernels: False runs native kernels (startup programs: variables oneDNN's ``full`` creates carry a oneDNN
            memory layout that later ops read as undefined).
    """
    was_dynamic = paddle.in_dynamic_mode()
    previous = paddle.get_flags(list(ONEDNN_FLAGS))
    paddle.set_flags(ONEDNN_FLAGS if kernels else dict(ONEDNN_FLAGS, FLAGS_use_onednn=False, FLAGS_use_mkldnn=False))
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
