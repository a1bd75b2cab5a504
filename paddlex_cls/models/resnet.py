"""ResNet (He et al., 2015) and ResNet-vd (He et al., 2019, "Bag of Tricks"), as PaddleClas builds them.

Layout and names follow PaddleClas ``legendary_models/resnet.py`` so that the official weights load: ``stem.<i>``,
a flat ``blocks.<i>`` over all stages (``conv0``, ``conv1``[, ``conv2``], ``short``), ``fc``. PaddleClas details that
change the numbers or the names:

- the first block of every stage has a projection shortcut ``short`` (1x1 conv + BN), also the first block of
  stage 1, whose width does not change for ResNet18/34;
- vb (plain) models: 7x7 stride-2 stem; the projection shortcut is a strided 1x1 conv;
- vd models: a stem of three 3x3 convs (32, 32, 64); the shortcut of a downsampling block is a 2x2 average pool
  (stride 2, ``SAME`` padding, ``ceil_mode``, padding excluded from the mean) followed by a stride-1 1x1 conv;
- stem max-pool 3x3, stride 2, padding 1; global average pool; classifier initialised Uniform(+-1/sqrt(fan_in)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple, Tuple, Type, Union

import paddle.nn as nn

from .layers import ConvBN, PooledClassifier
from .registry import Preprocess, Recipe, Variant, register_family

FAMILY = "ResNet"
STAGE_WIDTHS = (64, 128, 256, 512)  # inner width of each stage (bottleneck output is 4x)


class AvgPoolConvBN(ConvBN):
    """ResNet-vd shortcut: 2x2 average pool (carries the stride) -> 1x1 stride-1 conv -> BN.

    Subclasses ConvBN so that the parameter names stay ``<name>.conv.weight`` / ``<name>.bn.*``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__(in_channels, out_channels, 1)
        self.pool = nn.AvgPool2D(kernel_size=2, stride=stride, padding="SAME", ceil_mode=True)

    def forward(self, x):
        return super().forward(self.pool(x))


def _shortcut(in_channels: int, out_channels: int, stride: int, pooled: bool) -> ConvBN:
    if pooled:
        return AvgPoolConvBN(in_channels, out_channels, stride)
    return ConvBN(in_channels, out_channels, 1, stride=stride)


class BasicBlock(nn.Layer):
    """Two 3x3 convs (the first carries the stride) plus the shortcut, then ReLU (ResNet18/34)."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int, projection: bool, pooled_shortcut: bool):
        super().__init__()
        self.conv0 = ConvBN(in_channels, width, 3, stride=stride, act="relu")
        self.conv1 = ConvBN(width, width, 3)
        self.short = _shortcut(in_channels, width, stride, pooled_shortcut) if projection else None
        self.relu = nn.ReLU()

    def forward(self, x):
        identity = x if self.short is None else self.short(x)
        return self.relu(self.conv1(self.conv0(x)) + identity)


class BottleneckBlock(nn.Layer):
    """1x1 reduce -> 3x3 (carries the stride) -> 1x1 expand (x4) plus the shortcut, then ReLU (ResNet50+)."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int, projection: bool, pooled_shortcut: bool):
        super().__init__()
        out_channels = width * self.expansion
        self.conv0 = ConvBN(in_channels, width, 1, act="relu")
        self.conv1 = ConvBN(width, width, 3, stride=stride, act="relu")
        self.conv2 = ConvBN(width, out_channels, 1)
        self.short = _shortcut(in_channels, out_channels, stride, pooled_shortcut) if projection else None
        self.relu = nn.ReLU()

    def forward(self, x):
        identity = x if self.short is None else self.short(x)
        return self.relu(self.conv2(self.conv1(self.conv0(x))) + identity)


class DepthSpec(NamedTuple):
    block: Type[Union[BasicBlock, BottleneckBlock]]
    stage_blocks: Tuple[int, int, int, int]


DEPTHS = {
    18: DepthSpec(BasicBlock, (2, 2, 2, 2)),
    34: DepthSpec(BasicBlock, (3, 4, 6, 3)),
    50: DepthSpec(BottleneckBlock, (3, 4, 6, 3)),
    101: DepthSpec(BottleneckBlock, (3, 4, 23, 3)),
    152: DepthSpec(BottleneckBlock, (3, 8, 36, 3)),
    200: DepthSpec(BottleneckBlock, (3, 12, 48, 3)),
}


class ResNet(PooledClassifier):
    """ResNet classifier.

    Args:
        depth: 18, 34, 50, 101, 152 or 200.
        vd: build the ResNet-vd variant (deep stem, average-pool shortcuts) instead of the plain one.
        num_classes: size of the classifier output.
    """

    def __init__(self, depth: int = 50, vd: bool = False, num_classes: int = 1000):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"unsupported ResNet depth {depth}; known: {sorted(DEPTHS)}")
        spec = DEPTHS[depth]
        self.depth, self.vd = depth, vd
        if vd:
            self.stem = nn.Sequential(ConvBN(3, 32, 3, stride=2, act="relu"), ConvBN(32, 32, 3, act="relu"),
                                      ConvBN(32, 64, 3, act="relu"))
        else:
            self.stem = nn.Sequential(ConvBN(3, 64, 7, stride=2, act="relu"))
        self.max_pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
        blocks, in_channels = [], 64
        for stage, (width, n) in enumerate(zip(STAGE_WIDTHS, spec.stage_blocks)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                # Stage 1 keeps the resolution (the max-pool already halved it): a plain 1x1 shortcut there.
                blocks.append(spec.block(in_channels, width, stride, projection=i == 0,
                                         pooled_shortcut=vd and stage > 0))
                in_channels = width * spec.block.expansion
        self.blocks = nn.Sequential(*blocks)
        bound = 1.0 / math.sqrt(in_channels)
        self._add_classifier(in_channels, num_classes, weight_attr=nn.initializer.Uniform(-bound, bound))

    def forward_features(self, x):
        return self.blocks(self.max_pool(self.stem(x)))


@dataclass(frozen=True)
class ResNetArch:
    """The arguments of :class:`ResNet` that tell its variants apart."""

    depth: int
    vd: bool


# Fully convolutional with padded strided convs and an adaptive pool: any input size runs.
PREPROCESS = Preprocess(input_size=224, resize_short=256, interpolation="bilinear", min_size=1)
# From PaddleX's per-model training configs (PaddleClas_api/configs/<name>.yaml). Plain ResNet18/34/101/152: the
# standard 120-epoch recipe (momentum, L2 1e-4, no label smoothing, crop + flip); PaddleX's ResNet50 adds label
# smoothing 0.1 (PaddleClas' own ResNet50.yaml does not). vd models: 200 epochs, cosine, label smoothing 0.1, mixup
# 0.2; L2 7e-5 up to ResNet50_vd and 1e-4 for the deeper ones.
PLAIN = Recipe(batch_size=64, learning_rate=0.1, optimizer="momentum", weight_decay=1e-4)
VD = replace(PLAIN, weight_decay=7e-5, label_smoothing=0.1, augment=("mixup",))
DEEP_VD = replace(VD, weight_decay=1e-4)

VARIANTS = (
    Variant("ResNet18", ResNetArch(depth=18, vd=False), PREPROCESS, PLAIN, top1=0.710),
    Variant("ResNet18_vd", ResNetArch(depth=18, vd=True), PREPROCESS, VD, top1=0.723),
    Variant("ResNet34", ResNetArch(depth=34, vd=False), PREPROCESS, PLAIN, top1=0.746),
    Variant("ResNet34_vd", ResNetArch(depth=34, vd=True), PREPROCESS, VD, top1=0.760),
    Variant("ResNet50", ResNetArch(depth=50, vd=False), PREPROCESS, replace(PLAIN, label_smoothing=0.1), top1=0.765),
    Variant("ResNet50_vd", ResNetArch(depth=50, vd=True), PREPROCESS, VD, top1=0.791),
    Variant("ResNet101", ResNetArch(depth=101, vd=False), PREPROCESS, PLAIN, top1=0.776),
    Variant("ResNet101_vd", ResNetArch(depth=101, vd=True), PREPROCESS, DEEP_VD, top1=0.802),
    Variant("ResNet152", ResNetArch(depth=152, vd=False), PREPROCESS, PLAIN, top1=0.783),
    Variant("ResNet152_vd", ResNetArch(depth=152, vd=True), PREPROCESS, DEEP_VD, top1=0.806),
    Variant("ResNet200_vd", ResNetArch(depth=200, vd=True), PREPROCESS, DEEP_VD, top1=0.809),
)

register_family(FAMILY, VARIANTS, ResNet, head="fc")
