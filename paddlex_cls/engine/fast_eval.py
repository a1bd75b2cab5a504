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

RUN_MODE = "mkldnn"  # the Predict run mode evaluation uses: the paddle.inference predictor with oneDNN
MODEL_PREFIX = "inference"  # the file names an exported folder uses (inference.json, inference.pdiparams)


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
            spec = [paddle.static.InputSpec([None, 3, image_size, image_size], "float32", "x")]
            paddle.jit.save(paddle.jit.to_static(_Traced(model), input_spec=spec, full_graph=True),
                            os.path.join(tmp, MODEL_PREFIX))
            return _predictor_forward(tmp, threads)
    finally:
        model.train(was_training)


def cpu_eval_forward(model: paddle.nn.Layer, image_size: int, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """:func:`onednn_forward`, or the dygraph Layer itself (with a warning) when the model cannot be traced or the
    predictor does not take it."""
    from ..errors import PaddlexClsError, first_line
    from ..log import logger
    from .layer_forward import layer_forward

    try:
        return onednn_forward(model, image_size, threads)
    except (RuntimeError, ValueError, TypeError, NotImplementedError, PaddlexClsError) as e:
        logger.warning("evaluating in dygraph: the oneDNN predictor did not take the model (%s: %s)",
                       type(e).__name__, first_line(e))
        return layer_forward(model)


def program_forward(program: paddle.static.Program, feed: paddle.pir.Value, fetch: paddle.pir.Value, scope,
                    threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """The same for a static inference program whose weights are in ``scope`` (the static engine's eval program).

    The predictor runs in a child process forked now (where the platform forks), which ends when the returned
    function is closed or collected: a predictor built and destroyed in the process that trains the static engine
    makes that engine's kernels allocate their oneDNN memory again, and the old copies are never freed (ResNet18
    at 32 px: 90-140 MB more after every evaluation, without bound over the epochs; ``steps/forked.py``). The
    batches cross shared memory (2 ms for 32 images at 224 px).

    Args:
        feed: the program's image input; fetch: its logits.
    """
    from .steps.forked import ForkedArrayFunction, can_serve_forked
    from .steps.static_mode import static_onednn

    with tempfile.TemporaryDirectory(prefix="paddlex_cls_eval_") as tmp:
        with static_onednn(scope):
            paddle.static.save_inference_model(os.path.join(tmp, MODEL_PREFIX), [feed], [fetch],
                                               paddle.static.Executor(paddle.CPUPlace()), program=program)
        if not can_serve_forked():
            return _predictor_forward(tmp, threads)
        return ForkedArrayFunction(lambda: _predictor_forward(tmp, threads))  # built there, before tmp goes


def _predictor_forward(folder: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """The inference backend of ``Predict`` (``inference/backends``, run mode ``mkldnn``) over the model saved in
    ``folder``; it reads the files when built, so the folder can go afterwards."""
    from ..device import parse_device
    from ..inference.backends import backend_class

    return backend_class(RUN_MODE)(folder, parse_device("cpu"), RUN_MODE, threads, 1).run
