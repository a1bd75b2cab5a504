"""Silencing two known-harmless Paddle messages at their source, and nothing else.

- "No ccache found": a UserWarning of ``paddle.utils.cpp_extension`` printed by every ``import paddle`` (it concerns
  compiling C++ extensions, which paddlex_cls never does).
- "Paddle static graph(PIR) not support input out tensor for now!!!!!": a C++ glog line printed while a model with
  BatchNorm is traced for export; the export is correct. It is written to file descriptor 2 by C++, so the filter
  reads that descriptor through a pipe while the export runs and forwards every other line unchanged.
"""
from __future__ import annotations

import os
import sys
import threading
import warnings
from contextlib import contextmanager
from typing import Iterator, Sequence

CCACHE_WARNING = r"No ccache found"
PIR_OUT_TENSOR_LINE = "Paddle static graph(PIR) not support input out tensor for now"


def silence_import_warnings() -> None:
    """Ignore the ccache warning (only it); called before paddle is imported."""
    warnings.filterwarnings("ignore", message=CCACHE_WARNING, category=UserWarning)


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
