"""The ``paddle.inference`` backend: native kernels, oneDNN (``mkldnn``, ``mkldnn_bf16``) or TensorRT on GPU.

On CPU the predictor is configured as PaddleX 3.7 configures it (new IR and executor, optimisation level 3, memory
reuse, a oneDNN cache of 10 input shapes), except that the thread count is ours (all available cores by default,
not PaddleX's fixed 10, which oversubscribes small machines), and that its buffers are not handed back to the kernel
between runs (see :class:`Backend`).
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import numpy as np

from ...device import Device
from ...errors import ConfigError, WeightsError
from ...runtime import keep_freed_host_memory
from ..model_dir import has_paddle_model, model_files
from .base import Backend as BaseBackend

_TRT_PRECISION = {"trt_fp32": "Float32", "trt_fp16": "Half", "trt_int8": "Int8"}
MKLDNN_CACHE_CAPACITY = 10  # input shapes whose oneDNN primitives are kept (batch sizes vary at a folder's end)
#: CPU predictors for batches up to this size keep every intermediate tensor between runs (see Backend).
KEEP_BUFFERS_MAX_BATCH = 8
_EAGER_DELETION = "FLAGS_eager_delete_tensor_gb"


def _configure_cpu(config, run_mode: str, num_threads: int) -> None:
    if run_mode in _TRT_PRECISION:
        raise ConfigError(f"run_mode {run_mode} needs a GPU", "use the default run mode (oneDNN) on CPU")
    config.disable_gpu()
    config.set_cpu_math_library_num_threads(num_threads)
    if run_mode.startswith("mkldnn"):
        config.enable_mkldnn()
        config.set_mkldnn_cache_capacity(MKLDNN_CACHE_CAPACITY)
        # Paddle 3.3's PIR in-place pass with oneDNN reuses a buffer a second consumer still reads:
        # (x - mean) / std in ConvNeXt's channel LayerNorm came out wrong (relative error 1.8) with it
        config.delete_pass("inplace_pass")
        if run_mode == "mkldnn_bf16":
            config.enable_mkldnn_bfloat16()
    else:
        config.disable_mkldnn()


@contextlib.contextmanager
def _eager_deletion_off() -> Iterator[None]:
    """Paddle's executor without its garbage collector, for the executors created inside (restored on exit)."""
    import paddle

    previous = paddle.get_flags([_EAGER_DELETION])
    paddle.set_flags({_EAGER_DELETION: -1.0})
    try:
        yield
    finally:
        paddle.set_flags(previous)


def _set_math_threads(count: int) -> None:
    import paddle

    paddle.base.core.set_num_threads(count)


def _configure_gpu(config, inference, run_mode: str, card: int, batch_size: int) -> None:
    import paddle

    if not paddle.is_compiled_with_cuda():
        raise ConfigError("device gpu asked for, but this Paddle build has no CUDA support",
                          "use device cpu, or install paddlepaddle-gpu (see README)")
    config.enable_use_gpu(500, card)
    if run_mode in _TRT_PRECISION:
        precision = getattr(inference.PrecisionType, _TRT_PRECISION[run_mode])
        config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=batch_size, min_subgraph_size=3,
                                      precision_mode=precision)


class Backend(BaseBackend):
    """A ``paddle.inference`` predictor over an exported folder.

    On CPU two allocator settings take a third off a small model's run (measured, ``bench/predict_speed.py`` and
    docs/inference.md): Paddle's executor frees each intermediate tensor after its last reader on a thread of its
    own (which competes with the math threads) and glibc hands the larger buffers back to the kernel, so every run
    page-faults them in again (about 390 faults per PP-LCNet_x1_0 run). The process keeps freed memory for reuse
    (``keep_freed_host_memory``, process-wide), and a predictor whose configured batch size and first batch both
    have at most :data:`KEEP_BUFFERS_MAX_BATCH` images keeps its tensors between runs (the executor reads the flag
    when it creates its collector, at the first run). The kept tensors grow to the largest batch run: 20-30 MB at
    batch 8 for PP-LCNet_x1_0 and ResNet18, 150-300 MB at batch 32, where there was nothing left to gain.
    """

    def __init__(self, model_dir: str, device: Device, run_mode: str, num_threads: int, batch_size: int) -> None:
        from paddle import inference

        model_file, params_file = model_files(model_dir)
        config = inference.Config(model_file, params_file)
        config.disable_glog_info()
        card = device.ids[0] if device.ids else 0
        self._cpu_threads = num_threads if device.type == "cpu" else None
        # the first run also checks its own batch (a one-image warm-up before larger batches must not keep them)
        self._keep_buffers_at_first_run = device.type == "cpu" and batch_size <= KEEP_BUFFERS_MAX_BATCH
        if device.type == "cpu":
            _configure_cpu(config, run_mode, num_threads)
            keep_freed_host_memory()
        elif device.type == "gpu":
            _configure_gpu(config, inference, run_mode, card, batch_size)
        else:
            config.enable_custom_device(device.type, card)
        config.enable_new_ir(True)
        config.enable_new_executor()
        config.set_optimization_level(3)
        config.enable_memory_optim()
        try:
            self.predictor = inference.create_predictor(config)
        except (RuntimeError, ValueError, OSError) as e:  # Paddle's errors for unreadable program/params files
            raise WeightsError(f"cannot load the Paddle model in {model_dir}: {str(e).strip()[:500]}",
                               "re-export the model; the files may be truncated or from another Paddle") from None
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.input.reshape(list(batch.shape))
        self.input.copy_from_cpu(np.ascontiguousarray(batch, dtype=np.float32))
        if self._keep_buffers_at_first_run and len(batch) <= KEEP_BUFFERS_MAX_BATCH:
            with _eager_deletion_off():
                self.predictor.run()
        else:
            self.predictor.run()
        self._keep_buffers_at_first_run = False
        if self._cpu_threads:
            # Paddle's predictor sets the calling thread's math threads to 1 after every run (for servers that
            # embed it); a trainer evaluating through it would train on one core from then on (measured: the
            # static engine's ResNet18 step 3.5 s -> 5.7 s after its trial's eval check). Leave it at ours.
            _set_math_threads(self._cpu_threads)
        return self.output.copy_to_cpu()

    @classmethod
    def unavailable(cls, model_dir: str, device: Device, run_mode: str) -> Optional[str]:
        if not has_paddle_model(model_dir):
            return "no Paddle model files"
        if run_mode in _TRT_PRECISION and device.type != "gpu":
            return "TensorRT needs a GPU"
        if run_mode.startswith("mkldnn") and device.type == "cpu":
            import paddle

            if not paddle.base.core.is_compiled_with_mkldnn():
                return "this Paddle build has no oneDNN"
        return None
