"""One candidate of ``use_hpip``'s trial (``fastest.py``) in a process of its own, driven line by line on stdin.

Backends timed in one process disturb each other: ONNX Runtime's threads spin after each run, and OpenMP's (Paddle)
and TBB's (OpenVINO) stay awake for a while, so the next backend shares the cores with them. Measured in one
process, taking turns (PP-LCNet_x1_0, batch 1, 2 threads, AMD EPYC): Paddle's oneDNN predictor 10.2 ms per run
against 5.5 ms alone, ONNX Runtime 3.8 against 2.7 ms. Here one backend has the process to itself.

    python -m paddlex_cls.inference.backend_timer RUN_MODE MODEL_DIR DEVICE THREADS BATCH C H W

Answers one line: ``ready``, or ``error <message>`` when the backend cannot be built (then it exits). Then per
``time N`` line on stdin: the median seconds of N runs, after one untimed run (it absorbs the wake-up of the
backend's threads); ``quit`` (or the end of stdin) ends it. Library output goes to stderr: stdout is the protocol's.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Callable, List


def serve(args: List[str], reply: Callable[[str], None]) -> None:
    import numpy as np

    from ..device import parse_device
    from ..errors import PaddlexClsError
    from .backends import backend_class

    mode, model_dir, device, threads, batch = args[0], args[1], args[2], int(args[3]), int(args[4])
    shape = tuple(int(v) for v in args[5:])
    try:
        backend = backend_class(mode)(model_dir, parse_device(device), mode, threads, batch)
        data = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
        backend.run(data)  # oneDNN and OpenVINO build their kernels on the first run
    except PaddlexClsError as e:
        reply(f"error {e.message}")
        return
    reply("ready")
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] != "time":
            return
        backend.run(data)
        seconds = []
        for _ in range(int(words[1])):
            start = time.perf_counter()
            backend.run(data)
            seconds.append(time.perf_counter() - start)
        reply(f"{statistics.median(seconds):.9f}")


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what the libraries print, from Python or C, goes to stderr

    def reply(text: str) -> None:
        protocol.write(text.replace("\n", " ") + "\n")
        protocol.flush()

    serve(sys.argv[1:], reply)


if __name__ == "__main__":
    main()
