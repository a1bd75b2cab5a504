"""PP-LCNet (Cui et al., 2021): a CPU-friendly stack of depthwise-separable convolutions with hardswish.

Layout and names follow PaddleClas ``legendary_models/pp_lcnet.py`` so that the official weights load: ``conv1``
(stem), ``blocks2`` .. ``blocks6`` (each ``<i>.{dw_conv,se,pw_conv}``), ``last_conv`` (1x1 conv without bias or BN,
applied after the global pool), ``fc``. PaddleClas details that change the numbers: every conv is followed by BN and
hardswish; the SE gate of the last two blocks is plain ``hardsigmoid`` (x/6 + 1/2) over a ``C // 4`` squeeze; the
head dropout uses ``downscale_in_infer``, so eval outputs are scaled by ``1 - p``; widths are ``make_divisible(c *
scale)`` except the 1280-wide head, which does not scale.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, NamedTuple, Tuple

import paddle.nn as nn
import paddle.nn.functional as F

from .layers import ConvBN, PooledClassifier, SqueezeExcite, conv_bn_no_bn_decay, make_divisible
from .registry import Preprocess, Recipe, Variant, register_family

FAMILY = "PP-LCNet"


class BlockCfg(NamedTuple):
    kernel: int
    in_channels: int  # at scale 1.0
    out_channels: int  # at scale 1.0
    stride: int
    se: bool


# Stage name (= attribute name, as in the official weights) -> its depthwise-separable blocks at scale 1.0.
STAGES: Dict[str, Tuple[BlockCfg, ...]] = {
    "blocks2": (BlockCfg(3, 16, 32, 1, False),),
    "blocks3": (BlockCfg(3, 32, 64, 2, False), BlockCfg(3, 64, 64, 1, False)),
    "blocks4": (BlockCfg(3, 64, 128, 2, False), BlockCfg(3, 128, 128, 1, False)),
    "blocks5": (BlockCfg(3, 128, 256, 2, False),) + (BlockCfg(5, 256, 256, 1, False),) * 5,
    "blocks6": (BlockCfg(5, 256, 512, 2, True), BlockCfg(5, 512, 512, 1, True)),
}
STEM_CHANNELS = 16
HEAD_CHANNELS = 1280  # width of ``last_conv``; not scaled


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1) -> ConvBN:
    return conv_bn_no_bn_decay(in_channels, out_channels, kernel_size, stride, groups, act="hardswish")


def _se(channels: int) -> SqueezeExcite:
    """SE over C // 4 with Paddle's default hardsigmoid gate (slope 1/6, offset 1/2), as PaddleClas' nn.Hardsigmoid."""
    return SqueezeExcite(channels, 4, F.hardsigmoid)


class DepthwiseSeparable(nn.Layer):
    """k x k depthwise conv (carries the stride) -> [SE] -> 1x1 pointwise conv, each conv with BN + hardswish."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, se: bool):
        super().__init__()
        self.dw_conv = _conv_bn(in_channels, in_channels, kernel, stride=stride, groups=in_channels)
        self.se = _se(in_channels) if se else None
        self.pw_conv = _conv_bn(in_channels, out_channels, 1)

    def forward(self, x):
        x = self.dw_conv(x)
        if self.se is not None:
            x = self.se(x)
        return self.pw_conv(x)


class PPLCNet(PooledClassifier):
    """PP-LCNet classifier.

    Args:
        scale: width multiplier (widths are rounded to multiples of 8).
        num_classes: size of the classifier output.
        dropout_prob: dropout before the classifier (``downscale_in_infer``, as PaddleClas).
        class_expand: width of the 1x1 ``last_conv`` after the global pool.
    """

    def __init__(self, scale: float = 1.0, num_classes: int = 1000, dropout_prob: float = 0.2,
                 class_expand: int = HEAD_CHANNELS):
        super().__init__()
        self.scale = scale
        # Conv weights keep Paddle's default init, Normal(0, sqrt(2 / fan_in)): the same as PaddleClas' KaimingNormal.
        self.conv1 = _conv_bn(3, make_divisible(STEM_CHANNELS * scale), 3, stride=2)
        for stage, blocks in STAGES.items():
            setattr(self, stage, nn.Sequential(*[
                DepthwiseSeparable(make_divisible(b.in_channels * scale), make_divisible(b.out_channels * scale),
                                   b.kernel, b.stride, b.se) for b in blocks
            ]))
        last_width = make_divisible(STAGES["blocks6"][-1].out_channels * scale)
        self._add_classifier(last_width, num_classes, expand=class_expand, act="hardswish", dropout_prob=dropout_prob)

    def forward_features(self, x):
        x = self.conv1(x)
        for stage in STAGES:
            x = getattr(self, stage)(x)
        return x


@dataclass(frozen=True)
class PPLCNetArch:
    """The arguments of :class:`PPLCNet` that tell its variants apart."""

    scale: float


# Fully convolutional with padded strided convs and an adaptive pool: any input size runs.
PREPROCESS = Preprocess(input_size=224, resize_short=256, interpolation="bilinear", min_size=1)
# PaddleClas PPLCNet_x*.yaml: Momentum 0.9, lr 0.1, label smoothing 0.1, L2 3e-5 (4e-5 from x1_5); PaddleX's default
# batch size per card. BN scale/shift carry their own L2Decay(0.0) (set on the parameters), while SE and classifier
# biases are decayed, so the recipe does not exclude all 1-D parameters.
RECIPE = Recipe(batch_size=256, learning_rate=0.1, optimizer="momentum", weight_decay=3e-5, label_smoothing=0.1)
WIDE_RECIPE = replace(RECIPE, batch_size=128, weight_decay=4e-5)

VARIANTS = (
    Variant("PP-LCNet_x0_25", PPLCNetArch(scale=0.25), PREPROCESS, RECIPE, top1=0.5186),
    Variant("PP-LCNet_x0_35", PPLCNetArch(scale=0.35), PREPROCESS, RECIPE, top1=0.5809),
    Variant("PP-LCNet_x0_5", PPLCNetArch(scale=0.5), PREPROCESS, RECIPE, top1=0.6314),
    Variant("PP-LCNet_x0_75", PPLCNetArch(scale=0.75), PREPROCESS, RECIPE, top1=0.6818),
    Variant("PP-LCNet_x1_0", PPLCNetArch(scale=1.0), PREPROCESS, RECIPE, top1=0.7132),
    Variant("PP-LCNet_x1_5", PPLCNetArch(scale=1.5), PREPROCESS, WIDE_RECIPE, top1=0.7371),
    Variant("PP-LCNet_x2_0", PPLCNetArch(scale=2.0), PREPROCESS, WIDE_RECIPE, top1=0.7518),
    Variant("PP-LCNet_x2_5", PPLCNetArch(scale=2.5), PREPROCESS, replace(WIDE_RECIPE, augment=("autoaugment",)),
            top1=0.7660),
)

register_family(FAMILY, VARIANTS, PPLCNet, head="fc")
