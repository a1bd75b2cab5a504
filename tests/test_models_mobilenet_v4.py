"""MobileNetV4 specifics: the mobile multi-query attention block at tiny/odd sizes, eager and exported."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from paddlex_cls.models.mobilenet_v4 import MobileMQA


def _block(kv_stride: int) -> MobileMQA:
    paddle.seed(0)
    block = MobileMQA(16, 16, num_heads=4, key_dim=8, kv_stride=kv_stride, layer_scale=0.5)
    block.eval()
    return block


def _naive_mqa(block: MobileMQA, x: paddle.Tensor) -> np.ndarray:
    """The attention written out head by head: softmax(q k / sqrt(heads * d)) v, one shared key/value head."""
    b, _, h, w = x.shape
    heads, d = block.num_heads, block.key_dim
    xn = block.norm(x)
    q = block.query_proj(xn).numpy().reshape(b, heads, d, h * w)
    k = block.key_proj(block.key_down_proj(xn)).numpy().reshape(b, d, -1)
    v = block.value_proj(block.value_down_proj(xn)).numpy().reshape(b, d, -1)
    logits = np.einsum("bhdi,bdj->bhij", q, k) / np.sqrt(heads * d)
    attn = np.exp(logits - logits.max(-1, keepdims=True))
    attn /= attn.sum(-1, keepdims=True)
    out = np.einsum("bhij,bdj->bhdi", attn, v).reshape(b, heads * d, h, w)
    out = block.proj(paddle.to_tensor(out.astype("float32"))) * block.layer_scale.gamma.reshape([1, -1, 1, 1])
    return (x + out).numpy()


@pytest.mark.parametrize("kv_stride,size", [(1, 1), (1, 5), (2, 2), (2, 3), (2, 8)])
def test_mqa_matches_naive_attention(kv_stride, size):
    block = _block(kv_stride)
    x = paddle.randn([2, 16, size, size])
    with paddle.no_grad():
        np.testing.assert_allclose(block(x).numpy(), _naive_mqa(block, x), rtol=1e-4, atol=1e-5)


def test_mqa_exports_with_dynamic_size(tmp_path):
    # The inference engine (oneDNN on CPU) must agree with eager mode, also where the key/value map is 1x1.
    block = _block(2)
    prefix = str(tmp_path / "inference")
    paddle.jit.save(block, prefix, input_spec=[paddle.static.InputSpec([None, 16, None, None], "float32", "x")])
    model_file = prefix + (".json" if (tmp_path / "inference.json").exists() else ".pdmodel")
    config = paddle.inference.Config(model_file, prefix + ".pdiparams")
    config.disable_gpu()
    predictor = paddle.inference.create_predictor(config)
    for size in (2, 7, 16):
        x = np.random.default_rng(size).normal(size=(2, 16, size, size)).astype("float32")
        handle = predictor.get_input_handle(predictor.get_input_names()[0])
        handle.reshape(x.shape)
        handle.copy_from_cpu(x)
        predictor.run()
        got = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
        with paddle.no_grad():
            want = block(paddle.to_tensor(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
