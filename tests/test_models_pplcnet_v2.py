"""PP-LCNetV2 re-parameterization: the folded ``dw_conv`` the official weights carry is ignored until folding."""
from __future__ import annotations

import numpy as np
import paddle

from paddlex_cls.models import build_model
from paddlex_cls.models.layers import re_parameterize_model
from paddlex_cls.models.pplcnet_v2 import RepDepthwiseSeparable


def _randomize_bn_statistics(net: paddle.nn.Layer) -> None:
    for layer in net.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            layer._mean.set_value(paddle.randn(layer._mean.shape) * 0.1)
            layer._variance.set_value(paddle.rand(layer._variance.shape) + 0.5)


def test_stale_folded_conv_is_ignored_until_re_parameterize():
    paddle.seed(0)
    net = build_model("PP-LCNetV2_small", num_classes=5)
    net.eval()
    _randomize_bn_statistics(net)
    x = paddle.randn([2, 3, 64, 64])
    with paddle.no_grad():
        expected = net(x).numpy()
        rep_blocks = [layer for layer in net.sublayers() if isinstance(layer, RepDepthwiseSeparable)]
        for block in rep_blocks:  # what a checkpoint saved before folding may hold
            block.dw_conv.weight.set_value(paddle.randn(block.dw_conv.weight.shape))
        np.testing.assert_array_equal(net(x).numpy(), expected)

        keys = list(net.state_dict())
        assert re_parameterize_model(net) == len(rep_blocks) == 6
        np.testing.assert_allclose(net(x).numpy(), expected, rtol=1e-4, atol=1e-4)
    assert list(net.state_dict()) == keys, "folding must keep the official key layout"
