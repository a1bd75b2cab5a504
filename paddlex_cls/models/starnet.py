"""StarNet (Ma et al., "Rewrite the Stars", CVPR 2024), weight-compatible with PaddleClas ``StarNet_S*``.

Layout of the official weights: ``stem.0`` (3x3/2 conv + BN, ReLU6), ``stages.{i}.0`` a 3x3/2 downsampling
conv + BN and ``stages.{i}.{j>0}`` star blocks, then ``norm`` (BN), global pooling and ``head``. Every conv has a
bias; each conv sits in a wrapper with ``conv`` (and ``bn`` when normalised) sub-layers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

import paddle
import paddle.nn as nn

from .layers import ZEROS, ConvBN, PooledClassifier, make_drop_path
from .registry import Preprocess, Recipe, Variant, register_family

FAMILY = "StarNet"


def _conv(in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1, groups: int = 1,
          with_bn: bool = True) -> ConvBN:
    """Conv2D with bias, optionally followed by BatchNorm (``conv``/``bn`` names of the reference)."""
    return ConvBN(in_channels, out_channels, kernel_size, stride=stride, groups=groups, bias=True, norm=with_bn)


class StarBlock(nn.Layer):
    """Depthwise 7x7 + BN, two 1x1 expansions multiplied (ReLU6(f1) * f2), 1x1 + BN, depthwise 7x7, residual."""

    def __init__(self, dim: int, mlp_ratio: int = 4, drop_path: float = 0.0):
        super().__init__()
        self.dwconv = _conv(dim, dim, 7, groups=dim)
        self.f1 = _conv(dim, mlp_ratio * dim, with_bn=False)
        self.f2 = _conv(dim, mlp_ratio * dim, with_bn=False)
        self.g = _conv(mlp_ratio * dim, dim)
        self.dwconv2 = _conv(dim, dim, 7, groups=dim, with_bn=False)
        self.act = nn.ReLU6()
        self.drop_path = make_drop_path(drop_path)

    def forward(self, x):
        y = self.dwconv(x)
        y = self.act(self.f1(y)) * self.f2(y)
        return x + self.drop_path(self.dwconv2(self.g(y)))


class StarNet(PooledClassifier):
    """StarNet classifier; fully convolutional, so any input size works (every stride-2 conv rounds up).

    Args:
        base_dim: channels of the first stage (doubled at every stage).
        depths: star blocks per stage.
        num_classes: classifier outputs.
        drop_path_rate: stochastic-depth rate of the last block (linearly increasing from 0).
        mlp_ratio: expansion of the star blocks' 1x1 convs.
        stem_dim: channels of the stem conv.
    """

    def __init__(self, base_dim: int, depths: Sequence[int], num_classes: int = 1000, drop_path_rate: float = 0.0,
                 mlp_ratio: int = 4, stem_dim: int = 32):
        super().__init__()
        self.stem = nn.Sequential(_conv(3, stem_dim, 3, stride=2), nn.ReLU6())
        rates = [float(r) for r in paddle.linspace(0, drop_path_rate, sum(depths)).numpy()]
        stages = []
        in_dim, start = stem_dim, 0
        for i, depth in enumerate(depths):
            dim = base_dim * 2 ** i
            blocks = [StarBlock(dim, mlp_ratio, rates[start + j]) for j in range(depth)]
            stages.append(nn.Sequential(_conv(in_dim, dim, 3, stride=2), *blocks))
            in_dim, start = dim, start + depth
        self.stages = nn.Sequential(*stages)
        self.norm = nn.BatchNorm2D(in_dim)
        self._add_classifier(in_dim, num_classes, head_name="head")
        ZEROS(self.head.bias)  # the reference zeroes Linear biases; convs keep Paddle's init

    def forward_features(self, x):
        return self.norm(self.stages(self.stem(x)))


@dataclass(frozen=True)
class StarNetArch:
    """The arguments of :class:`StarNet` that tell its variants apart."""

    base_dim: int
    depths: Tuple[int, int, int, int]
    drop_path_rate: float


# PaddleX's inference.yml (the configs' Infer section): resize short side 224 (default, bilinear), crop 224.
PREPROCESS = Preprocess(input_size=224, resize_short=224, interpolation="bilinear", min_size=1)
# PaddleX's StarNet configs: AdamW wd 0.05 without decay on 1-D params, label smoothing 0.1, timm RandAugment
# (rand-m1-mstd0.5-inc1), random erasing 0.25, mixup 0.8 / cutmix 0.2; no EMA, no gradient clip. The drop-path
# rates are the values PaddleX's configs pass.
RECIPE = Recipe(batch_size=128, learning_rate=3e-3, optimizer="adamw", weight_decay=0.05, no_decay_norm_bias=True,
                label_smoothing=0.1, augment=("timm_autoaugment", "random_erasing", "mixup", "cutmix"))

VARIANTS = (
    Variant("StarNet-S1", StarNetArch(24, (2, 2, 8, 3), drop_path_rate=0.0), PREPROCESS, RECIPE, top1=0.736),
    Variant("StarNet-S2", StarNetArch(32, (1, 2, 6, 2), drop_path_rate=0.01), PREPROCESS, RECIPE, top1=0.748),
    Variant("StarNet-S3", StarNetArch(32, (2, 2, 8, 4), drop_path_rate=0.01), PREPROCESS, RECIPE, top1=0.770),
    Variant("StarNet-S4", StarNetArch(32, (3, 3, 12, 5), drop_path_rate=0.02), PREPROCESS, RECIPE, top1=0.790),
)

register_family(FAMILY, VARIANTS, StarNet, head="head")
