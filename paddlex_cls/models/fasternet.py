"""FasterNet (Chen et al., "Run, Don't Walk: Chasing Higher FLOPS for Faster Neural Networks", 2023).

Weight-compatible with PaddleClas ``FasterNet_*``: ``patch_embed`` (4x4/4 conv + BN), ``stages`` alternating
``BasicStage`` (``blocks.{i}`` of partial conv + 1x1 MLP) and ``PatchMerging`` (2x2/2 conv + BN), then
``avgpool_pre_head`` (pool, 1x1 conv to 1280, activation) and ``head``.
"""
from __future__ import annotations

from typing import Sequence

import paddle
import paddle.nn as nn
from paddle.nn.initializer import Constant, TruncatedNormal

from .layers import DropPath, check_min_size, make_act
from .registry import Preprocess, Recipe, register_model

_trunc_normal = TruncatedNormal(std=0.02)
_zeros = Constant(0.0)

MIN_SIZE = 32  # total stride of the network: smaller inputs leave no pixel for the last stage


class PartialConv(nn.Layer):
    """3x3 conv on the first ``dim // n_div`` channels; the other channels pass through unchanged."""

    def __init__(self, dim: int, n_div: int):
        super().__init__()
        self.dim_conv = dim // n_div
        self.dim_untouched = dim - self.dim_conv
        self.partial_conv3 = nn.Conv2D(self.dim_conv, self.dim_conv, 3, padding=1, bias_attr=False)

    def forward(self, x):
        x1, x2 = paddle.split(x, [self.dim_conv, self.dim_untouched], axis=1)
        return paddle.concat([self.partial_conv3(x1), x2], axis=1)


class MLPBlock(nn.Layer):
    """Partial conv, then 1x1 conv (x mlp_ratio) -> BN -> act -> 1x1 conv, added to the block input."""

    def __init__(self, dim: int, n_div: int, mlp_ratio: float, drop_path: float, act: str):
        super().__init__()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Conv2D(dim, hidden, 1, bias_attr=False),
            nn.BatchNorm2D(hidden),
            make_act(act),
            nn.Conv2D(hidden, dim, 1, bias_attr=False),
        )
        self.spatial_mixing = PartialConv(dim, n_div)

    def forward(self, x):
        return x + self.drop_path(self.mlp(self.spatial_mixing(x)))


class BasicStage(nn.Layer):
    """``depth`` MLP blocks at one resolution."""

    def __init__(self, dim: int, depth: int, n_div: int, mlp_ratio: float, drop_paths: Sequence[float], act: str):
        super().__init__()
        self.blocks = nn.Sequential(*[MLPBlock(dim, n_div, mlp_ratio, drop_paths[i], act) for i in range(depth)])

    def forward(self, x):
        return self.blocks(x)


class PatchEmbed(nn.Layer):
    """Non-overlapping ``patch`` x ``patch`` conv stem followed by BN."""

    def __init__(self, in_channels: int, dim: int, patch: int = 4):
        super().__init__()
        self.proj = nn.Conv2D(in_channels, dim, patch, stride=patch, bias_attr=False)
        self.norm = nn.BatchNorm2D(dim, momentum=0.1)  # as in the reference (the other BNs keep Paddle's 0.9)

    def forward(self, x):
        return self.norm(self.proj(x))


class PatchMerging(nn.Layer):
    """2x2 stride-2 conv doubling the channels, followed by BN."""

    def __init__(self, dim: int, patch: int = 2):
        super().__init__()
        self.reduction = nn.Conv2D(dim, 2 * dim, patch, stride=patch, bias_attr=False)
        self.norm = nn.BatchNorm2D(2 * dim)

    def forward(self, x):
        return self.norm(self.reduction(x))


class FasterNet(nn.Layer):
    """FasterNet classifier.

    Args:
        embed_dim: channels of the first stage (doubled at every stage).
        depths: blocks per stage.
        act: ``gelu`` or ``relu``.
        num_classes: classifier outputs.
        drop_path_rate: stochastic-depth rate of the last block (linearly increasing from 0).
        mlp_ratio: hidden width of the block MLP relative to its input.
        n_div: 1 / the fraction of channels the partial conv touches.
        feature_dim: channels of the 1x1 conv before the classifier.
        in_channels: image channels.
        model_name: name used in error messages.
    """

    def __init__(self, embed_dim: int, depths: Sequence[int], act: str, num_classes: int = 1000,
                 drop_path_rate: float = 0.0, mlp_ratio: float = 2.0, n_div: int = 4, feature_dim: int = 1280,
                 in_channels: int = 3, model_name: str = "FasterNet"):
        super().__init__()
        self.model_name = model_name
        self.patch_embed = PatchEmbed(in_channels, embed_dim)
        rates = [float(r) for r in paddle.linspace(0, drop_path_rate, sum(depths)).numpy()]
        layers = []
        for i, depth in enumerate(depths):
            dim = embed_dim * 2 ** i
            start = sum(depths[:i])
            layers.append(BasicStage(dim, depth, n_div, mlp_ratio, rates[start:start + depth], act))
            if i < len(depths) - 1:
                layers.append(PatchMerging(dim))
        self.stages = nn.Sequential(*layers)
        num_features = embed_dim * 2 ** (len(depths) - 1)
        self.avgpool_pre_head = nn.Sequential(
            nn.AdaptiveAvgPool2D(1),
            nn.Conv2D(num_features, feature_dim, 1, bias_attr=False),
            make_act(act),
        )
        self.head = nn.Linear(feature_dim, num_classes)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(layer: nn.Layer) -> None:
        if isinstance(layer, (nn.Conv2D, nn.Linear)):
            _trunc_normal(layer.weight)
            if layer.bias is not None:
                _zeros(layer.bias)

    def _check_size(self, x) -> None:
        check_min_size(self.model_name, x, MIN_SIZE)

    def forward(self, x):
        self._check_size(x)
        x = self.avgpool_pre_head(self.stages(self.patch_embed(x)))
        return self.head(paddle.flatten(x, start_axis=1))


# name: (embed_dim, depths, act, batch size, weight decay, grad clip, augment, published top-1)
_MIXING = ("mixup", "cutmix")
_VARIANTS = {
    "FasterNet-T0": (40, (1, 2, 8, 2), "gelu", 128, 0.005, None, _MIXING, 0.719),
    "FasterNet-T1": (64, (1, 2, 8, 2), "gelu", 128, 0.01, None, ("timm_autoaugment",) + _MIXING, 0.759),
    "FasterNet-T2": (96, (1, 2, 8, 2), "relu", 128, 0.02, None, ("timm_autoaugment",) + _MIXING, 0.791),
    "FasterNet-S": (128, (1, 2, 13, 2), "relu", 128, 0.03, None, ("timm_autoaugment",) + _MIXING, 0.813),
    "FasterNet-M": (144, (3, 4, 18, 3), "relu", 64, 0.05, 1.0, ("timm_autoaugment",) + _MIXING, 0.830),
    "FasterNet-L": (192, (3, 4, 18, 3), "relu", 64, 0.05, 0.01, ("timm_autoaugment",) + _MIXING, 0.835),
}

# PaddleX's inference.yml (the configs' Infer section): resize short side 256 (default, bilinear), crop 224.
_PREPROCESS = Preprocess(input_size=224, resize_short=256, interpolation="bilinear", min_size=MIN_SIZE)


def _entry(name: str) -> dict:
    _, _, _, batch_size, weight_decay, clip, augment, top1 = _VARIANTS[name]
    # PaddleX's FasterNet configs: AdamW without decay on 1-D params, label smoothing 0.1, per-variant weight decay,
    # gradient clip (global norm) on M/L, RandAugment (timm rand-m3..m7) from T1 on, mixup + cutmix.
    recipe = Recipe(batch_size=batch_size, learning_rate=3e-3, optimizer="adamw", weight_decay=weight_decay,
                    no_decay_norm_bias=True, label_smoothing=0.1, grad_clip=clip, augment=augment)
    return dict(family="FasterNet", preprocess=_PREPROCESS, recipe=recipe, imagenet_top1=top1)


# The builders' drop_path_rate defaults are PaddleClas' per-variant values (PaddleX passes none of its own).
def _build(name: str, num_classes: int, drop_path_rate: float, **kwargs) -> FasterNet:
    embed_dim, depths, act = _VARIANTS[name][:3]
    return FasterNet(embed_dim, depths, act, num_classes=num_classes, drop_path_rate=drop_path_rate,
                     model_name=name, **kwargs)


@register_model("FasterNet-T0", **_entry("FasterNet-T0"))
def fasternet_t0(*, num_classes: int = 1000, drop_path_rate: float = 0.0, **kwargs) -> nn.Layer:
    return _build("FasterNet-T0", num_classes, drop_path_rate, **kwargs)


@register_model("FasterNet-T1", **_entry("FasterNet-T1"))
def fasternet_t1(*, num_classes: int = 1000, drop_path_rate: float = 0.02, **kwargs) -> nn.Layer:
    return _build("FasterNet-T1", num_classes, drop_path_rate, **kwargs)


@register_model("FasterNet-T2", **_entry("FasterNet-T2"))
def fasternet_t2(*, num_classes: int = 1000, drop_path_rate: float = 0.05, **kwargs) -> nn.Layer:
    return _build("FasterNet-T2", num_classes, drop_path_rate, **kwargs)


@register_model("FasterNet-S", **_entry("FasterNet-S"))
def fasternet_s(*, num_classes: int = 1000, drop_path_rate: float = 0.1, **kwargs) -> nn.Layer:
    return _build("FasterNet-S", num_classes, drop_path_rate, **kwargs)


@register_model("FasterNet-M", **_entry("FasterNet-M"))
def fasternet_m(*, num_classes: int = 1000, drop_path_rate: float = 0.2, **kwargs) -> nn.Layer:
    return _build("FasterNet-M", num_classes, drop_path_rate, **kwargs)


@register_model("FasterNet-L", **_entry("FasterNet-L"))
def fasternet_l(*, num_classes: int = 1000, drop_path_rate: float = 0.3, **kwargs) -> nn.Layer:
    return _build("FasterNet-L", num_classes, drop_path_rate, **kwargs)
