"""PP-HGNet (PaddleClas, 2022): a GPU-oriented VoVNet-style network of densely aggregated 3x3 conv chains.

Layout and names follow PaddleClas ``legendary_models/pp_hgnet.py`` so that the official weights load:
``stem.<i>`` (three 3x3 conv+BN+ReLU, the first strided), a 3x3 / stride 2 / padding 1 max-pool (floor mode),
``stages.<s>`` with an optional ``downsample`` (3x3 stride-2 depthwise conv + BN, no activation) and
``blocks.<b>``, then the head ``last_conv`` (1x1 to 2048, no bias) -> ReLU -> dropout -> ``fc``.

An HG block runs ``layer_num`` 3x3 conv+BN+ReLU units in a chain, concatenates the block input with every unit's
output, squeezes the concatenation with a 1x1 conv+BN+ReLU (``aggregation_conv``) and reweights channels with
ESE (global pool -> biased 1x1 conv -> sigmoid). Every block but the first of a stage adds its input. The head
dropout is PaddlePaddle's ``downscale_in_infer`` mode (eval scales by ``1 - p``); only PP-HGNet_base uses p=0.2.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import paddle.nn as nn

from .layers import ConvBN, PooledClassifier, concat_chain, kaiming_normal_init
from .registry import Preprocess, Recipe, Variant, register_family

FAMILY = "PP-HGNet"


class ESEModule(nn.Layer):
    """Effective squeeze-and-excitation: global pool -> 1x1 conv (same width, biased) -> sigmoid -> rescale."""

    def __init__(self, channels: int):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.conv = nn.Conv2D(channels, channels, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return x * self.sigmoid(self.conv(self.avg_pool(x)))


class HGBlock(nn.Layer):
    """``layer_num`` chained 3x3 units, concatenation with the input, 1x1 aggregation, ESE, optional residual."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, layer_num: int,
                 identity: bool = False):
        super().__init__()
        self.identity = identity
        self.layers = nn.LayerList([
            ConvBN(in_channels if i == 0 else mid_channels, mid_channels, 3, act="relu") for i in range(layer_num)
        ])
        self.aggregation_conv = ConvBN(in_channels + layer_num * mid_channels, out_channels, 1, act="relu")
        self.att = ESEModule(out_channels)

    def forward(self, x):
        y = self.att(self.aggregation_conv(concat_chain(x, self.layers)))
        return y + x if self.identity else y


class HGStage(nn.Layer):
    """Optional learnable downsampling (depthwise 3x3 stride 2 + BN) followed by ``block_num`` HG blocks."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, block_num: int, layer_num: int,
                 downsample: bool = True):
        super().__init__()
        self.downsample: Optional[nn.Layer] = (
            ConvBN(in_channels, in_channels, 3, stride=2, groups=in_channels) if downsample else None)
        self.blocks = nn.Sequential(*[
            HGBlock(in_channels if i == 0 else out_channels, mid_channels, out_channels, layer_num, identity=i > 0)
            for i in range(block_num)
        ])

    def forward(self, x):
        if self.downsample is not None:
            x = self.downsample(x)
        return self.blocks(x)


class StageSpec(NamedTuple):
    in_channels: int
    mid_channels: int
    out_channels: int
    block_num: int
    downsample: bool


class PPHGNet(PooledClassifier):
    """PP-HGNet classifier.

    Args:
        stem_channels: widths of the three stem convs.
        stages: the four stage specifications.
        layer_num: 3x3 units per HG block.
        num_classes: size of the classifier output.
        use_last_conv: put the 1x1 expansion conv + ReLU + dropout before the classifier.
        class_expand: width of that expansion conv.
        dropout_prob: dropout before the classifier (``downscale_in_infer``: eval scales by ``1 - p``).
    """

    def __init__(self, stem_channels: Tuple[int, int, int], stages: Tuple[StageSpec, ...], layer_num: int,
                 num_classes: int = 1000, use_last_conv: bool = True, class_expand: int = 2048,
                 dropout_prob: float = 0.0):
        super().__init__()
        widths = (3,) + tuple(stem_channels)
        self.stem = nn.Sequential(*[
            ConvBN(widths[i], widths[i + 1], 3, stride=2 if i == 0 else 1, act="relu")
            for i in range(len(stem_channels))
        ])
        self.pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
        self.stages = nn.Sequential(*[
            HGStage(s.in_channels, s.mid_channels, s.out_channels, s.block_num, layer_num, s.downsample)
            for s in stages
        ])
        self._add_classifier(stages[-1].out_channels, num_classes, expand=class_expand if use_last_conv else None,
                             dropout_prob=dropout_prob)
        kaiming_normal_init(self.sublayers(), reset_norms_and_biases=True)  # as PaddleClas

    def forward_features(self, x):
        return self.stages(self.pool(self.stem(x)))


@dataclass(frozen=True)
class PPHGNetArch:
    """The arguments of :class:`PPHGNet` that tell its variants apart."""

    stem_channels: Tuple[int, int, int]
    stages: Tuple[StageSpec, StageSpec, StageSpec, StageSpec]
    layer_num: int
    dropout_prob: float


def _preprocess(resize_short: int) -> Preprocess:
    """PaddleX inference.yml: resize the short side (bicubic), center-crop 224. Any input size runs."""
    return Preprocess(input_size=224, resize_short=resize_short, interpolation="bicubic", min_size=1)


# PaddleClas/PaddleX PPHGNet configs: Momentum 0.9, L2 4e-5 (BN excluded via L2Decay(0) in the reference), CE with
# label smoothing 0.1, no EMA; bicubic crop, RandAugment (timm, m7; m15 for base), random erasing, mixup/cutmix.
# Batch size / lr are PaddleX's per-card defaults.
RECIPE = Recipe(batch_size=64, learning_rate=0.25, optimizer="momentum", weight_decay=4e-5, no_decay_norm_bias=True,
                label_smoothing=0.1, augment=("timm_autoaugment", "random_erasing", "mixup", "cutmix"))

VARIANTS = (
    Variant("PP-HGNet_tiny", PPHGNetArch(
        stem_channels=(48, 48, 96),
        stages=(StageSpec(96, 96, 224, 1, False), StageSpec(224, 128, 448, 1, True),
                StageSpec(448, 160, 512, 2, True), StageSpec(512, 192, 768, 1, True)),
        layer_num=5, dropout_prob=0.0), _preprocess(232), RECIPE, top1=0.7983),
    Variant("PP-HGNet_small", PPHGNetArch(
        stem_channels=(64, 64, 128),
        stages=(StageSpec(128, 128, 256, 1, False), StageSpec(256, 160, 512, 1, True),
                StageSpec(512, 192, 768, 2, True), StageSpec(768, 224, 1024, 1, True)),
        layer_num=6, dropout_prob=0.0), _preprocess(236), RECIPE, top1=0.8151),
    Variant("PP-HGNet_base", PPHGNetArch(
        stem_channels=(96, 96, 160),
        stages=(StageSpec(160, 192, 320, 1, False), StageSpec(320, 224, 640, 2, True),
                StageSpec(640, 256, 960, 3, True), StageSpec(960, 288, 1280, 2, True)),
        layer_num=7, dropout_prob=0.2), _preprocess(236), RECIPE, top1=0.8500),
)

register_family(FAMILY, VARIANTS, PPHGNet, head="fc")
