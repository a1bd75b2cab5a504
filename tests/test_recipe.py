"""Recipe options: overrides, augmentations, optimizer parameter groups, layer-wise LR decay, EMA."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from paddlex_cls.config import load_config
from paddlex_cls.data.augment import AUGMENTS, mix_batch
from paddlex_cls.data.transforms import eval_transform, train_transform
from paddlex_cls.engine.ema import ModelEMA
from paddlex_cls.engine.optim import build_optimizer, build_scheduler, resolve_recipe
from paddlex_cls.errors import ConfigError
from paddlex_cls.models import build_model, get_entry
from paddlex_cls.models.registry import Recipe
from paddlex_cls.preprocess.spec import eval_sizes

from .conftest import LCNET_CONFIG

TRAIN_NULLS = {k: None for k in ("optimizer", "weight_decay", "label_smoothing", "ema_decay", "grad_clip",
                                 "layer_decay", "augment")}


def test_resolve_recipe_overrides_and_disables():
    base = Recipe(optimizer="adamw", ema_decay=0.999, grad_clip=5.0, augment=("mixup",))
    assert resolve_recipe(TRAIN_NULLS, base) == base
    r = resolve_recipe(dict(TRAIN_NULLS, ema_decay=0.0, grad_clip=0.0, augment=[], weight_decay=0.01), base)
    assert (r.ema_decay, r.grad_clip, r.augment, r.weight_decay) == (None, None, (), 0.01)
    with pytest.raises(ConfigError, match="unknown name"):
        resolve_recipe(dict(TRAIN_NULLS, augment=["mixupp"]), base)
    with pytest.raises(ConfigError, match="ema_decay"):  # ranges are checked once, by the schema
        load_config(LCNET_CONFIG, ["Train.ema_decay=1.5"])


def test_eval_sizes_keep_the_model_ratio():
    pre = get_entry("PP-LCNet_x1_0").preprocess
    assert eval_sizes(pre) == eval_sizes(pre, 224) and eval_sizes(pre).resize_short == 256
    assert (eval_sizes(pre, 32).resize_short, eval_sizes(pre, 32).crop) == (37, 32)


@pytest.mark.parametrize("augment", [(), ("autoaugment",), ("randaugment",), ("timm_autoaugment",),
                                     ("random_erasing",), AUGMENTS])
def test_train_transform_with_augmentations(augment):
    pre = get_entry("PP-LCNet_x1_0").preprocess
    img = np.random.default_rng(0).integers(0, 255, (50, 40, 3), dtype=np.uint8)
    for _ in range(5):
        out = train_transform(pre, 32, augment)(img)
        assert out.shape == (3, 32, 32) and out.dtype == np.float32 and np.isfinite(out).all()
    assert eval_transform(pre, 32)(img).shape == (3, 32, 32)


@pytest.mark.parametrize("names", [("mixup",), ("cutmix",), ("mixup", "cutmix")])
def test_mix_batch_soft_labels(names):
    rng = np.random.default_rng(0)
    images = rng.standard_normal((6, 3, 8, 8)).astype(np.float32)
    labels = np.array([0, 1, 2, 0, 1, 2])
    mixed, soft = mix_batch(images, labels, 3, names, rng)
    assert mixed.shape == images.shape and soft.shape == (6, 3)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
    assert not np.array_equal(mixed, images)


def test_adamw_skips_decay_on_1d_params():
    with paddle.utils.unique_name.guard():
        net = build_model("StarNet-S1", num_classes=3)
        recipe = Recipe(optimizer="adamw", weight_decay=0.05, no_decay_norm_bias=True)
        opt = build_optimizer(net, recipe, build_scheduler(1e-3, 2, 5, 1))
    decays = {n: opt._apply_decay_param_fun(p.name) for n, p in net.named_parameters() if not p.stop_gradient}
    assert all(v is False for n, v in decays.items() if n.endswith(".bias"))
    assert any(v is True for n, v in decays.items() if n.endswith(".weight") and "conv" in n)


def test_layer_decay_scales_lr_per_depth():
    with paddle.utils.unique_name.guard(), paddle.LazyGuard():
        net = build_model("CLIP_vit_base_patch16_224", num_classes=3)
        build_optimizer(net, Recipe(optimizer="adamw", layer_decay=0.6), build_scheduler(1e-3, 2, 5, 1))
    lrs = {n: p.optimize_attr["learning_rate"] for n, p in net.named_parameters()}
    depth = net.num_layers_for_decay
    assert lrs["pos_embed"] == pytest.approx(0.6 ** (depth + 1))
    assert lrs["head.fc_head.weight"] == pytest.approx(1.0)
    assert lrs["blocks.0.attn.qkv.weight"] < lrs[f"blocks.{depth - 1}.attn.qkv.weight"] < 1.0


def test_warmup_then_cosine():
    sched = build_scheduler(0.1, epochs=4, iters_per_epoch=10, warmup_epochs=1)
    lrs = []
    for _ in range(40):
        lrs.append(sched.get_lr())
        sched.step()
    assert lrs[0] == 0.0 and lrs[10] == pytest.approx(0.1)
    assert lrs[5] == pytest.approx(0.05) and lrs[-1] < 0.001


def test_ema_tracks_weights():
    lin = paddle.nn.Linear(2, 2)
    ema = ModelEMA(lin, decay=0.5)
    before = lin.weight.numpy().copy()
    lin.weight.set_value(paddle.zeros([2, 2]))
    ema.update()
    np.testing.assert_allclose(ema.state_dict()["weight"].numpy(), before * 0.5, rtol=1e-6)
    with ema.applied() as m:
        np.testing.assert_allclose(m.weight.numpy(), before * 0.5, rtol=1e-6)
    np.testing.assert_array_equal(lin.weight.numpy(), np.zeros((2, 2)))
