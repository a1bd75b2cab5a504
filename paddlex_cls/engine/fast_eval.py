"""Evaluation forward passes on CPU through a oneDNN inference predictor instead of dygraph.

A dygraph Layer in eval mode is traced into a static program (``paddle.jit.save`` into a temporary folder,
weights as they are now), or the static engine's evaluation program is saved, and ``paddle.inference`` runs it
with oneDNN and its fusion passes (conv+BN, conv+activation): several times faster than dygraph evaluation, and
than running the unfused program with the executor, for a set-up cost of a few seconds (tracing, saving, graph
passes) per call, so it pays off from a few batches on. The Layer itself is not changed (traced via a wrapper).
"""
from __future__ import annotations

import os
import tempfile
from typing import Callable

import numpy as np
import paddle


def default_threads() -> int:
    """Predictor threads when the caller has no count of its own: the cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _Traced(paddle.nn.Layer):
    """Holds the model so that ``jit.to_static`` replaces the wrapper's forward, never the model's own."""

    def __init__(self, model: paddle.nn.Layer):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)


def onednn_forward(model: paddle.nn.Layer, image_size: int, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """A ``float32 NCHW batch -> logits`` function equal to ``model`` in eval mode, run by a oneDNN predictor.

    Args:
        model: the dygraph Layer with the weights to evaluate (the EMA weights when EMA is on); its mode is
            restored afterwards.
        image_size: side of the square inputs (any batch size is accepted).
        threads: math threads of the predictor (the process' training thread count).

    Example:
        >>> forward = onednn_forward(model, 224, threads=2)
        >>> logits = forward(images)  # [N, C]
    """
    was_training = model.training
    model.eval()
    try:
        with tempfile.TemporaryDirectory(prefix="paddlex_cls_eval_") as tmp:
            prefix = os.path.join(tmp, "model")
            spec = [paddle.static.InputSpec([None, 3, image_size, image_size], "float32", "x")]
            paddle.jit.save(paddle.jit.to_static(_Traced(model), input_spec=spec, full_graph=True), prefix)
            return _predictor_forward(prefix, threads)
    finally:
        model.train(was_training)


def program_forward(program: paddle.static.Program, feed: paddle.pir.Value, fetch: paddle.pir.Value, scope,
                    threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """The same for a static inference program whose weights are in ``scope`` (the static engine's eval program).

    Args:
        feed: the program's image input; fetch: its logits.
    """
    from .steps.static_mode import static_onednn

    with tempfile.TemporaryDirectory(prefix="paddlex_cls_eval_") as tmp:
        prefix = os.path.join(tmp, "model")
        with static_onednn(scope):
            paddle.static.save_inference_model(prefix, [feed], [fetch], paddle.static.Executor(paddle.CPUPlace()),
                                               program=program)
        return _predictor_forward(prefix, threads)


def _predictor_forward(prefix: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    from paddle import inference

    model_file = prefix + (".json" if os.path.exists(prefix + ".json") else ".pdmodel")
    config = inference.Config(model_file, prefix + ".pdiparams")
    config.disable_glog_info()
    config.disable_gpu()
    config.enable_mkldnn()
    config.set_cpu_math_library_num_threads(threads)
    # Paddle 3.3's PIR in-place pass reuses a buffer that a second consumer still reads: (x - mean) / std in
    # ConvNeXt's channel LayerNorm came out wrong (relative error > 1) with it
    config.delete_pass("inplace_pass")
    predictor = inference.create_predictor(config)  # reads the files now; their folder can go
    inp = predictor.get_input_handle(predictor.get_input_names()[0])
    out = predictor.get_output_handle(predictor.get_output_names()[0])

    def forward(images: np.ndarray) -> np.ndarray:
        inp.reshape(list(images.shape))
        inp.copy_from_cpu(np.ascontiguousarray(images, dtype=np.float32))
        predictor.run()
        return out.copy_to_cpu()

    return forward
