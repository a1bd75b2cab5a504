"""FasterNet (Chen et al., "Run, Don't Walk: Chasing Higher FLOPS for Faster Neural Networks", 2023).

Weight-compatible with PaddleClas ``FasterNet_*``: ``patch_embed`` (4x4/4 conv + BN), ``stages`` alternating
``BasicStage`` (``blocks.{i}`` of partial conv + 1x1 MLP) and ``PatchMerging`` (2x2/2 conv + BN), then
``avgpool_pre_head`` (pool, 1x1 conv to 1280, activation) and ``head``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence, Tuple

import paddle
import paddle.nn as nn

from .layers import make_act, make_drop_path, trunc_normal_init
from .registry import Preprocess, Recipe, Variant, register_family

FAMILY = "FasterNet"
MIN_SIZE = 32  # total stride of the network (unpadded strided convs): smaller inputs leave no pixel for the last stage


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
        self.drop_path = make_drop_path(drop_path)
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
    """

    def __init__(self, embed_dim: int, depths: Sequence[int], act: str, num_classes: int = 1000,
                 drop_path_rate: float = 0.0, mlp_ratio: float = 2.0, n_div: int = 4, feature_dim: int = 1280,
                 in_channels: int = 3):
        super().__init__()
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
        trunc_normal_init(self.sublayers())

    def forward(self, x):
        x = self.avgpool_pre_head(self.stages(self.patch_embed(x)))
        return self.head(paddle.flatten(x, start_axis=1))


@dataclass(frozen=True)
class FasterNetArch:
    """The arguments of :class:`FasterNet` that tell its variants apart."""

    embed_dim: int
    depths: Tuple[int, int, int, int]
    act: str
    drop_path_rate: float


# PaddleX's inference.yml (the configs' Infer section): resize short side 256 (default, bilinear), crop 224.
PREPROCESS = Preprocess(input_size=224, resize_short=256, interpolation="bilinear", min_size=MIN_SIZE)
# PaddleX's FasterNet configs: AdamW without decay on 1-D params, label smoothing 0.1, per-model weight decay,
# gradient clip (global norm) on M/L, RandAugment (timm rand-m3..m7) from T1 on, mixup + cutmix. The drop-path rates
# are PaddleClas' per-model values (PaddleX passes none of its own).
RECIPE = Recipe(batch_size=128, learning_rate=3e-3, optimizer="adamw", weight_decay=0.01, no_decay_norm_bias=True,
                label_smoothing=0.1, augment=("timm_autoaugment", "mixup", "cutmix"))
SHALLOW = (1, 2, 8, 2)

VARIANTS = (
    Variant("FasterNet-T0", FasterNetArch(40, SHALLOW, "gelu", drop_path_rate=0.0), PREPROCESS,
            replace(RECIPE, weight_decay=0.005, augment=("mixup", "cutmix")), top1=0.719),
    Variant("FasterNet-T1", FasterNetArch(64, SHALLOW, "gelu", drop_path_rate=0.02), PREPROCESS, RECIPE,
            top1=0.759),
    Variant("FasterNet-T2", FasterNetArch(96, SHALLOW, "relu", drop_path_rate=0.05), PREPROCESS,
            replace(RECIPE, weight_decay=0.02), top1=0.791),
    Variant("FasterNet-S", FasterNetArch(128, (1, 2, 13, 2), "relu", drop_path_rate=0.1), PREPROCESS,
            replace(RECIPE, weight_decay=0.03), top1=0.813),
    Variant("FasterNet-M", FasterNetArch(144, (3, 4, 18, 3), "relu", drop_path_rate=0.2), PREPROCESS,
            replace(RECIPE, batch_size=64, weight_decay=0.05, grad_clip=1.0), top1=0.830),
    Variant("FasterNet-L", FasterNetArch(192, (3, 4, 18, 3), "relu", drop_path_rate=0.3), PREPROCESS,
            replace(RECIPE, batch_size=64, weight_decay=0.05, grad_clip=0.01), top1=0.835),
)

register_family(FAMILY, VARIANTS, FasterNet, head="head")
