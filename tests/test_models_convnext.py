"""ConvNeXt: inputs smaller than the network stride fail with a ModelError, in dygraph and when exported."""
from __future__ import annotations

import paddle
import pytest

from paddlex_cls.errors import ModelError
from paddlex_cls.models import build_model


def test_too_small_input_names_model_and_sizes():
    net = build_model("ConvNeXt_tiny", num_classes=3)
    net.eval()
    with pytest.raises(ModelError, match=r"ConvNeXt_tiny cannot run on a 16x16 input") as err:
        net(paddle.zeros([1, 3, 16, 16]))
    assert "at least 32x32" in err.value.hint


def test_any_size_from_32_runs():
    net = build_model("ConvNeXt_tiny", num_classes=3)
    net.eval()
    with paddle.no_grad():
        assert net(paddle.zeros([1, 3, 32, 45])).shape == [1, 3]


def test_export_with_too_small_fixed_size_fails_clearly(tmp_path):
    net = build_model("ConvNeXt_tiny", num_classes=3)
    net.eval()
    spec = [paddle.static.InputSpec([None, 3, 16, 16], "float32", "x")]
    with pytest.raises(ModelError):
        paddle.jit.save(paddle.jit.to_static(net, full_graph=True), str(tmp_path / "inference"), input_spec=spec)
