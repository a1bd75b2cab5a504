"""StarNet (Ma et al., "Rewrite the Stars", CVPR 2024), weight-compatible with PaddleClas ``StarNet_S*``.

Layout of the official weights: ``stem.0`` (3x3/2 conv + BN, ReLU6), ``stages.{i}.0`` a 3x3/2 downsampling
conv + BN and ``stages.{i}.{j>0}`` star blocks, then ``norm`` (BN), global pooling and ``head``. Every conv has a
bias; each conv sits in a wrapper with ``conv`` (and ``bn`` when normalised) sub-layers.
"""
from __future__ import annotations

from typing import Sequence

import paddle
import paddle.nn as nn

from .layers import DropPath
from .registry import Preprocess, Recipe, register_model


class ConvBias(nn.Layer):
    """Conv2D with bias, optionally followed by BatchNorm (``conv``/``bn`` names of the reference)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 groups: int = 1, with_bn: bool = True):
        super().__init__()
        self.conv = nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                              groups=groups)
        self.bn = nn.BatchNorm2D(out_channels) if with_bn else nn.Identity()

    def forward(self, x):
        return self.bn(self.conv(x))


class StarBlock(nn.Layer):
    """Depthwise 7x7 + BN, two 1x1 expansions multiplied (ReLU6(f1) * f2), 1x1 + BN, depthwise 7x7, residual."""

    def __init__(self, dim: int, mlp_ratio: int = 4, drop_path: float = 0.0):
        super().__init__()
        self.dwconv = ConvBias(dim, dim, 7, groups=dim)
        self.f1 = ConvBias(dim, mlp_ratio * dim, with_bn=False)
        self.f2 = ConvBias(dim, mlp_ratio * dim, with_bn=False)
        self.g = ConvBias(mlp_ratio * dim, dim)
        self.dwconv2 = ConvBias(dim, dim, 7, groups=dim, with_bn=False)
        self.act = nn.ReLU6()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):
        y = self.dwconv(x)
        y = self.act(self.f1(y)) * self.f2(y)
        return x + self.drop_path(self.dwconv2(self.g(y)))


class StarNet(nn.Layer):
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
        self.stem = nn.Sequential(ConvBias(3, stem_dim, 3, stride=2), nn.ReLU6())
        rates = [float(r) for r in paddle.linspace(0, drop_path_rate, sum(depths)).numpy()]
        self.stages = nn.LayerList()
        in_dim, start = stem_dim, 0
        for i, depth in enumerate(depths):
            dim = base_dim * 2 ** i
            blocks = [StarBlock(dim, mlp_ratio, rates[start + j]) for j in range(depth)]
            self.stages.append(nn.Sequential(ConvBias(in_dim, dim, 3, stride=2), *blocks))
            in_dim, start = dim, start + depth
        self.norm = nn.BatchNorm2D(in_dim)
        self.avgpool = nn.AdaptiveAvgPool2D(1)
        self.head = nn.Linear(in_dim, num_classes)
        nn.initializer.Constant(0.0)(self.head.bias)  # the reference zeroes Linear biases; convs keep Paddle's init

    def forward(self, x):
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        x = self.avgpool(self.norm(x))
        return self.head(paddle.flatten(x, start_axis=1))


# name: (base_dim, depths, published top-1)
_VARIANTS = {
    "StarNet-S1": (24, (2, 2, 8, 3), 0.736),
    "StarNet-S2": (32, (1, 2, 6, 2), 0.748),
    "StarNet-S3": (32, (2, 2, 8, 4), 0.770),
    "StarNet-S4": (32, (3, 3, 12, 5), 0.790),
}

# PaddleX's inference.yml (the configs' Infer section): resize short side 224 (default, bilinear), crop 224.
_PREPROCESS = Preprocess(input_size=224, resize_short=224, interpolation="bilinear", min_size=1)

# PaddleX's StarNet configs: AdamW wd 0.05 without decay on 1-D params, label smoothing 0.1, timm RandAugment
# (rand-m1-mstd0.5-inc1), random erasing 0.25, mixup 0.8 / cutmix 0.2; no EMA, no gradient clip.
_RECIPE = Recipe(batch_size=128, learning_rate=3e-3, optimizer="adamw", weight_decay=0.05, no_decay_norm_bias=True,
                 label_smoothing=0.1, augment=("timm_autoaugment", "random_erasing", "mixup", "cutmix"))


def _entry(name: str) -> dict:
    return dict(family="StarNet", preprocess=_PREPROCESS, recipe=_RECIPE, imagenet_top1=_VARIANTS[name][2])


# The builders' drop_path_rate defaults are the values PaddleX's configs pass.
def _build(name: str, num_classes: int, drop_path_rate: float, **kwargs) -> StarNet:
    base_dim, depths, _ = _VARIANTS[name]
    return StarNet(base_dim, depths, num_classes=num_classes, drop_path_rate=drop_path_rate, **kwargs)


@register_model("StarNet-S1", **_entry("StarNet-S1"))
def starnet_s1(*, num_classes: int = 1000, drop_path_rate: float = 0.0, **kwargs) -> nn.Layer:
    return _build("StarNet-S1", num_classes, drop_path_rate, **kwargs)


@register_model("StarNet-S2", **_entry("StarNet-S2"))
def starnet_s2(*, num_classes: int = 1000, drop_path_rate: float = 0.01, **kwargs) -> nn.Layer:
    return _build("StarNet-S2", num_classes, drop_path_rate, **kwargs)


@register_model("StarNet-S3", **_entry("StarNet-S3"))
def starnet_s3(*, num_classes: int = 1000, drop_path_rate: float = 0.01, **kwargs) -> nn.Layer:
    return _build("StarNet-S3", num_classes, drop_path_rate, **kwargs)


@register_model("StarNet-S4", **_entry("StarNet-S4"))
def starnet_s4(*, num_classes: int = 1000, drop_path_rate: float = 0.02, **kwargs) -> nn.Layer:
    return _build("StarNet-S4", num_classes, drop_path_rate, **kwargs)
