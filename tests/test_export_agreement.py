"""Exported inference models (softmax-wrapped, re-parameterized) agree with the dygraph model.

CI exports the smallest model of each family; `-m slow` exports every registered model.
"""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from paddlex_cls.engine.exporter import ExportSpec, export_model
from paddlex_cls.inference.predictor import Predictor
from paddlex_cls.models import get_entry, list_models

from .model_reference import small_input_size, smallest_per_family

FAST = smallest_per_family()
SLOW = [n for n in list_models() if n not in FAST]


def check_export(name, tmp_path, run_mode="paddle"):
    size = small_input_size(get_entry(name))
    paddle.seed(1)
    net = get_entry(name).build(num_classes=5, input_size=size)
    # Non-trivial BN statistics, so folding and eval-mode BN are really exercised.
    for layer in net.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            layer._mean.set_value(paddle.rand(layer._mean.shape) * 0.2 - 0.1)
            layer._variance.set_value(paddle.rand(layer._variance.shape) + 0.5)
    weights = tmp_path / "w" / "w.pdparams"
    weights.parent.mkdir()
    paddle.save(net.state_dict(), str(weights))
    net.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, size, size)).astype("float32")
    with paddle.no_grad():
        want = paddle.nn.functional.softmax(net(paddle.to_tensor(x)), axis=-1).numpy()
    out = tmp_path / "inference"
    export_model(ExportSpec(model_name=name, num_classes=5, weights=str(weights), out_dir=str(out),
                            labels=list("abcde"), input_size=size))
    got = Predictor(str(out), run_mode=run_mode, num_threads=1).run_batch(x)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", FAST)
def test_export_agrees_with_dygraph(name, tmp_path):
    check_export(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_export_agrees_with_dygraph_all(name, tmp_path):
    check_export(name, tmp_path)
