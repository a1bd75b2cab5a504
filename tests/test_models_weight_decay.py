"""The optimizer takes a model's own no-weight-decay names (``no_weight_decay()``), plus the 1-D rule of the recipe."""
from __future__ import annotations

from typing import Set

import paddle
import pytest

from paddlex_cls.engine.optim import build_optimizer, build_scheduler
from paddlex_cls.models import Recipe
from paddlex_cls.models.clip_vit import CLIPVisionTransformer
from paddlex_cls.models.swin_transformer import SwinTransformer


class _TableNet(paddle.nn.Layer):
    """A 2-D table the model exempts by name, next to an ordinary Linear."""

    def __init__(self):
        super().__init__()
        self.table = self.create_parameter([4, 3])
        self.fc = paddle.nn.Linear(3, 2)

    def no_weight_decay(self) -> Set[str]:
        return {"table"}


def _decayed(net: paddle.nn.Layer, recipe: Recipe) -> Set[str]:
    """Structured names of the parameters the optimizer built from ``recipe`` decays."""
    opt = build_optimizer(net, recipe, build_scheduler(1e-3, 2, 5, 1))
    names = {p.name: n for n, p in net.named_parameters()}
    if recipe.optimizer == "adamw":
        return {n for pname, n in names.items() if opt._apply_decay_param_fun(pname)}
    # Momentum keeps each group's L2 coefficient as "regularization_coeff".
    return {names[p.name] for group in opt._param_groups if group["regularization_coeff"] != 0.0
            for p in group["params"]}


@pytest.mark.parametrize("optimizer", ["adamw", "momentum"])
@pytest.mark.parametrize("norm_bias", [False, True])
def test_model_names_always_exempt_1d_rule_from_recipe(optimizer, norm_bias):
    with paddle.utils.unique_name.guard():
        net = _TableNet()
        decayed = _decayed(net, Recipe(optimizer=optimizer, weight_decay=0.05, no_decay_norm_bias=norm_bias))
    assert decayed == ({"fc.weight"} if norm_bias else {"fc.weight", "fc.bias"})


def test_transformer_tables_and_tokens_are_not_decayed():
    recipe = Recipe(optimizer="adamw", weight_decay=0.05, no_decay_norm_bias=True)
    with paddle.utils.unique_name.guard():
        swin = SwinTransformer(embed_dim=8, depths=(2, 1, 1, 1), num_heads=(1, 1, 1, 1), window=7, num_classes=3)
        clip = CLIPVisionTransformer(patch_size=16, embed_dim=8, depth=1, num_heads=1, num_classes=3)
        swin_decayed, clip_decayed = _decayed(swin, recipe), _decayed(clip, recipe)
    tables = swin.no_weight_decay()
    assert len(tables) == 5 and all(n.endswith("attn.relative_position_bias_table") for n in tables)
    assert not tables & swin_decayed and "layers.0.blocks.0.attn.qkv.weight" in swin_decayed
    assert not {"pos_embed", "cls_token"} & clip_decayed and "blocks.0.attn.qkv.weight" in clip_decayed
