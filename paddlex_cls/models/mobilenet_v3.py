"""MobileNetV3 (Howard et al., 2019), large and small, as PaddleClas ``legendary_models/mobilenet_v3.py`` builds it.

Names follow the official weights: ``conv`` (stem), ``blocks.<i>.{expand_conv,bottleneck_conv,mid_se,linear_conv}``,
``last_second_conv``, ``last_conv`` (1x1 conv without BN, after the global pool), ``fc``. PaddleClas details that
change the numbers: the SE gate is ``hardsigmoid(x, slope=0.2, offset=0.5)`` (not x/6 + 0.5) with a squeeze of
``channels // 4``; the head dropout uses ``downscale_in_infer`` (eval output is scaled by 1 - p); the stem and the
block-expand conv of block 0 are always present (also when the expansion is 1).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple, Optional, Tuple

import paddle.nn as nn
import paddle.nn.functional as F

from .layers import ConvBN, PooledClassifier, SqueezeExcite, conv_bn_no_bn_decay, make_divisible
from .registry import Preprocess, Recipe, Variant, register_family

FAMILY = "MobileNetV3"


class BlockCfg(NamedTuple):
    kernel: int
    expand: int  # hidden width at scale 1.0
    out: int  # output width at scale 1.0
    se: bool
    act: str
    stride: int


@dataclass(frozen=True)
class BlockTable:
    """The residual units of one MobileNetV3 size and the width of the 1x1 conv before the pool, at scale 1.0."""

    blocks: Tuple[BlockCfg, ...]
    squeeze: int


LARGE = BlockTable(squeeze=960, blocks=tuple(BlockCfg(*row) for row in (
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hardswish", 2),
    (3, 200, 80, False, "hardswish", 1),
    (3, 184, 80, False, "hardswish", 1),
    (3, 184, 80, False, "hardswish", 1),
    (3, 480, 112, True, "hardswish", 1),
    (3, 672, 112, True, "hardswish", 1),
    (5, 672, 160, True, "hardswish", 2),
    (5, 960, 160, True, "hardswish", 1),
    (5, 960, 160, True, "hardswish", 1),
)))
SMALL = BlockTable(squeeze=576, blocks=tuple(BlockCfg(*row) for row in (
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hardswish", 2),
    (5, 240, 40, True, "hardswish", 1),
    (5, 240, 40, True, "hardswish", 1),
    (5, 120, 48, True, "hardswish", 1),
    (5, 144, 48, True, "hardswish", 1),
    (5, 288, 96, True, "hardswish", 2),
    (5, 576, 96, True, "hardswish", 1),
    (5, 576, 96, True, "hardswish", 1),
)))
STEM_CHANNELS = 16
HEAD_CHANNELS = 1280  # width of ``last_conv``; not scaled


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
             act: Optional[str] = None) -> ConvBN:
    return conv_bn_no_bn_decay(in_channels, out_channels, kernel_size, stride, groups, act)


def _se_gate(x):
    return F.hardsigmoid(x, slope=0.2, offset=0.5)


def _se(channels: int) -> SqueezeExcite:
    """SE over C // 4 with the hardsigmoid(0.2, 0.5) gate of PaddleClas' MobileNetV3."""
    return SqueezeExcite(channels, 4, _se_gate)


class ResidualUnit(nn.Layer):
    """1x1 expand -> kxk depthwise -> [SE] -> 1x1 linear projection; identity when stride 1 and widths match."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, kernel: int, stride: int, se: bool,
                 act: str):
        super().__init__()
        self.use_shortcut = stride == 1 and in_channels == out_channels
        self.expand_conv = _conv_bn(in_channels, hidden, 1, act=act)
        self.bottleneck_conv = _conv_bn(hidden, hidden, kernel, stride=stride, groups=hidden, act=act)
        self.mid_se = _se(hidden) if se else None
        self.linear_conv = _conv_bn(hidden, out_channels, 1)

    def forward(self, x):
        y = self.bottleneck_conv(self.expand_conv(x))
        if self.mid_se is not None:
            y = self.mid_se(y)
        y = self.linear_conv(y)
        return x + y if self.use_shortcut else y


class MobileNetV3(PooledClassifier):
    """MobileNetV3 classifier.

    Args:
        table: ``LARGE`` or ``SMALL``.
        scale: width multiplier (widths are rounded to multiples of 8).
        num_classes: size of the classifier output.
        dropout_prob: dropout before the classifier (``downscale_in_infer``, as PaddleClas); None disables it.
    """

    def __init__(self, table: BlockTable = LARGE, scale: float = 1.0, num_classes: int = 1000,
                 dropout_prob: Optional[float] = 0.2):
        super().__init__()
        self.scale = scale
        in_channels = make_divisible(STEM_CHANNELS * scale)
        self.conv = _conv_bn(3, in_channels, 3, stride=2, act="hardswish")
        units = []
        for cfg in table.blocks:
            out_channels = make_divisible(cfg.out * scale)
            units.append(ResidualUnit(in_channels, make_divisible(cfg.expand * scale), out_channels, cfg.kernel,
                                      cfg.stride, cfg.se, cfg.act))
            in_channels = out_channels
        self.blocks = nn.Sequential(*units)
        squeeze_channels = make_divisible(table.squeeze * scale)
        self.last_second_conv = _conv_bn(in_channels, squeeze_channels, 1, act="hardswish")
        self._add_classifier(squeeze_channels, num_classes, expand=HEAD_CHANNELS, act="hardswish",
                             dropout_prob=dropout_prob or 0.0)

    def forward_features(self, x):
        return self.last_second_conv(self.blocks(self.conv(x)))


@dataclass(frozen=True)
class MobileNetV3Arch:
    """The arguments of :class:`MobileNetV3` that tell its variants apart."""

    table: BlockTable
    scale: float


# Fully convolutional with padded strided convs and an adaptive pool: any input size runs.
PREPROCESS = Preprocess(input_size=224, resize_short=256, interpolation="bilinear", min_size=1)
# PaddleClas MobileNetV3 configs: Momentum 0.9 + cosine with warmup, label smoothing 0.1, per-model L2; BN params
# carry their own zero decay (see ``_conv_bn``), so the optimizer-level exclusion stays off. PaddleX's per-card
# batch sizes: 128 (large), 256 (small).
LARGE_RECIPE = Recipe(batch_size=128, learning_rate=0.13, optimizer="momentum", weight_decay=2e-5,
                      label_smoothing=0.1)
SMALL_RECIPE = replace(LARGE_RECIPE, batch_size=256)

VARIANTS = (
    Variant("MobileNetV3_large_x0_35", MobileNetV3Arch(LARGE, scale=0.35), PREPROCESS, LARGE_RECIPE, top1=0.643),
    Variant("MobileNetV3_large_x0_5", MobileNetV3Arch(LARGE, scale=0.5), PREPROCESS, LARGE_RECIPE, top1=0.692),
    Variant("MobileNetV3_large_x0_75", MobileNetV3Arch(LARGE, scale=0.75), PREPROCESS, LARGE_RECIPE, top1=0.731),
    Variant("MobileNetV3_large_x1_0", MobileNetV3Arch(LARGE, scale=1.0), PREPROCESS,
            replace(LARGE_RECIPE, augment=("autoaugment",)), top1=0.753),
    Variant("MobileNetV3_large_x1_25", MobileNetV3Arch(LARGE, scale=1.25), PREPROCESS,
            replace(LARGE_RECIPE, weight_decay=4e-5), top1=0.764),
    Variant("MobileNetV3_small_x0_35", MobileNetV3Arch(SMALL, scale=0.35), PREPROCESS,
            replace(SMALL_RECIPE, weight_decay=1e-5), top1=0.530),
    Variant("MobileNetV3_small_x0_5", MobileNetV3Arch(SMALL, scale=0.5), PREPROCESS,
            replace(SMALL_RECIPE, weight_decay=1e-5), top1=0.592),
    Variant("MobileNetV3_small_x0_75", MobileNetV3Arch(SMALL, scale=0.75), PREPROCESS, SMALL_RECIPE, top1=0.660),
    Variant("MobileNetV3_small_x1_0", MobileNetV3Arch(SMALL, scale=1.0), PREPROCESS, SMALL_RECIPE, top1=0.682),
    Variant("MobileNetV3_small_x1_25", MobileNetV3Arch(SMALL, scale=1.25), PREPROCESS, SMALL_RECIPE, top1=0.707),
)

register_family(FAMILY, VARIANTS, MobileNetV3, head="fc")
