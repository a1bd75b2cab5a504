"""The ``paddle.inference`` backend: native kernels, oneDNN (``mkldnn``, ``mkldnn_bf16``) or TensorRT on GPU."""
from __future__ import annotations

import numpy as np

from ...device import Device
from ...errors import ConfigError
from ..model_dir import model_files

_TRT_PRECISION = {"trt_fp32": "Float32", "trt_fp16": "Half", "trt_int8": "Int8"}


class Backend:
    """A ``paddle.inference`` predictor over an exported folder."""

    def __init__(self, model_dir: str, device: Device, run_mode: str, num_threads: int, batch_size: int):
        from paddle import inference

        model_file, params_file = model_files(model_dir)
        config = inference.Config(model_file, params_file)
        config.disable_glog_info()
        card = device.ids[0] if device.ids else 0
        if device.type == "gpu":
            config.enable_use_gpu(500, card)
            if run_mode in _TRT_PRECISION:
                config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=batch_size, min_subgraph_size=3,
                                              precision_mode=getattr(inference.PrecisionType,
                                                                     _TRT_PRECISION[run_mode]))
        elif device.type == "cpu":
            if run_mode in _TRT_PRECISION:
                raise ConfigError(f"run_mode {run_mode} needs a GPU",
                                  "use -o Predict.kernel_option.run_mode=mkldnn on CPU")
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(num_threads)
            if run_mode.startswith("mkldnn"):
                config.enable_mkldnn()
                # Paddle 3.3's PIR in-place pass with oneDNN reuses a buffer a second consumer still reads:
                # (x - mean) / std in ConvNeXt's channel LayerNorm came out wrong (relative error 1.8) with it
                config.delete_pass("inplace_pass")
                if run_mode == "mkldnn_bf16":
                    config.enable_mkldnn_bfloat16()
            else:
                config.disable_mkldnn()
        else:
            config.enable_custom_device(device.type, card)
        self.predictor = inference.create_predictor(config)
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities [N, C] of a preprocessed NCHW batch."""
        self.input.reshape(list(batch.shape))
        self.input.copy_from_cpu(np.ascontiguousarray(batch, dtype=np.float32))
        self.predictor.run()
        return self.output.copy_to_cpu()
