"""ConvNeXt (Liu et al., "A ConvNet for the 2020s", 2022), weight-compatible with PaddleClas ``ConvNeXt_*``.

Layout of the official weights: ``downsample_layers.{0..3}`` (stem: 4x4/4 conv + channels-first LayerNorm; then
LayerNorm + 2x2/2 conv), ``stages.{0..3}.{j}`` blocks (``gamma`` layer scale, 7x7 depthwise ``dwconv``,
channels-last ``norm``, ``pwconv1``/``pwconv2`` linears), the final ``norm`` on pooled features and ``head``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence, Tuple

import paddle
import paddle.nn as nn
from paddle.nn.initializer import Constant

from .layers import ONES, ZEROS, make_drop_path, trunc_normal_init
from .registry import Preprocess, Recipe, Variant, register_family

FAMILY = "ConvNeXt"
MIN_SIZE = 32  # total stride of the network (unpadded strided convs): smaller inputs leave no pixel for the last stage


class LayerNorm2D(nn.Layer):
    """LayerNorm over the channel axis of an NCHW tensor (biased variance, as the reference computes it)."""

    def __init__(self, channels: int, epsilon: float = 1e-6):
        super().__init__()
        self.weight = self.create_parameter([channels], default_initializer=ONES)
        self.bias = self.create_parameter([channels], default_initializer=ZEROS, is_bias=True)
        self.epsilon = epsilon

    def forward(self, x):
        mean = x.mean(axis=1, keepdim=True)
        var = (x - mean).pow(2).mean(axis=1, keepdim=True)
        x = (x - mean) / paddle.sqrt(var + self.epsilon)
        return self.weight.reshape([1, -1, 1, 1]) * x + self.bias.reshape([1, -1, 1, 1])


class Block(nn.Layer):
    """7x7 depthwise conv -> LayerNorm (channels last) -> Linear 4x -> GELU -> Linear -> layer scale, residual."""

    def __init__(self, dim: int, drop_path: float = 0.0, layer_scale_init_value: float = 1e-6):
        super().__init__()
        self.dwconv = nn.Conv2D(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, epsilon=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = None
        if layer_scale_init_value > 0:
            self.gamma = self.create_parameter([dim], default_initializer=Constant(layer_scale_init_value))
        self.drop_path = make_drop_path(drop_path)

    def forward(self, x):
        shortcut = x
        x = self.dwconv(x).transpose([0, 2, 3, 1])  # NCHW -> NHWC
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        if self.gamma is not None:
            x = self.gamma * x
        return shortcut + self.drop_path(x.transpose([0, 3, 1, 2]))


class ConvNeXt(nn.Layer):
    """ConvNeXt classifier.

    Args:
        depths: blocks per stage.
        dims: channels per stage.
        num_classes: classifier outputs.
        drop_path_rate: stochastic-depth rate of the last block (linearly increasing from 0).
        layer_scale_init_value: initial layer-scale ``gamma``; 0 disables layer scale.
        head_init_scale: factor applied to the initial classifier weights and bias.
        in_channels: image channels.
    """

    def __init__(self, depths: Sequence[int], dims: Sequence[int], num_classes: int = 1000,
                 drop_path_rate: float = 0.0, layer_scale_init_value: float = 1e-6, head_init_scale: float = 1.0,
                 in_channels: int = 3):
        super().__init__()
        self.downsample_layers = nn.LayerList()
        self.downsample_layers.append(nn.Sequential(nn.Conv2D(in_channels, dims[0], 4, stride=4),
                                                    LayerNorm2D(dims[0])))
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(LayerNorm2D(dims[i]),
                                                        nn.Conv2D(dims[i], dims[i + 1], 2, stride=2)))

        rates = [float(r) for r in paddle.linspace(0, drop_path_rate, sum(depths)).numpy()]
        self.stages = nn.LayerList()
        start = 0
        for dim, depth in zip(dims, depths):
            self.stages.append(nn.Sequential(*[Block(dim, rates[start + j], layer_scale_init_value)
                                               for j in range(depth)]))
            start += depth

        self.norm = nn.LayerNorm(dims[-1], epsilon=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)
        trunc_normal_init(self.sublayers())
        # The reference multiplies the initialised head by head_init_scale; drawing it with a scaled std is the same.
        trunc_normal_init([self.head], std=0.02 * head_init_scale)

    def forward_features(self, x):
        for downsample, stage in zip(self.downsample_layers, self.stages):
            x = stage(downsample(x))
        return self.norm(x.mean(axis=[-2, -1]))  # global average pool, then LayerNorm

    def forward(self, x):
        return self.head(self.forward_features(x))


@dataclass(frozen=True)
class ConvNeXtArch:
    """The arguments of :class:`ConvNeXt` that tell its variants apart."""

    depths: Tuple[int, int, int, int]
    dims: Tuple[int, int, int, int]
    drop_path_rate: float


def _preprocess(size: int, resize_short: int) -> Preprocess:
    return Preprocess(input_size=size, resize_short=resize_short, interpolation="bicubic", min_size=MIN_SIZE)


# PaddleX's ConvNeXt configs: AdamW wd 0.05 without decay on 1-D params, CE with label smoothing 0.1, RandAugment
# (timm rand-m9-mstd0.5-inc1), random erasing 0.25, mixup 0.8 / cutmix 1.0; EMA is commented out. Batch size and lr
# per model; drop-path rate 0.1 (the value PaddleX passes), layer scale 1e-6 and head scale 1.0 (class defaults).
RECIPE = Recipe(batch_size=32, learning_rate=0.003, optimizer="adamw", weight_decay=0.05, no_decay_norm_bias=True,
                label_smoothing=0.1, augment=("timm_autoaugment", "random_erasing", "mixup", "cutmix"))
TINY = (3, 3, 9, 3)
DEEP = (3, 3, 27, 3)

VARIANTS = (
    Variant("ConvNeXt_tiny", ConvNeXtArch(TINY, (96, 192, 384, 768), drop_path_rate=0.1), _preprocess(224, 256),
            RECIPE, top1=0.8203),
    Variant("ConvNeXt_small", ConvNeXtArch(DEEP, (96, 192, 384, 768), drop_path_rate=0.1), _preprocess(224, 256),
            replace(RECIPE, batch_size=64, learning_rate=0.004), top1=0.8313),
    Variant("ConvNeXt_base_224", ConvNeXtArch(DEEP, (128, 256, 512, 1024), drop_path_rate=0.1),
            _preprocess(224, 256), replace(RECIPE, learning_rate=0.002), top1=0.8384),
    Variant("ConvNeXt_base_384", ConvNeXtArch(DEEP, (128, 256, 512, 1024), drop_path_rate=0.1),
            _preprocess(384, 384), replace(RECIPE, learning_rate=0.002), top1=0.8490),
    Variant("ConvNeXt_large_224", ConvNeXtArch(DEEP, (192, 384, 768, 1536), drop_path_rate=0.1),
            _preprocess(224, 256), replace(RECIPE, batch_size=16, learning_rate=0.001), top1=0.8426),
    Variant("ConvNeXt_large_384", ConvNeXtArch(DEEP, (192, 384, 768, 1536), drop_path_rate=0.1),
            _preprocess(384, 384), replace(RECIPE, batch_size=16, learning_rate=0.001), top1=0.8527),
)

register_family(FAMILY, VARIANTS, ConvNeXt, head="head")
