"""Silencing two known-harmless Paddle messages at their source, and nothing else.

- "No ccache found": a UserWarning of ``paddle.utils.cpp_extension`` printed by every ``import paddle`` (it concerns
  compiling C++ extensions, which paddlex_cls never does).
- "When training, we now always track global mean and variance.": a UserWarning of Paddle's BatchNorm on the first
  training step of every run (informational; nothing to act on).
- "Paddle static graph(PIR) not support input out tensor for now!!!!!": a C++ glog line printed while a model with
  BatchNorm is traced for export; the export is correct. It is written to file descriptor 2 by C++, so the filter
  reads that descriptor through a pipe while the export runs and forwards every other line unchanged.
- While the static engine builds its programs and runs each the first time (``engine/steps/static.py``): that same
  line (its explicit running statistics and EMA updates), the executor's two start-up glog lines and oneDNN's version
  line, and a UserWarning of Paddle's own PIR backward pass ("Tensor do not have 'place' interface"); all
  informational. (Creating an inference predictor turns glog's info lines off for the whole process, which hid the
  start-up lines while the engine trial ran in the training process.)
"""
from __future__ import annotations

import os
import sys
import threading
import warnings
from contextlib import contextmanager
from typing import Iterator, Sequence

CCACHE_WARNING = r"No ccache found"
BATCHNORM_WARNING = r"When training, we now always track global mean and variance"
PIR_OUT_TENSOR_LINE = "Paddle static graph(PIR) not support input out tensor for now"
STATIC_BUILD_LINES = (PIR_OUT_TENSOR_LINE, "New Executor is Running", "pir interpreter is running by multi-thread mode",
                      "] oneDNN v")
PIR_PLACE_WARNING = r"Tensor do not have 'place' interface for pir graph mode"


def silence_import_warnings() -> None:
    """Ignore these two UserWarnings (only them); called before paddle is imported."""
    for message in (CCACHE_WARNING, BATCHNORM_WARNING):
        warnings.filterwarnings("ignore", message=message, category=UserWarning)


@contextmanager
def quiet_static_build() -> Iterator[None]:
    """Drop the static engine's build-time messages listed in the module docstring (and only them)."""
    with warnings.catch_warnings(), drop_stderr_lines(STATIC_BUILD_LINES):
        warnings.filterwarnings("ignore", message=PIR_PLACE_WARNING, category=UserWarning)
        yield


@contextmanager
def drop_stderr_lines(needles: Sequence[str] = (PIR_OUT_TENSOR_LINE,)) -> Iterator[None]:
    """Within the block, lines written to fd 2 (by Python or C++) that contain a needle are dropped."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreters): nothing to filter
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward() -> None:
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not any(n.encode() in line for n in needles):
                    os.write(saved, line)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the thread sees EOF and ends
        thread.join(timeout=5)
        os.close(saved)
