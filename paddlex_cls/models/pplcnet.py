"""PP-LCNet (Cui et al., 2021): a CPU-friendly stack of depthwise-separable convolutions with hardswish.

Layout and names follow PaddleClas ``legendary_models/pp_lcnet.py`` so that the official weights load: ``conv1``
(stem), ``blocks2`` .. ``blocks6`` (each ``<i>.{dw_conv,se,pw_conv}``), ``last_conv`` (1x1 conv without bias or BN,
applied after the global pool), ``fc``. PaddleClas details that change the numbers: every conv is followed by BN and
hardswish; the SE gate of the last two blocks is plain ``hardsigmoid`` (x/6 + 1/2) over a ``C // 4`` squeeze; the
head dropout uses ``downscale_in_infer``, so eval outputs are scaled by ``1 - p``; widths are ``make_divisible(c *
scale)`` except the 1280-wide head, which does not scale.
"""
from __future__ import annotations

from typing import Dict, NamedTuple, Tuple

import paddle.nn as nn
import paddle.nn.functional as F

from .layers import ConvBN, SqueezeExcite, conv_bn_no_bn_decay, make_divisible
from .registry import Preprocess, Recipe, register_model

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


class PPLCNet(nn.Layer):
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
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        last_width = make_divisible(STAGES["blocks6"][-1].out_channels * scale)
        self.last_conv = nn.Conv2D(last_width, class_expand, 1, bias_attr=False)
        self.act = nn.Hardswish()
        self.dropout = nn.Dropout(p=dropout_prob, mode="downscale_in_infer")
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        self.fc = nn.Linear(class_expand, num_classes)

    def forward(self, x):
        x = self.conv1(x)
        for stage in STAGES:
            x = getattr(self, stage)(x)
        x = self.dropout(self.act(self.last_conv(self.avg_pool(x))))
        return self.fc(self.flatten(x))


class Variant(NamedTuple):
    scale: float
    top1: float  # ImageNet top-1 published by PaddleX / PaddleClas
    batch_size: int  # PaddleX default per card (learning rate 0.1 for all)
    weight_decay: float  # L2 coeff of the PaddleClas ImageNet config PPLCNet_x*.yaml
    augment: Tuple[str, ...] = ()


VARIANTS = {
    "PP-LCNet_x0_25": Variant(0.25, 0.5186, 256, 3e-5),
    "PP-LCNet_x0_35": Variant(0.35, 0.5809, 256, 3e-5),
    "PP-LCNet_x0_5": Variant(0.5, 0.6314, 256, 3e-5),
    "PP-LCNet_x0_75": Variant(0.75, 0.6818, 256, 3e-5),
    "PP-LCNet_x1_0": Variant(1.0, 0.7132, 256, 3e-5),
    "PP-LCNet_x1_5": Variant(1.5, 0.7371, 128, 4e-5),
    "PP-LCNet_x2_0": Variant(2.0, 0.7518, 128, 4e-5),
    "PP-LCNet_x2_5": Variant(2.5, 0.7660, 128, 4e-5, ("autoaugment",)),
}

PREPROCESS = Preprocess(input_size=224, resize_short=256, interpolation="bilinear")


def _register(name: str):
    v = VARIANTS[name]
    # Momentum 0.9, label smoothing 0.1; BN scale/shift carry their own L2Decay(0.0) (set on the parameters), while
    # SE and classifier biases are decayed, so the recipe does not exclude all 1-D parameters.
    recipe = Recipe(batch_size=v.batch_size, learning_rate=0.1, optimizer="momentum", weight_decay=v.weight_decay,
                    label_smoothing=0.1, augment=v.augment)
    return register_model(name, family=FAMILY, preprocess=PREPROCESS, recipe=recipe, imagenet_top1=v.top1)


def _build(name: str, num_classes: int, **kwargs) -> PPLCNet:
    return PPLCNet(scale=VARIANTS[name].scale, num_classes=num_classes, **kwargs)


@_register("PP-LCNet_x0_25")
def pplcnet_x0_25(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("PP-LCNet_x0_25", num_classes, **kwargs)


@_register("PP-LCNet_x0_35")
def pplcnet_x0_35(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("PP-LCNet_x0_35", num_classes, **kwargs)


@_register("PP-LCNet_x0_5")
def pplcnet_x0_5(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("PP-LCNet_x0_5", num_classes, **kwargs)


@_register("PP-LCNet_x0_75")
def pplcnet_x0_75(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("PP-LCNet_x0_75", num_classes, **kwargs)


@_register("PP-LCNet_x1_0")
def pplcnet_x1_0(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("PP-LCNet_x1_0", num_classes, **kwargs)


@_register("PP-LCNet_x1_5")
def pplcnet_x1_5(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("PP-LCNet_x1_5", num_classes, **kwargs)


@_register("PP-LCNet_x2_0")
def pplcnet_x2_0(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("PP-LCNet_x2_0", num_classes, **kwargs)


@_register("PP-LCNet_x2_5")
def pplcnet_x2_5(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("PP-LCNet_x2_5", num_classes, **kwargs)
