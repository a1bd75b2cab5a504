"""Family-specific checks of Swin Transformer and CLIP: padded sizes, the shifted-window mask, layer-wise decay ids,
no-weight-decay names, and export agreement (masks and paddle.roll traced into the static graph). Input-size errors:
test_models_input_size.py."""
from __future__ import annotations

import os

import numpy as np
import paddle
import pytest

from paddlex_cls.errors import ModelError
from paddlex_cls.models import build_model
from paddlex_cls.models.clip_vit import CLIPVisionTransformer
from paddlex_cls.models.swin_transformer import SwinTransformer, _shift_mask

SWIN = "SwinTransformer_tiny_patch4_window7_224"
CLIP = "CLIP_vit_base_patch16_224"


@pytest.mark.parametrize("net", [
    SwinTransformer(embed_dim=8, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), window=7, num_classes=3),
    CLIPVisionTransformer(patch_size=16, embed_dim=8, depth=1, num_heads=1, num_classes=3),
], ids=["swin", "clip"])
def test_dynamic_spatial_size_cannot_be_traced(net):
    # Paddings, masks and the resized position table are computed from the size in Python: a traced graph needs it.
    net.eval()
    spec = [paddle.static.InputSpec([None, 3, None, None], "float32", "x")]
    with pytest.raises(ModelError, match="dynamic spatial input size"):
        _ = paddle.jit.to_static(net, input_spec=spec, full_graph=True).forward.concrete_program  # traces


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


# CI checks the export of both through tests/test_export_agreement.py (the smallest model of every family)
@pytest.mark.slow
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
