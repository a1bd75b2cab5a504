"""Family facts of ResNet(-vd) and PP-LCNet that the generic model-zoo tests do not reach."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from paddlex_cls.models import build_model
from paddlex_cls.models.resnet import AvgPoolConvBN


@pytest.mark.parametrize("name", ["ResNet18_vd", "ResNet50", "PP-LCNet_x0_25"])
@pytest.mark.parametrize("size", [33, 47])
def test_odd_input_sizes(name, size):
    # Odd sizes make the vd shortcut's SAME/ceil average pool and the strided main branch meet at one shape.
    net = build_model(name, num_classes=3)
    net.eval()
    with paddle.no_grad():
        assert net(paddle.randn([1, 3, size, size])).shape == [1, 3]


def test_vd_shortcut_pools_only_in_downsampling_stages():
    net = build_model("ResNet18_vd")
    pooled = [i for i, block in enumerate(net.blocks) if isinstance(block.short, AvgPoolConvBN)]
    assert pooled == [2, 4, 6]  # first block of stages 2-4; stage 1 keeps a plain 1x1 projection
    assert not any(isinstance(b.short, AvgPoolConvBN) for b in build_model("ResNet18").blocks)


def test_lcnet_eval_dropout_scales_the_head():
    # PaddleClas uses dropout mode "downscale_in_infer": eval multiplies the head features by 1 - p.
    net = build_model("PP-LCNet_x0_25", num_classes=5)
    net.eval()
    x = paddle.randn([2, 3, 32, 32])
    with paddle.no_grad():
        feats = x
        for stage in ("conv1", "blocks2", "blocks3", "blocks4", "blocks5", "blocks6"):
            feats = getattr(net, stage)(feats)
        head = net.act(net.last_conv(net.avg_pool(feats))).flatten(1)
        expected = net.fc(head * 0.8)
        np.testing.assert_allclose(net(x).numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_lcnet_batchnorm_is_not_decayed():
    net = build_model("PP-LCNet_x0_25")
    assert net.conv1.bn.weight.regularizer is not None and net.conv1.bn.weight.regularizer._coeff == 0.0
    assert net.conv1.conv.weight.regularizer is None  # decayed by the optimizer's global L2
