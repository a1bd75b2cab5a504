"""ConvNeXt (Liu et al., "A ConvNet for the 2020s", 2022), weight-compatible with PaddleClas ``ConvNeXt_*``.

Layout of the official weights: ``downsample_layers.{0..3}`` (stem: 4x4/4 conv + channels-first LayerNorm; then
LayerNorm + 2x2/2 conv), ``stages.{0..3}.{j}`` blocks (``gamma`` layer scale, 7x7 depthwise ``dwconv``,
channels-last ``norm``, ``pwconv1``/``pwconv2`` linears), the final ``norm`` on pooled features and ``head``.
"""
from __future__ import annotations

from typing import Sequence

import paddle
import paddle.nn as nn
from paddle.nn.initializer import Constant, TruncatedNormal

from .layers import DropPath, check_min_size
from .registry import Preprocess, Recipe, register_model

_trunc_normal = TruncatedNormal(std=0.02)
_zeros = Constant(0.0)
_ones = Constant(1.0)

MIN_SIZE = 32  # total stride of the network: smaller inputs leave no pixel for the last stage


class LayerNorm2D(nn.Layer):
    """LayerNorm over the channel axis of an NCHW tensor (biased variance, as the reference computes it)."""

    def __init__(self, channels: int, epsilon: float = 1e-6):
        super().__init__()
        self.weight = self.create_parameter([channels], default_initializer=_ones)
        self.bias = self.create_parameter([channels], default_initializer=_zeros, is_bias=True)
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
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

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
        model_name: name used in error messages.
    """

    def __init__(self, depths: Sequence[int], dims: Sequence[int], num_classes: int = 1000,
                 drop_path_rate: float = 0.0, layer_scale_init_value: float = 1e-6, head_init_scale: float = 1.0,
                 in_channels: int = 3, model_name: str = "ConvNeXt"):
        super().__init__()
        self.model_name = model_name
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
        self.apply(self._init_weights)
        # The reference multiplies the initialised head by head_init_scale; drawing it with a scaled std is the same.
        TruncatedNormal(std=0.02 * head_init_scale)(self.head.weight)

    @staticmethod
    def _init_weights(layer: nn.Layer) -> None:
        if isinstance(layer, (nn.Conv2D, nn.Linear)):
            _trunc_normal(layer.weight)
            if layer.bias is not None:
                _zeros(layer.bias)

    def _check_size(self, x) -> None:
        check_min_size(self.model_name, x, MIN_SIZE)

    def forward_features(self, x):
        self._check_size(x)
        for downsample, stage in zip(self.downsample_layers, self.stages):
            x = stage(downsample(x))
        return self.norm(x.mean(axis=[-2, -1]))  # global average pool, then LayerNorm

    def forward(self, x):
        return self.head(self.forward_features(x))


# name: (depths, dims, input size, eval resize, recipe batch size, recipe lr, published top-1)
_VARIANTS = {
    "ConvNeXt_tiny": ((3, 3, 9, 3), (96, 192, 384, 768), 224, 256, 32, 0.003, 0.8203),
    "ConvNeXt_small": ((3, 3, 27, 3), (96, 192, 384, 768), 224, 256, 64, 0.004, 0.8313),
    "ConvNeXt_base_224": ((3, 3, 27, 3), (128, 256, 512, 1024), 224, 256, 32, 0.002, 0.8384),
    "ConvNeXt_base_384": ((3, 3, 27, 3), (128, 256, 512, 1024), 384, 384, 32, 0.002, 0.8490),
    "ConvNeXt_large_224": ((3, 3, 27, 3), (192, 384, 768, 1536), 224, 256, 16, 0.001, 0.8426),
    "ConvNeXt_large_384": ((3, 3, 27, 3), (192, 384, 768, 1536), 384, 384, 16, 0.001, 0.8527),
}


def _preprocess(name: str) -> Preprocess:
    _, _, size, resize, _, _, _ = _VARIANTS[name]
    return Preprocess(input_size=size, resize_short=resize, interpolation="bicubic", min_size=MIN_SIZE)


def _recipe(name: str) -> Recipe:
    # PaddleX's ConvNeXt configs: AdamW wd 0.05 without decay on 1-D params, CE with label smoothing 0.1,
    # RandAugment (timm rand-m9-mstd0.5-inc1), random erasing 0.25, mixup 0.8 / cutmix 1.0; EMA is commented out.
    _, _, _, _, batch_size, lr, _ = _VARIANTS[name]
    return Recipe(batch_size=batch_size, learning_rate=lr, optimizer="adamw", weight_decay=0.05,
                  no_decay_norm_bias=True, label_smoothing=0.1,
                  augment=("timm_autoaugment", "random_erasing", "mixup", "cutmix"))


def _build(name: str, num_classes: int, drop_path_rate: float, layer_scale_init_value: float,
           head_init_scale: float, **kwargs) -> ConvNeXt:
    depths, dims = _VARIANTS[name][:2]
    return ConvNeXt(depths, dims, num_classes=num_classes, drop_path_rate=drop_path_rate,
                    layer_scale_init_value=layer_scale_init_value, head_init_scale=head_init_scale,
                    model_name=name, **kwargs)


def _entry(name: str) -> dict:
    return dict(family="ConvNeXt", preprocess=_preprocess(name), recipe=_recipe(name),
                imagenet_top1=_VARIANTS[name][6])


@register_model("ConvNeXt_tiny", **_entry("ConvNeXt_tiny"))
def convnext_tiny(*, num_classes: int = 1000, drop_path_rate: float = 0.1, layer_scale_init_value: float = 1e-6,
                  head_init_scale: float = 1.0, **kwargs) -> nn.Layer:
    return _build("ConvNeXt_tiny", num_classes, drop_path_rate, layer_scale_init_value, head_init_scale, **kwargs)


@register_model("ConvNeXt_small", **_entry("ConvNeXt_small"))
def convnext_small(*, num_classes: int = 1000, drop_path_rate: float = 0.1, layer_scale_init_value: float = 1e-6,
                   head_init_scale: float = 1.0, **kwargs) -> nn.Layer:
    return _build("ConvNeXt_small", num_classes, drop_path_rate, layer_scale_init_value, head_init_scale, **kwargs)


@register_model("ConvNeXt_base_224", **_entry("ConvNeXt_base_224"))
def convnext_base_224(*, num_classes: int = 1000, drop_path_rate: float = 0.1,
                      layer_scale_init_value: float = 1e-6, head_init_scale: float = 1.0, **kwargs) -> nn.Layer:
    return _build("ConvNeXt_base_224", num_classes, drop_path_rate, layer_scale_init_value, head_init_scale,
                  **kwargs)


@register_model("ConvNeXt_base_384", **_entry("ConvNeXt_base_384"))
def convnext_base_384(*, num_classes: int = 1000, drop_path_rate: float = 0.1,
                      layer_scale_init_value: float = 1e-6, head_init_scale: float = 1.0, **kwargs) -> nn.Layer:
    return _build("ConvNeXt_base_384", num_classes, drop_path_rate, layer_scale_init_value, head_init_scale,
                  **kwargs)


@register_model("ConvNeXt_large_224", **_entry("ConvNeXt_large_224"))
def convnext_large_224(*, num_classes: int = 1000, drop_path_rate: float = 0.1,
                       layer_scale_init_value: float = 1e-6, head_init_scale: float = 1.0, **kwargs) -> nn.Layer:
    return _build("ConvNeXt_large_224", num_classes, drop_path_rate, layer_scale_init_value, head_init_scale,
                  **kwargs)


@register_model("ConvNeXt_large_384", **_entry("ConvNeXt_large_384"))
def convnext_large_384(*, num_classes: int = 1000, drop_path_rate: float = 0.1,
                       layer_scale_init_value: float = 1e-6, head_init_scale: float = 1.0, **kwargs) -> nn.Layer:
    return _build("ConvNeXt_large_384", num_classes, drop_path_rate, layer_scale_init_value, head_init_scale,
                  **kwargs)
