"""Inference backends, chosen by run mode. Plain data here: a backend module is imported only when used.

A backend is a class ``Backend(model_dir, device, run_mode, num_threads, batch_size)`` with
``run(batch: float32 NCHW) -> probabilities [N, C]``.
"""
from __future__ import annotations

import importlib
from typing import Any

# run mode -> module holding its ``Backend``
RUN_MODES = {
    "paddle": "paddlex_cls.inference.backends.paddle",
    "mkldnn": "paddlex_cls.inference.backends.paddle",
    "mkldnn_bf16": "paddlex_cls.inference.backends.paddle",
    "trt_fp32": "paddlex_cls.inference.backends.paddle",
    "trt_fp16": "paddlex_cls.inference.backends.paddle",
    "trt_int8": "paddlex_cls.inference.backends.paddle",
}


def backend_class(run_mode: str) -> Any:
    """The ``Backend`` class serving ``run_mode`` (a key of RUN_MODES; the schema checks it first)."""
    return importlib.import_module(RUN_MODES[run_mode]).Backend
