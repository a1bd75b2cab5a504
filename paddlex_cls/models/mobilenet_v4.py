"""MobileNetV4 (Qin et al., 2024): universal inverted bottlenecks, plus mobile multi-query attention in the hybrids.

Layout and names follow PaddleClas ``legendary_models/mobilenet_v4.py`` so that the official weights load: the stem
``conv_stem.{conv,bn}``, one flat ``blocks.<i>`` sequence (stage boundaries are only a grouping of the block
tables below), ``conv_head.{conv,bn}`` applied after global pooling, and ``classifier``. All convolutions are
bias-free and followed by BatchNorm (epsilon 1e-5); paddings are ``(k - 1) // 2``.

Block types, as PaddleClas builds them:

- ``cn``: conv + BN + act. PaddleClas applies its stochastic-depth rate to the (non-residual) output.
- ``er`` (edge residual): full k x k conv (carries the stride) to ``mid`` channels + act, then 1x1 projection.
- ``uir`` (universal inverted bottleneck): optional depthwise conv (no act) -> 1x1 expansion + act -> optional
  depthwise conv (carries the stride) + act -> 1x1 projection; then layer scale (hybrids) and the residual.
- ``mqa`` (mobile multi-query attention): BN -> multi-head queries against one shared key/value head (optionally
  down-sampled by a strided depthwise conv + BN) -> 1x1 output projection -> layer scale -> residual. The logits
  are scaled by ``(heads * key_dim) ** -0.5`` (the full query width, as PaddleClas does, not the head width).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple, Optional, Tuple, Union

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .layers import ConvBN, make_drop_path
from .registry import Preprocess, Recipe, Variant, register_family

FAMILY = "MobileNetV4"


class LayerScale2D(nn.Layer):
    """Per-channel learnable scale ``gamma`` of an NCHW tensor."""

    def __init__(self, channels: int, init_value: float):
        super().__init__()
        self.gamma = self.create_parameter([channels], default_initializer=nn.initializer.Constant(init_value))

    def forward(self, x):
        return x * self.gamma.reshape([1, -1, 1, 1])


class ConvBlock(ConvBN):
    """Conv + BN + act; stochastic depth (training only) drops the whole output, as in PaddleClas."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, act: str,
                 drop_path: float = 0.0):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, act=act)
        self.drop_path = make_drop_path(drop_path)

    def forward(self, x):
        return self.drop_path(super().forward(x))


class EdgeResidual(nn.Layer):
    """Fused inverted bottleneck: k x k conv to ``mid_channels`` + act, then a 1x1 projection."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, kernel_size: int, stride: int,
                 act: str, drop_path: float = 0.0):
        super().__init__()
        self.has_skip = stride == 1 and in_channels == out_channels
        self.conv_exp = ConvBN(in_channels, mid_channels, kernel_size, stride=stride, act=act)
        self.conv_pwl = ConvBN(mid_channels, out_channels, 1)
        self.drop_path = make_drop_path(drop_path)

    def forward(self, x):
        y = self.conv_pwl(self.conv_exp(x))
        return x + self.drop_path(y) if self.has_skip else y


class UniversalInvertedResidual(nn.Layer):
    """UIB: [depthwise k_start] -> 1x1 expand + act -> [depthwise k_mid, strided, + act] -> 1x1 project.

    A kernel size of 0 leaves that depthwise conv out (ExtraDW, IB, ConvNext-like and FFN variants of the paper).
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, start_kernel: int, mid_kernel: int,
                 stride: int, act: str, drop_path: float = 0.0, layer_scale: Optional[float] = None):
        super().__init__()
        assert mid_kernel or stride == 1, "the stride is carried by the middle depthwise conv"
        self.has_skip = stride == 1 and in_channels == out_channels
        self.dw_start = (ConvBN(in_channels, in_channels, start_kernel, groups=in_channels)
                         if start_kernel else nn.Identity())
        self.pw_exp = ConvBN(in_channels, mid_channels, 1, act=act)
        self.dw_mid = (ConvBN(mid_channels, mid_channels, mid_kernel, stride=stride, groups=mid_channels, act=act)
                       if mid_kernel else nn.Identity())
        self.pw_proj = ConvBN(mid_channels, out_channels, 1)
        self.layer_scale = LayerScale2D(out_channels, layer_scale) if layer_scale else nn.Identity()
        self.drop_path = make_drop_path(drop_path)

    def forward(self, x):
        y = self.pw_proj(self.dw_mid(self.pw_exp(self.dw_start(x))))
        y = self.layer_scale(y)
        return x + self.drop_path(y) if self.has_skip else y


class MobileMQA(nn.Layer):
    """Mobile multi-query attention block: ``num_heads`` query heads share one key and one value head.

    Keys and values may be spatially down-sampled (``kv_stride``) by a depthwise conv + BN each. Any input size
    works: the key/value length follows the actual down-sampled map.
    """

    def __init__(self, in_channels: int, out_channels: int, num_heads: int, key_dim: int, kv_stride: int,
                 kernel_size: int = 3, drop_path: float = 0.0, layer_scale: Optional[float] = None):
        super().__init__()
        self.has_skip = in_channels == out_channels
        self.num_heads = num_heads
        self.key_dim = key_dim
        query_dim = num_heads * key_dim
        self.scale = query_dim ** -0.5
        self.norm = nn.BatchNorm2D(in_channels)
        self.query_proj = nn.Conv2D(in_channels, query_dim, 1, bias_attr=False)
        if kv_stride > 1:
            self.key_down_proj = ConvBN(in_channels, in_channels, kernel_size, stride=kv_stride, groups=in_channels)
            self.value_down_proj = ConvBN(in_channels, in_channels, kernel_size, stride=kv_stride,
                                          groups=in_channels)
        else:
            self.key_down_proj = nn.Identity()
            self.value_down_proj = nn.Identity()
        self.key_proj = nn.Conv2D(in_channels, key_dim, 1, bias_attr=False)
        self.value_proj = nn.Conv2D(in_channels, key_dim, 1, bias_attr=False)
        self.proj = nn.Conv2D(query_dim, out_channels, 1, bias_attr=False)
        self.layer_scale = LayerScale2D(out_channels, layer_scale) if layer_scale else nn.Identity()
        self.drop_path = make_drop_path(drop_path)

    @staticmethod
    def _spatial_size(x):
        height, width = x.shape[2], x.shape[3]
        if height < 0 or width < 0:  # traced with a dynamic spatial size
            shape = paddle.shape(x)
            height, width = shape[2], shape[3]
        return height, width

    def forward(self, x):
        shortcut = x
        x = self.norm(x)
        height, width = self._spatial_size(x)
        # One key/value head serves every query head, so the heads fold into the query length: plain 3-D batched
        # matmuls without transpose flags. (Paddle 3.3's oneDNN inference gave wrong results for broadcast batch
        # matmuls and for transpose_y matmuls with a contraction size of 1, which tiny inputs produce.)
        q = self.query_proj(x).reshape([0, self.num_heads, self.key_dim, -1]).transpose([0, 1, 3, 2])
        q = q.reshape([0, -1, self.key_dim])  # [B, heads * HW, d]
        k = self.key_proj(self.key_down_proj(x)).flatten(2)  # [B, d, N], N = (down-sampled) key/value length
        v = self.value_proj(self.value_down_proj(x)).flatten(2).transpose([0, 2, 1])  # [B, N, d]
        attn = F.softmax(paddle.matmul(q * self.scale, k), axis=-1)  # [B, heads * HW, N]
        out = paddle.matmul(attn, v)  # [B, heads * HW, d]
        out = out.reshape([0, self.num_heads, -1, self.key_dim]).transpose([0, 1, 3, 2])
        out = out.reshape([0, self.num_heads * self.key_dim, height, width])
        out = self.layer_scale(self.proj(out))
        return shortcut + self.drop_path(out) if self.has_skip else out


# ---- block specs: one row of a block table each; ``build`` turns a row into its block ----------------------------

class CN(NamedTuple):
    """Conv + BN + act."""

    out: int
    kernel: int
    stride: int = 1

    def build(self, in_channels: int, act: str, drop_path: float, layer_scale: Optional[float]) -> nn.Layer:
        return ConvBlock(in_channels, self.out, self.kernel, self.stride, act, drop_path)


class ER(NamedTuple):
    """Edge residual (fused inverted bottleneck) with ``mid`` expanded channels."""

    out: int
    mid: int
    kernel: int
    stride: int

    def build(self, in_channels: int, act: str, drop_path: float, layer_scale: Optional[float]) -> nn.Layer:
        return EdgeResidual(in_channels, self.mid, self.out, self.kernel, self.stride, act, drop_path)


class UIR(NamedTuple):
    """Universal inverted bottleneck: ``start``/``middle`` depthwise kernels (0 = absent), ``mid`` channels."""

    out: int
    mid: int
    start: int
    middle: int
    stride: int = 1

    def build(self, in_channels: int, act: str, drop_path: float, layer_scale: Optional[float]) -> nn.Layer:
        return UniversalInvertedResidual(in_channels, self.mid, self.out, self.start, self.middle, self.stride,
                                         act, drop_path, layer_scale)


class MQA(NamedTuple):
    """Mobile multi-query attention with ``heads`` query heads of width ``key_dim``."""

    out: int
    heads: int
    key_dim: int
    kv_stride: int

    def build(self, in_channels: int, act: str, drop_path: float, layer_scale: Optional[float]) -> nn.Layer:
        return MobileMQA(in_channels, self.out, self.heads, self.key_dim, self.kv_stride, 3, drop_path,
                         layer_scale)


BlockSpec = Union[CN, ER, UIR, MQA]


@dataclass(frozen=True)
class BlockTable:
    """Blocks of one MobileNetV4 size.

    Attributes:
        stem: output channels of the 3x3 stride-2 stem conv.
        act: activation used everywhere (stem, blocks, head).
        layer_scale: initial layer-scale value of UIR/MQA blocks, or None for no layer scale.
        stages: block specs per stage (the first block of a stage carries its stride).
    """

    stem: int
    act: str
    layer_scale: Optional[float]
    stages: Tuple[Tuple[BlockSpec, ...], ...]


class MobileNetV4(nn.Layer):
    """MobileNetV4 classifier.

    Args:
        table: the blocks (one of the tables below).
        num_classes: size of the classifier output.
        drop_rate: accepted for PaddleX config compatibility; PaddleClas' MobileNetV4 builds its head dropout but
            never applies it, so (to keep training identical to PaddleX) neither does this network.
        drop_path_rate: stochastic-depth rate of the last block; block ``i`` of ``n`` gets ``rate * i / n``.
        head_channels: width of the 1x1 conv after global pooling.
    """

    def __init__(self, table: BlockTable, num_classes: int = 1000, drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0, head_channels: int = 1280):
        super().__init__()
        self.drop_rate = drop_rate
        act = table.act
        self.conv_stem = ConvBN(3, table.stem, 3, stride=2, act=act)
        specs = [spec for stage in table.stages for spec in stage]
        blocks, channels = [], table.stem
        for i, spec in enumerate(specs):
            blocks.append(spec.build(channels, act, drop_path_rate * i / len(specs), table.layer_scale))
            channels = spec.out
        self.blocks = nn.Sequential(*blocks)
        self.global_pool = nn.AdaptiveAvgPool2D(1)
        self.conv_head = ConvBN(channels, head_channels, 1, act=act)
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        self.classifier = nn.Linear(head_channels, num_classes)
        # Initialisation: Paddle's defaults (Kaiming-normal-like convs, Xavier-uniform linear), as in PaddleClas.

    def forward_features(self, x):
        return self.blocks(self.conv_stem(x))

    def forward(self, x):
        x = self.conv_head(self.global_pool(self.forward_features(x)))
        return self.classifier(self.flatten(x))


# ---- block tables (PaddleClas NET_CONFIG, grouped by stage; all widths already multiples of 8) -------------------

CONV_SMALL = BlockTable(stem=32, act="relu", layer_scale=None, stages=(
    (CN(32, 3, 2), CN(32, 1)),
    (CN(96, 3, 2), CN(64, 1)),
    (UIR(96, 192, 5, 5, 2), *[UIR(96, 192, 0, 3)] * 4, UIR(96, 384, 3, 0)),
    (UIR(128, 576, 3, 3, 2), UIR(128, 512, 5, 5), UIR(128, 512, 0, 5), UIR(128, 384, 0, 5),
     *[UIR(128, 512, 0, 3)] * 2),
    (CN(960, 1),),
))

CONV_MEDIUM = BlockTable(stem=32, act="relu", layer_scale=None, stages=(
    (ER(48, 128, 3, 2),),
    (UIR(80, 192, 3, 5, 2), UIR(80, 160, 3, 3)),
    (UIR(160, 480, 3, 5, 2), *[UIR(160, 640, 3, 3)] * 2, UIR(160, 640, 3, 5), UIR(160, 640, 3, 3),
     UIR(160, 640, 3, 0), UIR(160, 320, 0, 0), UIR(160, 640, 3, 0)),
    (UIR(256, 960, 5, 5, 2), UIR(256, 1024, 5, 5), *[UIR(256, 1024, 3, 5)] * 2, UIR(256, 1024, 0, 0),
     UIR(256, 1024, 3, 0), UIR(256, 512, 3, 5), UIR(256, 1024, 5, 5), *[UIR(256, 1024, 0, 0)] * 2,
     UIR(256, 512, 5, 0)),
    (CN(960, 1),),
))

CONV_LARGE = BlockTable(stem=24, act="relu", layer_scale=None, stages=(
    (ER(48, 96, 3, 2),),
    (UIR(96, 192, 3, 5, 2), UIR(96, 384, 3, 3)),
    (UIR(192, 384, 3, 5, 2), *[UIR(192, 768, 3, 3)] * 3, UIR(192, 768, 3, 5), *[UIR(192, 768, 5, 3)] * 5,
     UIR(192, 768, 3, 0)),
    (UIR(512, 768, 5, 5, 2), *[UIR(512, 2048, 5, 5)] * 3, UIR(512, 2048, 5, 0), UIR(512, 2048, 5, 3),
     *[UIR(512, 2048, 5, 0)] * 2, UIR(512, 2048, 5, 3), UIR(512, 2048, 5, 5), *[UIR(512, 2048, 5, 0)] * 3),
    (CN(960, 1),),
))

HYBRID_MEDIUM = BlockTable(stem=32, act="relu", layer_scale=1e-5, stages=(
    (ER(48, 128, 3, 2),),
    (UIR(80, 192, 3, 5, 2), UIR(80, 160, 3, 3)),
    (UIR(160, 480, 3, 5, 2), UIR(160, 320, 0, 0), UIR(160, 640, 3, 3), UIR(160, 640, 3, 5),
     MQA(160, 4, 64, 2), UIR(160, 640, 3, 3), MQA(160, 4, 64, 2), UIR(160, 640, 3, 0),
     MQA(160, 4, 64, 2), UIR(160, 640, 3, 3), MQA(160, 4, 64, 2), UIR(160, 640, 3, 0)),
    (UIR(256, 960, 5, 5, 2), UIR(256, 1024, 5, 5), *[UIR(256, 1024, 3, 5)] * 2, UIR(256, 512, 0, 0),
     UIR(256, 512, 3, 5), UIR(256, 512, 0, 0), UIR(256, 1024, 0, 0),
     MQA(256, 4, 64, 1), UIR(256, 1024, 3, 0), MQA(256, 4, 64, 1), UIR(256, 1024, 5, 5),
     MQA(256, 4, 64, 1), UIR(256, 1024, 5, 0), MQA(256, 4, 64, 1), UIR(256, 1024, 5, 0)),
    (CN(960, 1),),
))

HYBRID_LARGE = BlockTable(stem=24, act="gelu", layer_scale=1e-5, stages=(
    (ER(48, 96, 3, 2),),
    (UIR(96, 192, 3, 5, 2), UIR(96, 384, 3, 3)),
    (UIR(192, 384, 3, 5, 2), *[UIR(192, 768, 3, 3)] * 3, UIR(192, 768, 3, 5), *[UIR(192, 768, 5, 3)] * 2,
     *[MQA(192, 8, 48, 2), UIR(192, 768, 5, 3)] * 3, MQA(192, 8, 48, 2), UIR(192, 768, 3, 0)),
    (UIR(512, 768, 5, 5, 2), *[UIR(512, 2048, 5, 5)] * 3, UIR(512, 2048, 5, 0), UIR(512, 2048, 5, 3),
     *[UIR(512, 2048, 5, 0)] * 2, UIR(512, 2048, 5, 3), UIR(512, 2048, 5, 5),
     *[MQA(512, 8, 64, 1), UIR(512, 2048, 5, 0)] * 4),
    (CN(960, 1),),
))


@dataclass(frozen=True)
class MobileNetV4Arch:
    """The arguments of :class:`MobileNetV4` that tell its variants apart."""

    table: BlockTable
    drop_rate: float
    drop_path_rate: float


def _square_crop(size: int, interpolation: str) -> Preprocess:
    """inference.yml: resize the short side to the crop size, then center-crop (no border).

    Any input size runs: padded strided convs, and MQA's key/value length follows the actual map.
    """
    return Preprocess(input_size=size, resize_short=size, interpolation=interpolation, min_size=1)


# PaddleX configs (repo_apis/PaddleClas_api/configs/MobileNetV4_*.yaml): AdamW, 1-D params without weight decay,
# label smoothing 0.1, EMA 0.9998, global-norm clip 5.0, RandAugment (timm) + random erasing + mixup/cutmix; the
# per-card batch size and weight decay differ per model. The dropout and drop-path rates are those PaddleX passes.
# The hybrids' Infer transforms (hence inference.yml) resize without naming an interpolation: bilinear.
RECIPE = Recipe(batch_size=64, learning_rate=0.13, optimizer="adamw", weight_decay=0.1, no_decay_norm_bias=True,
                label_smoothing=0.1, ema_decay=0.9998, grad_clip=5.0,
                augment=("timm_autoaugment", "random_erasing", "mixup", "cutmix"))

VARIANTS = (
    Variant("MobileNetV4_conv_small", MobileNetV4Arch(CONV_SMALL, drop_rate=0.25, drop_path_rate=0.03),
            _square_crop(256, "bicubic"), replace(RECIPE, batch_size=128, weight_decay=0.06), top1=0.746),
    Variant("MobileNetV4_conv_medium", MobileNetV4Arch(CONV_MEDIUM, drop_rate=0.2, drop_path_rate=0.1),
            _square_crop(320, "bicubic"), replace(RECIPE, batch_size=128), top1=0.799),
    Variant("MobileNetV4_conv_large", MobileNetV4Arch(CONV_LARGE, drop_rate=0.2, drop_path_rate=0.35),
            _square_crop(448, "bicubic"), replace(RECIPE, weight_decay=0.2), top1=0.834),
    Variant("MobileNetV4_hybrid_medium", MobileNetV4Arch(HYBRID_MEDIUM, drop_rate=0.2, drop_path_rate=0.1),
            _square_crop(256, "bilinear"), RECIPE, top1=0.805),
    Variant("MobileNetV4_hybrid_large", MobileNetV4Arch(HYBRID_LARGE, drop_rate=0.2, drop_path_rate=0.1),
            _square_crop(448, "bilinear"), RECIPE, top1=0.838),
)

register_family(FAMILY, VARIANTS, MobileNetV4, head="classifier")
