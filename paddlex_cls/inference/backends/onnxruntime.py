"""The ONNX Runtime backend (CPU): runs the folder's ``inference.onnx`` with the CPU execution provider."""
from __future__ import annotations

import numpy as np

from ...device import Device
from ...errors import WeightsError
from ..model_dir import onnx_file
from .base import OnnxBackend, require_cpu, require_packages


class Backend(OnnxBackend):
    """An ``onnxruntime.InferenceSession`` over ``inference.onnx``."""

    requires = (("onnxruntime", "onnx"),)

    def __init__(self, model_dir: str, device: Device, run_mode: str, num_threads: int, batch_size: int) -> None:
        require_cpu(device, run_mode)
        require_packages(type(self), run_mode)
        import onnxruntime as ort

        path = onnx_file(model_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1  # one graph at a time: parallelism is inside each operator
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf/... types for a bad file
            raise WeightsError(f"cannot load {path} with ONNX Runtime: {str(e).strip()[:500]}",
                               "re-export with -o Export.format=all; the file may be truncated or corrupt") from None
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]
