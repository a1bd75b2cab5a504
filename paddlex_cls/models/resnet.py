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
from typing import NamedTuple, Tuple

import paddle.nn as nn

from .layers import ConvBN
from .registry import Preprocess, Recipe, register_model

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


# depth -> (block type, blocks per stage)
DEPTHS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (BottleneckBlock, (3, 4, 6, 3)),
    101: (BottleneckBlock, (3, 4, 23, 3)),
    152: (BottleneckBlock, (3, 8, 36, 3)),
    200: (BottleneckBlock, (3, 12, 48, 3)),
}


class ResNet(nn.Layer):
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
        block, stage_depths = DEPTHS[depth]
        self.depth, self.vd = depth, vd
        if vd:
            self.stem = nn.Sequential(ConvBN(3, 32, 3, stride=2, act="relu"), ConvBN(32, 32, 3, act="relu"),
                                      ConvBN(32, 64, 3, act="relu"))
        else:
            self.stem = nn.Sequential(ConvBN(3, 64, 7, stride=2, act="relu"))
        self.max_pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
        blocks, in_channels = [], 64
        for stage, (width, n) in enumerate(zip(STAGE_WIDTHS, stage_depths)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                # Stage 1 keeps the resolution (the max-pool already halved it): a plain 1x1 shortcut there.
                blocks.append(block(in_channels, width, stride, projection=i == 0, pooled_shortcut=vd and stage > 0))
                in_channels = width * block.expansion
        self.blocks = nn.Sequential(*blocks)
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.flatten = nn.Flatten()
        bound = 1.0 / math.sqrt(in_channels)
        self.fc = nn.Linear(in_channels, num_classes, weight_attr=nn.initializer.Uniform(-bound, bound))

    def forward(self, x):
        x = self.max_pool(self.stem(x))
        x = self.blocks(x)
        return self.fc(self.flatten(self.avg_pool(x)))


class Variant(NamedTuple):
    depth: int
    vd: bool
    top1: float  # ImageNet top-1 published by PaddleX
    weight_decay: float  # L2 coeff of the model's PaddleX / PaddleClas ImageNet config
    label_smoothing: float
    augment: Tuple[str, ...] = ()


# From PaddleX's per-model training configs (PaddleClas_api/configs/<name>.yaml). Plain ResNet18/34/101/152: the
# standard 120-epoch recipe (no label smoothing, crop + flip); PaddleX's ResNet50 adds label smoothing 0.1 (PaddleClas'
# own ResNet50.yaml does not). vd models: 200 epochs, cosine, label smoothing 0.1, mixup 0.2; L2 7e-5 up to
# ResNet50_vd and 1e-4 for the deeper ones.
VARIANTS = {
    "ResNet18": Variant(18, False, 0.710, 1e-4, 0.0),
    "ResNet18_vd": Variant(18, True, 0.723, 7e-5, 0.1, ("mixup",)),
    "ResNet34": Variant(34, False, 0.746, 1e-4, 0.0),
    "ResNet34_vd": Variant(34, True, 0.760, 7e-5, 0.1, ("mixup",)),
    "ResNet50": Variant(50, False, 0.765, 1e-4, 0.1),
    "ResNet50_vd": Variant(50, True, 0.791, 7e-5, 0.1, ("mixup",)),
    "ResNet101": Variant(101, False, 0.776, 1e-4, 0.0),
    "ResNet101_vd": Variant(101, True, 0.802, 1e-4, 0.1, ("mixup",)),
    "ResNet152": Variant(152, False, 0.783, 1e-4, 0.0),
    "ResNet152_vd": Variant(152, True, 0.806, 1e-4, 0.1, ("mixup",)),
    "ResNet200_vd": Variant(200, True, 0.809, 1e-4, 0.1, ("mixup",)),
}

PREPROCESS = Preprocess(input_size=224, resize_short=256, interpolation="bilinear")


def _register(name: str):
    v = VARIANTS[name]
    recipe = Recipe(batch_size=64, learning_rate=0.1, optimizer="momentum", weight_decay=v.weight_decay,
                    label_smoothing=v.label_smoothing, augment=v.augment)
    return register_model(name, family=FAMILY, preprocess=PREPROCESS, recipe=recipe, imagenet_top1=v.top1)


def _build(name: str, num_classes: int, **kwargs) -> ResNet:
    v = VARIANTS[name]
    return ResNet(depth=v.depth, vd=v.vd, num_classes=num_classes, **kwargs)


@_register("ResNet18")
def resnet18(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("ResNet18", num_classes, **kwargs)


@_register("ResNet18_vd")
def resnet18_vd(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("ResNet18_vd", num_classes, **kwargs)


@_register("ResNet34")
def resnet34(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("ResNet34", num_classes, **kwargs)


@_register("ResNet34_vd")
def resnet34_vd(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("ResNet34_vd", num_classes, **kwargs)


@_register("ResNet50")
def resnet50(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("ResNet50", num_classes, **kwargs)


@_register("ResNet50_vd")
def resnet50_vd(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("ResNet50_vd", num_classes, **kwargs)


@_register("ResNet101")
def resnet101(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("ResNet101", num_classes, **kwargs)


@_register("ResNet101_vd")
def resnet101_vd(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("ResNet101_vd", num_classes, **kwargs)


@_register("ResNet152")
def resnet152(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("ResNet152", num_classes, **kwargs)


@_register("ResNet152_vd")
def resnet152_vd(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("ResNet152_vd", num_classes, **kwargs)


@_register("ResNet200_vd")
def resnet200_vd(*, num_classes: int = 1000, **kwargs) -> nn.Layer:
    return _build("ResNet200_vd", num_classes, **kwargs)
