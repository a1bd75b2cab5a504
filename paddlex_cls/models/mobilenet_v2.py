"""MobileNetV2 (Sandler et al., 2018): inverted residual blocks with linear bottlenecks and ReLU6.

Layout and names follow PaddleClas ``model_zoo/mobilenet_v2.py`` so that the official weights load:
``conv1`` (stem), stages ``conv2`` .. ``conv8`` whose first block is ``_first_block`` and whose further blocks are
``conv<k>_<j>`` (j from 2), each block ``{_expand_conv,_bottleneck_conv,_linear_conv}.{_conv,_batch_norm}``,
then ``conv9`` (1x1 head conv) and the classifier ``out``. Channels scale as ``int(c * scale)``; the head conv
keeps 1280 channels unless scale > 1.
"""
from __future__ import annotations

from typing import NamedTuple, Tuple

import paddle.nn as nn
import paddle.nn.functional as F

from .registry import Preprocess, Recipe, register_model

FAMILY = "MobileNetV2"

# (expansion t, output channels c, blocks n, stride s) per stage at scale 1.0, as in the paper's Table 2.
STAGES: Tuple[Tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


class ConvBNReLU6(nn.Layer):
    """Conv2D (no bias) -> BatchNorm -> optional ReLU6, with PaddleClas' ``_conv``/``_batch_norm`` names."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
                 relu6: bool = True):
        super().__init__()
        self._conv = nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride,
                               padding=(kernel_size - 1) // 2, groups=groups, bias_attr=False)
        self._batch_norm = nn.BatchNorm2D(out_channels)
        self.relu6 = relu6

    def forward(self, x):
        x = self._batch_norm(self._conv(x))
        return F.relu6(x) if self.relu6 else x


class InvertedResidual(nn.Layer):
    """1x1 expand -> 3x3 depthwise (carries the stride) -> 1x1 linear projection, plus an optional identity.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: stride of the depthwise conv.
        expansion: expansion factor of the hidden width.
        shortcut: add the input to the output (PaddleClas does so on every block but the first of a stage).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int, shortcut: bool):
        super().__init__()
        hidden = int(round(in_channels * expansion))
        self.shortcut = shortcut
        self._expand_conv = ConvBNReLU6(in_channels, hidden, 1)
        self._bottleneck_conv = ConvBNReLU6(hidden, hidden, 3, stride=stride, groups=hidden)
        self._linear_conv = ConvBNReLU6(hidden, out_channels, 1, relu6=False)

    def forward(self, x):
        y = self._linear_conv(self._bottleneck_conv(self._expand_conv(x)))
        return x + y if self.shortcut else y


class InvertedResidualStage(nn.Layer):
    """``num_blocks`` inverted residual blocks; only the first changes the stride and the width.

    Args:
        name: stage name (``conv<k>``); further blocks are registered as ``<name>_<j>`` to match the weights.
    """

    def __init__(self, name: str, in_channels: int, out_channels: int, num_blocks: int, stride: int,
                 expansion: int):
        super().__init__()
        self._first_block = InvertedResidual(in_channels, out_channels, stride, expansion, shortcut=False)
        self._rest = [
            self.add_sublayer(f"{name}_{j}", InvertedResidual(out_channels, out_channels, 1, expansion, True))
            for j in range(2, num_blocks + 1)
        ]

    def forward(self, x):
        x = self._first_block(x)
        for block in self._rest:
            x = block(x)
        return x


class MobileNetV2(nn.Layer):
    """MobileNetV2 classifier.

    Args:
        scale: width multiplier.
        num_classes: size of the classifier output.
    """

    def __init__(self, scale: float = 1.0, num_classes: int = 1000):
        super().__init__()
        self.scale = scale
        in_channels = int(STEM_CHANNELS * scale)
        self.conv1 = ConvBNReLU6(3, in_channels, 3, stride=2)
        self._stages = []
        for k, (expansion, channels, num_blocks, stride) in enumerate(STAGES, start=2):
            out_channels = int(channels * scale)
            name = f"conv{k}"
            stage = InvertedResidualStage(name, in_channels, out_channels, num_blocks, stride, expansion)
            self._stages.append(self.add_sublayer(name, stage))
            in_channels = out_channels
        head_channels = int(HEAD_CHANNELS * scale) if scale > 1.0 else HEAD_CHANNELS
        self.conv9 = ConvBNReLU6(in_channels, head_channels, 1)
        self.pool2d_avg = nn.AdaptiveAvgPool2D(1)
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        self.out = nn.Linear(head_channels, num_classes)

    def forward(self, x):
        x = self.conv1(x)
        for stage in self._stages:
            x = stage(x)
        x = self.pool2d_avg(self.conv9(x))
        return self.out(self.flatten(x))


class Variant(NamedTuple):
    scale: float
    batch_size: int  # PaddleX per-card default
    weight_decay: float  # L2 coefficient of the PaddleClas ImageNet config
    top1: float  # ImageNet top-1 published by PaddleX


VARIANTS = {
    "MobileNetV2_x0_25": Variant(0.25, 256, 3e-5, 0.532),
    "MobileNetV2_x0_5": Variant(0.5, 256, 3e-5, 0.650),
    "MobileNetV2_x1_0": Variant(1.0, 256, 4e-5, 0.722),
    "MobileNetV2_x1_5": Variant(1.5, 128, 4e-5, 0.741),
    "MobileNetV2_x2_0": Variant(2.0, 128, 4e-5, 0.752),
}

PREPROCESS = Preprocess(input_size=224, resize_short=256, interpolation="bilinear")


def _register(name: str):
    variant = VARIANTS[name]
    # PaddleClas MobileNetV2 configs: Momentum 0.9 + cosine, plain cross entropy, crop + flip only.
    recipe = Recipe(batch_size=variant.batch_size, learning_rate=0.13, optimizer="momentum",
                    weight_decay=variant.weight_decay)
    return register_model(name, family=FAMILY, preprocess=PREPROCESS, recipe=recipe, imagenet_top1=variant.top1)


def _build(name: str, num_classes: int, **kwargs) -> MobileNetV2:
    return MobileNetV2(scale=VARIANTS[name].scale, num_classes=num_classes, **kwargs)


@_register("MobileNetV2_x0_25")
def mobilenet_v2_x0_25(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("MobileNetV2_x0_25", num_classes, **kwargs)


@_register("MobileNetV2_x0_5")
def mobilenet_v2_x0_5(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("MobileNetV2_x0_5", num_classes, **kwargs)


@_register("MobileNetV2_x1_0")
def mobilenet_v2_x1_0(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("MobileNetV2_x1_0", num_classes, **kwargs)


@_register("MobileNetV2_x1_5")
def mobilenet_v2_x1_5(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("MobileNetV2_x1_5", num_classes, **kwargs)


@_register("MobileNetV2_x2_0")
def mobilenet_v2_x2_0(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("MobileNetV2_x2_0", num_classes, **kwargs)
