"""MobileNetV2 (Sandler et al., 2018): inverted residual blocks with linear bottlenecks and ReLU6.

Layout and names follow PaddleClas ``model_zoo/mobilenet_v2.py`` so that the official weights load:
``conv1`` (stem), stages ``conv2`` .. ``conv8`` whose first block is ``_first_block`` and whose further blocks are
``conv<k>_<j>`` (j from 2), each block ``{_expand_conv,_bottleneck_conv,_linear_conv}.{_conv,_batch_norm}``,
then ``conv9`` (1x1 head conv) and the classifier ``out``. Channels scale as ``int(c * scale)``; the head conv
keeps 1280 channels unless scale > 1.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple, Tuple

import paddle.nn as nn
import paddle.nn.functional as F

from .layers import PooledClassifier
from .registry import Preprocess, Recipe, Variant, register_family

FAMILY = "MobileNetV2"


class StageCfg(NamedTuple):
    expansion: int  # t
    channels: int  # c, at scale 1.0
    num_blocks: int  # n
    stride: int  # s


# Per stage at scale 1.0, as in the paper's Table 2.
STAGES: Tuple[StageCfg, ...] = tuple(StageCfg(*row) for row in (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
))
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


class MobileNetV2(PooledClassifier):
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
        for k, cfg in enumerate(STAGES, start=2):
            out_channels = int(cfg.channels * scale)
            name = f"conv{k}"
            stage = InvertedResidualStage(name, in_channels, out_channels, cfg.num_blocks, cfg.stride, cfg.expansion)
            self._stages.append(self.add_sublayer(name, stage))
            in_channels = out_channels
        head_channels = int(HEAD_CHANNELS * scale) if scale > 1.0 else HEAD_CHANNELS
        self.conv9 = ConvBNReLU6(in_channels, head_channels, 1)
        self._add_classifier(head_channels, num_classes, head_name="out")

    def forward_features(self, x):
        x = self.conv1(x)
        for stage in self._stages:
            x = stage(x)
        return self.conv9(x)


@dataclass(frozen=True)
class MobileNetV2Arch:
    """The arguments of :class:`MobileNetV2` that tell its variants apart."""

    scale: float


# Fully convolutional with padded strided convs and an adaptive pool: any input size runs.
PREPROCESS = Preprocess(input_size=224, resize_short=256, interpolation="bilinear", min_size=1)
# PaddleClas MobileNetV2 configs: Momentum 0.9 + cosine, plain cross entropy, crop + flip only; L2 3e-5 for the
# narrow models, 4e-5 from x1_0; PaddleX's per-card batch size.
NARROW_RECIPE = Recipe(batch_size=256, learning_rate=0.13, optimizer="momentum", weight_decay=3e-5)
RECIPE = replace(NARROW_RECIPE, weight_decay=4e-5)
WIDE_RECIPE = replace(RECIPE, batch_size=128)

VARIANTS = (
    Variant("MobileNetV2_x0_25", MobileNetV2Arch(scale=0.25), PREPROCESS, NARROW_RECIPE, top1=0.532),
    Variant("MobileNetV2_x0_5", MobileNetV2Arch(scale=0.5), PREPROCESS, NARROW_RECIPE, top1=0.650),
    Variant("MobileNetV2_x1_0", MobileNetV2Arch(scale=1.0), PREPROCESS, RECIPE, top1=0.722),
    Variant("MobileNetV2_x1_5", MobileNetV2Arch(scale=1.5), PREPROCESS, WIDE_RECIPE, top1=0.741),
    Variant("MobileNetV2_x2_0", MobileNetV2Arch(scale=2.0), PREPROCESS, WIDE_RECIPE, top1=0.752),
)

register_family(FAMILY, VARIANTS, MobileNetV2, head="out")
