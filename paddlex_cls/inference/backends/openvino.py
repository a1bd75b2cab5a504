"""The OpenVINO backend (CPU): runs the folder's ``inference.onnx``.

OpenVINO runs in bfloat16 by default on CPUs that have it (AVX-512 BF16, AMX), which changes scores by ~1e-5 and
can change a top-1; ``openvino`` therefore asks for float32, and ``openvino_bf16`` is the explicit bf16 choice.
"""
from __future__ import annotations

import numpy as np

from ...device import Device
from ...errors import WeightsError
from ..model_dir import onnx_file
from .base import OnnxBackend, require_cpu, require_packages

PRECISION = {"openvino": "f32", "openvino_bf16": "bf16"}


class Backend(OnnxBackend):
    """A compiled OpenVINO model over ``inference.onnx``, one synchronous infer request."""

    requires = (("openvino", "openvino"),)

    def __init__(self, model_dir: str, device: Device, run_mode: str, num_threads: int, batch_size: int) -> None:
        require_cpu(device, run_mode)
        require_packages(type(self), run_mode)
        import openvino as ov

        path = onnx_file(model_dir)
        config = {"INFERENCE_NUM_THREADS": num_threads, "INFERENCE_PRECISION_HINT": PRECISION[run_mode],
                  "PERFORMANCE_HINT": "LATENCY"}  # one request at a time: all threads on it
        try:
            self.compiled = ov.Core().compile_model(path, "CPU", config)
        except Exception as e:  # OpenVINO raises RuntimeError subclasses of its own for a bad file
            raise WeightsError(f"cannot load {path} with OpenVINO: {str(e).strip()[:500]}",
                               "re-export with -o Export.format=all; the file may be truncated or corrupt") from None
        self.request = self.compiled.create_infer_request()
        self.output = self.compiled.output(0)

    def run(self, batch: np.ndarray) -> np.ndarray:
        result = self.request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.array(result[self.output])  # a copy: the request reuses its output buffer
