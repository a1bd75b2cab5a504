"""Every registered model against the official weights' layout, plus a forward/backward pass at a small size."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from paddlex_cls.models import build_model, get_entry, list_models
from paddlex_cls.models.layers import re_parameterize_model

from .model_reference import reference, small_input_size

MODELS = list_models()
# Forward/backward of the biggest models costs seconds each on 2 cores; they run with -m slow.
HEAVY = {n for n in MODELS if reference()[n]["params_all"] > 40_000_000}


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_matches_official(name):
    ref = reference()[name]
    with paddle.LazyGuard():
        net = build_model(name, num_classes=1000)
    got = [[k, list(v.shape)] for k, v in net.state_dict().items()]
    want = [[k, shape] for k, shape, _ in ref["keys"]]
    assert [k for k, _ in got] == [k for k, _ in want], "key names/order differ from the official weights"
    assert got == want, "shapes differ from the official weights"


@pytest.mark.parametrize("name", MODELS)
def test_head_is_the_only_part_that_depends_on_num_classes(name):
    """``ModelEntry.head`` names the classifier Linear: fine-tuning re-initialises (and may train) just it."""
    head = get_entry(name).head
    with paddle.LazyGuard():
        net = build_model(name, num_classes=7)
    got = {k: list(v.shape) for k, v in net.state_dict().items()}
    official = {k: shape for k, shape, _ in reference()[name]["keys"]}  # 1000 classes
    assert got[f"{head}.weight"] == official[f"{head}.weight"][:-1] + [7]
    assert got[f"{head}.bias"] == [7] and official[f"{head}.bias"] == [1000]
    assert [k for k in got if got[k] != official.get(k)] == [f"{head}.weight", f"{head}.bias"]


def _forward_backward(name: str, num_classes: int = 7):
    entry = get_entry(name)
    size = small_input_size(entry)
    paddle.seed(0)
    net = build_model(name, num_classes=num_classes)
    net.train()
    x = paddle.randn([2, 3, size, size])
    out = net(x)
    assert out.shape == [2, num_classes]
    out.mean().backward()
    grads = [p.grad for p in net.parameters() if not p.stop_gradient]
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads)
    net.eval()
    with paddle.no_grad():
        y = net(x)
    assert np.isfinite(y.numpy()).all()
    return net, x, y


@pytest.mark.parametrize("name", [n for n in MODELS if n not in HEAVY])
def test_forward_backward(name):
    _forward_backward(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HEAVY))
def test_forward_backward_heavy(name):
    _forward_backward(name)


@pytest.mark.parametrize("name", [n for n in MODELS if get_entry(n).rep and n not in HEAVY])
def test_reparameterized_outputs_match(name):
    net, x, y = _forward_backward(name)
    folded = re_parameterize_model(net)
    assert folded > 0
    with paddle.no_grad():
        y2 = net(x)
    np.testing.assert_allclose(y2.numpy(), y.numpy(), rtol=1e-4, atol=1e-4)
