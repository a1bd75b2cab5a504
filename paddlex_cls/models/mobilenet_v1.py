"""MobileNetV1 (Howard et al., 2017): a plain stack of depthwise-separable convolutions.

Layout and names follow PaddleClas ``legendary_models/mobilenet_v1.py`` so that the official weights load:
``conv`` (stem), ``blocks.<i>.{depthwise_conv,pointwise_conv}.{conv,bn}``, ``fc``. Every conv is followed by
BatchNorm and ReLU; channels scale as ``int(c * scale)`` (truncation, no rounding to multiples of 8).
"""
from __future__ import annotations

from typing import NamedTuple, Tuple

import paddle.nn as nn

from .layers import ConvBN
from .registry import Preprocess, Recipe, register_model

FAMILY = "MobileNetV1"

# (input channels, output channels, stride) of the 13 depthwise-separable blocks at scale 1.0.
BLOCKS: Tuple[Tuple[int, int, int], ...] = (
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
)


class DepthwiseSeparable(nn.Layer):
    """3x3 depthwise conv (carries the stride) then 1x1 pointwise conv, each with BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.depthwise_conv = ConvBN(in_channels, in_channels, 3, stride=stride, groups=in_channels, act="relu")
        self.pointwise_conv = ConvBN(in_channels, out_channels, 1, act="relu")

    def forward(self, x):
        return self.pointwise_conv(self.depthwise_conv(x))


class MobileNetV1(nn.Layer):
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
            DepthwiseSeparable(int(cin * scale), int(cout * scale), stride) for cin, cout, stride in BLOCKS
        ])
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        self.fc = nn.Linear(int(BLOCKS[-1][1] * scale), num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # PaddleClas initialises every conv and the classifier weight with Kaiming-normal (fan-in).
        kaiming = nn.initializer.KaimingNormal()
        for layer in self.sublayers():
            if isinstance(layer, (nn.Conv2D, nn.Linear)):
                kaiming(layer.weight)

    def forward(self, x):
        x = self.blocks(self.conv(x))
        return self.fc(self.flatten(self.avg_pool(x)))


class Variant(NamedTuple):
    scale: float
    top1: float  # ImageNet top-1 published by PaddleX


VARIANTS = {
    "MobileNetV1_x0_25": Variant(0.25, 0.514),
    "MobileNetV1_x0_5": Variant(0.5, 0.635),
    "MobileNetV1_x0_75": Variant(0.75, 0.688),
    "MobileNetV1_x1_0": Variant(1.0, 0.710),
}

PREPROCESS = Preprocess(input_size=224, resize_short=256, interpolation="bilinear")
# PaddleX/PaddleClas MobileNetV1 configs: Momentum 0.9, L2 3e-5, plain cross entropy, crop + flip only.
RECIPE = Recipe(batch_size=64, learning_rate=0.1, optimizer="momentum", weight_decay=3e-5)


def _register(name: str):
    return register_model(name, family=FAMILY, preprocess=PREPROCESS, recipe=RECIPE,
                          imagenet_top1=VARIANTS[name].top1)


def _build(name: str, num_classes: int, **kwargs) -> MobileNetV1:
    return MobileNetV1(scale=VARIANTS[name].scale, num_classes=num_classes, **kwargs)


@_register("MobileNetV1_x0_25")
def mobilenet_v1_x0_25(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("MobileNetV1_x0_25", num_classes, **kwargs)


@_register("MobileNetV1_x0_5")
def mobilenet_v1_x0_5(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("MobileNetV1_x0_5", num_classes, **kwargs)


@_register("MobileNetV1_x0_75")
def mobilenet_v1_x0_75(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("MobileNetV1_x0_75", num_classes, **kwargs)


@_register("MobileNetV1_x1_0")
def mobilenet_v1_x1_0(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("MobileNetV1_x1_0", num_classes, **kwargs)
