"""Exported inference models (softmax-wrapped, re-parameterized) agree with the dygraph model, as Paddle files and
as ONNX (paddle2onnx, run by ONNX Runtime).

CI exports the smallest model of each family; `-m slow` exports every registered model. Each model is exported once
(both formats when paddle2onnx is installed) and checked by one test per format.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import paddle
import pytest

from paddlex_cls.engine.exporter import ExportSpec, export_model
from paddlex_cls.inference.predictor import Predictor
from paddlex_cls.models import get_entry, list_models

from .model_reference import small_input_size, smallest_per_family

FAST = smallest_per_family()
SLOW = [n for n in list_models() if n not in FAST]
HAVE_ONNX = importlib.util.find_spec("paddle2onnx") is not None and importlib.util.find_spec("onnxruntime") is not None
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason='needs pip install "paddlex_cls[onnx]"')
_exports: dict = {}


def exported(name, tmp_path_factory):
    """(export folder, input batch, dygraph probabilities) of ``name``, made once per session."""
    if name in _exports:
        return _exports[name]
    size = small_input_size(get_entry(name))
    paddle.seed(1)
    net = get_entry(name).build(num_classes=5, input_size=size)
    # Non-trivial BN statistics, so folding and eval-mode BN are really exercised.
    for layer in net.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            layer._mean.set_value(paddle.rand(layer._mean.shape) * 0.2 - 0.1)
            layer._variance.set_value(paddle.rand(layer._variance.shape) + 0.5)
    root = tmp_path_factory.mktemp(name)
    weights = root / "w.pdparams"
    paddle.save(net.state_dict(), str(weights))
    net.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, size, size)).astype("float32")
    with paddle.no_grad():
        want = paddle.nn.functional.softmax(net(paddle.to_tensor(x)), axis=-1).numpy()
    out = root / "inference"
    export_model(ExportSpec(model_name=name, num_classes=5, weights=str(weights), out_dir=str(out),
                            labels=list("abcde"), input_size=size, format="all" if HAVE_ONNX else "paddle"))
    _exports.clear()  # keep one model's files at a time
    _exports[name] = (out, x, want)
    return _exports[name]


def check(name: str, tmp_path_factory, run_mode: str) -> None:
    out, x, want = exported(name, tmp_path_factory)
    got = Predictor(str(out), run_mode=run_mode, num_threads=1).run_batch(x)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def cases(names):
    """(name, run mode) pairs, each model's formats next to each other so it is exported once."""
    return [p for n in names for p in (pytest.param(n, "paddle", id=f"{n}-paddle"),
                                       pytest.param(n, "onnxruntime", id=f"{n}-onnx", marks=needs_onnx))]


@pytest.mark.parametrize("name,run_mode", cases(FAST))
def test_export_agrees_with_dygraph(name, run_mode, tmp_path_factory):
    check(name, tmp_path_factory, run_mode)


@pytest.mark.slow
@pytest.mark.parametrize("name,run_mode", cases(SLOW))
def test_export_agrees_with_dygraph_all(name, run_mode, tmp_path_factory):
    check(name, tmp_path_factory, run_mode)
