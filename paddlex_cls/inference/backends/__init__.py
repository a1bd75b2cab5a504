"""Inference backends, chosen by run mode. Plain data here: a backend module is imported only when used.

A backend is a ``base.Backend`` subclass named ``Backend`` in its module: ``Backend(model_dir, device, run_mode,
num_threads, batch_size)`` with ``run(batch: float32 NCHW) -> probabilities [N, C]`` and a class method
``unavailable(model_dir, device, run_mode)`` saying why it cannot run here (or None).

| run mode | backend | runs | precision |
|---|---|---|---|
| ``paddle`` | paddle.inference, oneDNN off (PaddleX's meaning) | Paddle files | fp32 |
| ``mkldnn`` | paddle.inference with oneDNN (the CPU default) | Paddle files | fp32 |
| ``mkldnn_bf16`` | paddle.inference with oneDNN bf16 | Paddle files | bf16 |
| ``trt_fp32``, ``trt_fp16``, ``trt_int8`` | paddle.inference with TensorRT (GPU) | Paddle files | as named |
| ``onnxruntime`` | ONNX Runtime, CPU provider | inference.onnx | fp32 |
| ``openvino`` | OpenVINO CPU, f32 precision hint | inference.onnx | fp32 |
| ``openvino_bf16`` | OpenVINO CPU, bf16 precision hint | inference.onnx | bf16 |
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, Tuple

from ...device import Device

_PADDLE = "paddlex_cls.inference.backends.paddle"
# run mode -> module holding its ``Backend``
RUN_MODES: Dict[str, str] = {
    "paddle": _PADDLE,
    "mkldnn": _PADDLE,
    "mkldnn_bf16": _PADDLE,
    "trt_fp32": _PADDLE,
    "trt_fp16": _PADDLE,
    "trt_int8": _PADDLE,
    "onnxruntime": "paddlex_cls.inference.backends.onnxruntime",
    "openvino": "paddlex_cls.inference.backends.openvino",
    "openvino_bf16": "paddlex_cls.inference.backends.openvino",
}
# What the default run mode (``run_mode: null``) is, per device type: the first that can run the folder. oneDNN is
# PaddleX's CPU default; a folder holding only inference.onnx falls back to the ONNX runtimes.
DEFAULT_RUN_MODES: Dict[str, Tuple[str, ...]] = {
    "cpu": ("mkldnn", "paddle", "onnxruntime", "openvino"),
}
OTHER_DEVICES_DEFAULT = ("paddle",)
# Candidates of use_hpip's measured choice: every float32 run mode a CPU can have (bf16 stays an explicit choice).
HPI_CANDIDATES: Dict[str, Tuple[str, ...]] = {
    "cpu": ("mkldnn", "onnxruntime", "openvino"),
}


def backend_class(run_mode: str) -> Any:
    """The ``Backend`` class serving ``run_mode`` (a key of RUN_MODES; the schema checks it first)."""
    return importlib.import_module(RUN_MODES[run_mode]).Backend


def unavailable(run_mode: str, model_dir: str, device: Device) -> str:
    """Why ``run_mode`` cannot run ``model_dir`` on ``device`` here, or "" when it can."""
    return backend_class(run_mode).unavailable(model_dir, device, run_mode) or ""


def default_run_mode(model_dir: str, device: Device) -> str:
    """The fastest safe run mode that can run the folder (the first available of ``DEFAULT_RUN_MODES``)."""
    modes = DEFAULT_RUN_MODES.get(device.type, OTHER_DEVICES_DEFAULT)
    for mode in modes:
        if not unavailable(mode, model_dir, device):
            return mode
    return modes[0]  # its backend raises the clear error (no model files, ...)
