"""Family-specific checks of Swin Transformer and CLIP: input-size errors, padded sizes, the shifted-window mask,
layer-wise decay ids, and export agreement (masks and paddle.roll traced into the static graph)."""
from __future__ import annotations

import os

import numpy as np
import paddle
import pytest

from paddlex_cls.errors import ModelError
from paddlex_cls.models import build_model
from paddlex_cls.models.swin_transformer import _shift_mask

SWIN = "SwinTransformer_tiny_patch4_window7_224"
CLIP = "CLIP_vit_base_patch16_224"


@pytest.mark.parametrize("name, size", [(SWIN, 16), (CLIP, 8)])
def test_too_small_input_raises_model_error(name, size):
    paddle.seed(0)
    net = build_model(name, num_classes=3)
    net.eval()
    with pytest.raises(ModelError) as err:
        net(paddle.zeros([1, 3, size, size]))
    assert name in err.value.message and f"{size}x{size}" in err.value.message
    assert "at least" in err.value.hint


def test_swin_builder_checks_img_size():
    with pytest.raises(ModelError):
        build_model(SWIN, num_classes=3, img_size=16)
    with paddle.LazyGuard():
        assert build_model(SWIN, num_classes=3, img_size=64).img_size == 64


@pytest.mark.parametrize("name, size", [(SWIN, 50), (CLIP, 40)])
def test_sizes_that_need_padding_run(name, size):
    paddle.seed(0)
    net = build_model(name, num_classes=3)
    net.eval()
    with paddle.no_grad():
        out = net(paddle.randn([1, 3, size, size]))
    assert out.shape == [1, 3] and np.isfinite(out.numpy()).all()


@pytest.mark.parametrize("height, width, window", [(14, 14, 7), (7, 7, 7), (24, 12, 12)])
def test_shift_mask_matches_region_labelling(height, width, window):
    shift = window // 2
    labels = np.zeros((height, width))
    count = 0
    for rows in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for cols in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            labels[rows, cols] = count
            count += 1
    windows = labels.reshape(height // window, window, width // window, window).transpose(0, 2, 1, 3)
    windows = windows.reshape(-1, window * window)
    want = np.where(windows[:, None, :] != windows[:, :, None], -100.0, 0.0)
    np.testing.assert_array_equal(_shift_mask(height, width, window, shift), want)


def test_clip_layer_ids_for_layerwise_decay():
    with paddle.LazyGuard():
        net = build_model(CLIP, num_classes=3)
    depth = net.num_layers_for_decay
    assert depth == 12
    ids = {name: net.layer_id_of(name) for name, _ in net.named_parameters()}
    assert ids["pos_embed"] == ids["cls_token"] == ids["patch_embed.proj.weight"] == ids["ln_pre.weight"] == 0
    assert ids["blocks.0.attn.qkv.weight"] == 1 and ids["blocks.11.mlp.fc2.bias"] == depth
    assert ids["norm.weight"] == ids["head.fc_head.weight"] == ids["proj"] == depth + 1
    assert net.no_weight_decay() == {"pos_embed", "cls_token"}


def _export_and_predict(net, x: np.ndarray, out_dir: str) -> np.ndarray:
    from paddle import inference

    size = x.shape[-1]
    static = paddle.jit.to_static(net, input_spec=[paddle.static.InputSpec([None, 3, size, size], "float32", "x")],
                                  full_graph=True)
    prefix = os.path.join(out_dir, "inference")
    paddle.jit.save(static, prefix)
    model_file = prefix + (".json" if os.path.exists(prefix + ".json") else ".pdmodel")
    config = inference.Config(model_file, prefix + ".pdiparams")
    config.disable_gpu()
    config.disable_glog_info()
    config.set_cpu_math_library_num_threads(1)
    predictor = inference.create_predictor(config)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(list(x.shape))
    handle.copy_from_cpu(x)
    predictor.run()
    return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()


@pytest.mark.parametrize("name, size", [(SWIN, 32), (CLIP, 32)])
def test_export_matches_dygraph(name, size, tmp_path):
    paddle.seed(0)
    net = build_model(name, num_classes=5)
    net.eval()
    x = np.random.default_rng(0).normal(size=(2, 3, size, size)).astype("float32")
    with paddle.no_grad():
        want = net(paddle.to_tensor(x)).numpy()
    got = _export_and_predict(net, x, str(tmp_path))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
