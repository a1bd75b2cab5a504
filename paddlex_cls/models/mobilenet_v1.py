"""MobileNetV1 (Howard et al., 2017): a plain stack of depthwise-separable convolutions.

Layout and names follow PaddleClas ``legendary_models/mobilenet_v1.py`` so that the official weights load:
``conv`` (stem), ``blocks.<i>.{depthwise_conv,pointwise_conv}.{conv,bn}``, ``fc``. Every conv is followed by
BatchNorm and ReLU; channels scale as ``int(c * scale)`` (truncation, no rounding to multiples of 8).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Tuple

import paddle.nn as nn

from .layers import ConvBN, PooledClassifier, kaiming_normal_init
from .registry import Preprocess, Recipe, Variant, register_family

FAMILY = "MobileNetV1"


class BlockCfg(NamedTuple):
    in_channels: int  # at scale 1.0
    out_channels: int  # at scale 1.0
    stride: int


# The 13 depthwise-separable blocks at scale 1.0.
BLOCKS: Tuple[BlockCfg, ...] = tuple(BlockCfg(*row) for row in (
    (32, 64, 1),
    (64, 128, 2),
    (128, 128, 1),
    (128, 256, 2),
    (256, 256, 1),
    (256, 512, 2),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 1024, 2),
    (1024, 1024, 1),
))


class DepthwiseSeparable(nn.Layer):
    """3x3 depthwise conv (carries the stride) then 1x1 pointwise conv, each with BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.depthwise_conv = ConvBN(in_channels, in_channels, 3, stride=stride, groups=in_channels, act="relu")
        self.pointwise_conv = ConvBN(in_channels, out_channels, 1, act="relu")

    def forward(self, x):
        return self.pointwise_conv(self.depthwise_conv(x))


class MobileNetV1(PooledClassifier):
    """MobileNetV1 classifier.

    Args:
        scale: width multiplier applied to every layer.
        num_classes: size of the classifier output.
    """

    def __init__(self, scale: float = 1.0, num_classes: int = 1000):
        super().__init__()
        self.scale = scale
        self.conv = ConvBN(3, int(32 * scale), 3, stride=2, act="relu")
        self.blocks = nn.Sequential(*[
            DepthwiseSeparable(int(b.in_channels * scale), int(b.out_channels * scale), b.stride) for b in BLOCKS
        ])
        self._add_classifier(int(BLOCKS[-1].out_channels * scale), num_classes)
        # PaddleClas initialises every conv and the classifier weight with Kaiming-normal (fan-in).
        kaiming_normal_init(self.sublayers(), linear_weights=True)

    def forward_features(self, x):
        return self.blocks(self.conv(x))


@dataclass(frozen=True)
class MobileNetV1Arch:
    """The arguments of :class:`MobileNetV1` that tell its variants apart."""

    scale: float


# Fully convolutional with padded strided convs and an adaptive pool: any input size runs.
PREPROCESS = Preprocess(input_size=224, resize_short=256, interpolation="bilinear", min_size=1)
# PaddleX/PaddleClas MobileNetV1 configs: Momentum 0.9, L2 3e-5, plain cross entropy, crop + flip only.
RECIPE = Recipe(batch_size=64, learning_rate=0.1, optimizer="momentum", weight_decay=3e-5)

VARIANTS = (
    Variant("MobileNetV1_x0_25", MobileNetV1Arch(scale=0.25), PREPROCESS, RECIPE, top1=0.514),
    Variant("MobileNetV1_x0_5", MobileNetV1Arch(scale=0.5), PREPROCESS, RECIPE, top1=0.635),
    Variant("MobileNetV1_x0_75", MobileNetV1Arch(scale=0.75), PREPROCESS, RECIPE, top1=0.688),
    Variant("MobileNetV1_x1_0", MobileNetV1Arch(scale=1.0), PREPROCESS, RECIPE, top1=0.710),
)

register_family(FAMILY, VARIANTS, MobileNetV1, head="fc")
