"""Building blocks shared by several model families.

Sub-layer attribute names (``conv``, ``bn``) follow PaddleClas so that official ``.pdparams`` keys line up.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.regularizer import L2Decay


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, never dropping below 90% of ``value``."""
    min_value = min_value or divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


_ACTIVATIONS = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hardswish": nn.Hardswish,
    "hardsigmoid": nn.Hardsigmoid,
    "gelu": nn.GELU,
    "silu": nn.Silu,
    "swish": nn.Swish,
    "sigmoid": nn.Sigmoid,
}


def make_act(name: Optional[str]) -> nn.Layer:
    """An activation layer by name; None gives Identity."""
    if name is None:
        return nn.Identity()
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(_ACTIVATIONS)}") from None


class ConvBN(nn.Layer):
    """Conv2D (no bias) -> BatchNorm2D -> optional activation, with PaddleClas' ``conv``/``bn`` names."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, act: Optional[str] = None, padding: Optional[int] = None, dilation: int = 1):
        super().__init__()
        padding = (kernel_size - 1) // 2 * dilation if padding is None else padding
        self.conv = nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                              groups=groups, dilation=dilation, bias_attr=False)
        self.bn = nn.BatchNorm2D(out_channels)
        self.act = make_act(act)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


def conv_bn_no_bn_decay(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
                        act: Optional[str] = None) -> ConvBN:
    """ConvBN whose BN scale and shift carry their own zero L2 decay, as PaddleClas' mobile nets set them."""
    layer = ConvBN(in_channels, out_channels, kernel_size, stride=stride, groups=groups, act=act)
    layer.bn.weight.regularizer = L2Decay(0.0)
    layer.bn.bias.regularizer = L2Decay(0.0)
    return layer


class SqueezeExcite(nn.Layer):
    """Squeeze-and-excitation: pool -> 1x1 conv (C/reduction) -> ReLU -> 1x1 conv (C) -> gate -> rescale.

    Args:
        gate: the function of the excitation logits (hardsigmoid variants or sigmoid, per family).
    """

    def __init__(self, channels: int, reduction: int = 4, gate: Callable = F.hardsigmoid):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.conv1 = nn.Conv2D(channels, channels // reduction, 1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2D(channels // reduction, channels, 1)
        self.gate = gate

    def forward(self, x):
        return x * self.gate(self.conv2(self.relu(self.conv1(self.avg_pool(x)))))


class DropPath(nn.Layer):
    """Stochastic depth: drop whole residual branches per sample while training."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        if self.drop_prob == 0.0 or not self.training:
            return x
        # The per-sample keep mask, scaled by 1 / keep, drawn by dropout: its random stream is the same in dygraph
        # and static programs (``paddle.rand``'s is not), so both training engines drop the same samples.
        ones = paddle.ones([x.shape[0]] + [1] * (x.ndim - 1), dtype=x.dtype)
        return x * F.dropout(ones, self.drop_prob, training=True)


@paddle.jit.not_to_static
def check_min_size(model_name: str, x, min_size: int) -> None:
    """Raise ModelError (not a shape crash) for an input smaller than the architecture can take."""
    from ..errors import ModelError

    h, w = x.shape[-2], x.shape[-1]  # -1 when traced for export with a dynamic size: nothing to check then
    if 0 <= h < min_size or 0 <= w < min_size:
        raise ModelError(f"{model_name} cannot run on a {h}x{w} input",
                         f"use an input of at least {min_size}x{min_size} pixels (any size >= {min_size} works)")


def fuse_conv_bn(conv: nn.Conv2D, bn: nn.BatchNorm2D) -> Tuple[paddle.Tensor, paddle.Tensor]:
    """Kernel and bias of a single conv equal (in eval mode) to ``bn(conv(x))``; used by re-parameterization."""
    std = (bn._variance + bn._epsilon).sqrt()
    scale = bn.weight / std
    kernel = conv.weight * scale.reshape([-1, 1, 1, 1])
    bias = bn.bias - bn._mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    return kernel, bias


def re_parameterize_model(model: nn.Layer) -> int:
    """Fold every re-parameterizable block of ``model`` in place (they define ``re_parameterize()``).

    Returns:
        how many blocks were folded.
    """
    count = 0
    for layer in model.sublayers(include_self=True):
        fold = getattr(layer, "re_parameterize", None)
        if callable(fold) and layer is not model:
            fold()
            count += 1
    return count
