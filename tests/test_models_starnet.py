"""StarNet rounds every stride-2 conv up, so it runs on any input size, however small or odd."""
from __future__ import annotations

import paddle

from paddlex_cls.models import build_model, get_entry


def test_runs_on_tiny_and_odd_sizes():
    assert get_entry("StarNet-S1").preprocess.min_size == 1
    net = build_model("StarNet-S1", num_classes=3)
    net.eval()
    with paddle.no_grad():
        for h, w in [(1, 1), (7, 13)]:
            assert net(paddle.zeros([1, 3, h, w])).shape == [1, 3]
