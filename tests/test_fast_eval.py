"""The oneDNN inference forward used for CPU evaluation equals dygraph evaluation and leaves the model alone."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from paddlex_cls.engine.fast_eval import onednn_forward
from paddlex_cls.engine.layer_forward import layer_forward
from paddlex_cls.models import get_entry


def topk_hits(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    return float((np.argsort(-logits, axis=1)[:, :k] == labels[:, None]).any(axis=1).mean())


@pytest.mark.parametrize("name", ["PP-LCNet_x0_25", pytest.param("ResNet18", marks=pytest.mark.slow)])
def test_onednn_forward_equals_dygraph_eval(name):
    paddle.seed(0)
    model = get_entry(name).build(num_classes=10, input_size=32)
    with paddle.no_grad():  # running statistics away from their initial values, as after training
        for _ in range(3):
            model(paddle.randn([16, 3, 32, 32]) * 2 + 0.5)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((64, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, 64)
    fast = onednn_forward(model, 32, threads=2)
    assert model.training and not isinstance(model.forward, paddle.jit.api.StaticFunction)
    want = layer_forward(model)(images)
    for batch in (images, images[:1], images[:5]):  # any batch size, the oneDNN caches keyed by shape
        np.testing.assert_allclose(fast(batch), want[:len(batch)], rtol=1e-4, atol=1e-5)
    got = fast(images)
    for k in (1, 5):
        assert abs(topk_hits(got, labels, k) - topk_hits(want, labels, k)) <= 1e-3


def test_onednn_forward_reads_values_used_twice():
    """(x - mean) / std with x - mean consumed twice: Paddle's PIR in-place pass broke it under oneDNN (ConvNeXt's
    LayerNorm, relative error 1.8). Evaluation runs through the Predict backend, so this covers predict too."""

    class Standardize(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.scale = self.create_parameter([1], default_initializer=paddle.nn.initializer.Constant(1.0))

        def forward(self, x):
            x = x * self.scale
            mean = x.mean(axis=1, keepdim=True)
            return (x - mean) / paddle.sqrt((x - mean).pow(2).mean(axis=1, keepdim=True) + 1e-6)

    model = Standardize()
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(onednn_forward(model, 4, threads=1)(x), layer_forward(model)(x), rtol=1e-4, atol=1e-5)


def _openmp_threads():
    """The calling thread's OpenMP thread count in the runtime Paddle's kernels use (None: not found)."""
    import ctypes
    import os

    lib = os.path.join(os.path.dirname(paddle.__file__), "libs", "libiomp5.so")
    return ctypes.CDLL(lib).omp_get_max_threads if os.path.exists(lib) else None


def test_evaluation_leaves_the_trainer_its_threads():
    """Paddle's predictor sets the calling thread to 1 math thread after each run: a trainer that evaluated
    through it (the engine trial does, before the first step) trained on one core from then on."""
    threads = _openmp_threads()
    if threads is None:
        pytest.skip("this Paddle build has no libiomp5 to ask")
    model = get_entry("PP-LCNet_x0_25").build(num_classes=10, input_size=32)
    paddle.base.core.set_num_threads(2)
    assert threads() == 2
    onednn_forward(model, 32, threads=2)(np.zeros((1, 3, 32, 32), np.float32))
    assert threads() == 2
