"""Swin Transformer (Liu et al., "Hierarchical Vision Transformer using Shifted Windows", 2021).

Weight-compatible with PaddleClas ``SwinTransformer_*`` (paddleclas 2.6, the version PaddleX 3 builds). Layout of the
official weights: ``patch_embed.{proj,norm}``, four stages ``layers.{0..3}`` of ``blocks.{j}`` (``norm1``,
``attn.relative_position_bias_table`` + the persistable int64 buffer ``attn.relative_position_index``, ``attn.qkv``,
``attn.proj``, ``norm2``, ``mlp.fc1``/``mlp.fc2``) with a ``downsample`` patch merging (``reduction`` linear without
bias after a ``norm`` over the 4C concatenated channels) closing stages 0-2, then ``norm`` and ``head``.

Input sizes: like the reference, any size works. Feature maps that are not a multiple of the window are zero-padded
at the bottom/right before the windows are cut (and cropped back after), odd maps are padded before patch merging,
and the shifted-window attention mask is derived from the padded size in ``forward``, so nothing depends on the size
given at construction. Sizes that are multiples of ``4 * window * 8`` (224 for window 7, 384 for window 12) need no
padding at all. The registry declares 32 as the smallest size (one real token left in the last stage).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Sequence, Set, Tuple

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .layers import (
    TRUNC_NORMAL,
    Mlp,
    check_static_size,
    make_drop_path,
    pad_amounts,
    pad_to_multiple,
    trunc_normal_init,
)
from .registry import Preprocess, Recipe, Variant, register_family

FAMILY = "SwinTransformer"
PATCH_SIZE = 4
NUM_STAGES = 4
MIN_SIZE = PATCH_SIZE * 2 ** (NUM_STAGES - 1)  # 32: the last stage keeps at least one real token
MASKED = -100.0  # additive attention mask value of the reference


def _pad_bottom_right(x, pad_h: int, pad_w: int):
    """Zero-pad a [B, H, W, C] map by ``pad_h`` rows at the bottom and ``pad_w`` columns at the right.

    Built from concatenated zeros rather than ``F.pad(..., data_format="NHWC")``, whose exported graph Paddle
    Inference's oneDNN kernels fail to run.
    """
    if pad_h:
        x = paddle.concat([x, paddle.zeros_like(x[:, :1]).tile([1, pad_h, 1, 1])], axis=1)
    if pad_w:
        x = paddle.concat([x, paddle.zeros_like(x[:, :, :1]).tile([1, 1, pad_w, 1])], axis=2)
    return x


def _relative_position_index(window: int) -> np.ndarray:
    """[window^2, window^2] int64 index into the (2*window-1)^2 relative-position bias table."""
    coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij")).reshape(2, -1)
    relative = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (window - 1)  # [N, N, 2], from 0
    return (relative[:, :, 0] * (2 * window - 1) + relative[:, :, 1]).astype("int64")


@functools.lru_cache(maxsize=64)
def _shift_mask(height: int, width: int, window: int, shift: int) -> np.ndarray:
    """Additive mask [num_windows, window^2, window^2] of shifted-window attention on a (padded) height x width map.

    After the cyclic shift each window may hold pixels of up to three regions per axis (the body, the last window
    and the strip rolled in from the other edge); tokens attend only within their own region.
    """

    def region(n: int) -> np.ndarray:
        index = np.arange(n)
        return (index >= n - window).astype("int64") + (index >= n - shift)

    labels = region(height)[:, None] * 3 + region(width)[None, :]
    windows = labels.reshape(height // window, window, width // window, window).transpose(0, 2, 1, 3)
    windows = windows.reshape(-1, window * window)
    return np.where(windows[:, None, :] != windows[:, :, None], MASKED, 0.0).astype("float32")


def window_partition(x, window: int):
    """[B, H, W, C] -> [B * num_windows, window * window, C] (H and W multiples of ``window``)."""
    _, height, width, channels = x.shape
    x = x.reshape([-1, height // window, window, width // window, window, channels])
    # Two reshapes, not one: with a single reshape the exported graph fails under Paddle Inference + oneDNN.
    x = x.transpose([0, 1, 3, 2, 4, 5]).reshape([-1, window, window, channels])
    return x.reshape([-1, window * window, channels])


def window_reverse(windows, window: int, height: int, width: int):
    """Inverse of :func:`window_partition`: [B * num_windows, window * window, C] -> [B, H, W, C]."""
    channels = windows.shape[-1]
    x = windows.reshape([-1, height // window, width // window, window, window, channels])
    return x.transpose([0, 1, 3, 2, 4, 5]).reshape([-1, height, width, channels])


class WindowAttention(nn.Layer):
    """Multi-head self-attention inside square windows, with a learned relative-position bias per head."""

    def __init__(self, dim: int, window: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__()
        self.window = window
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = self.create_parameter(
            [(2 * window - 1) ** 2, num_heads], default_initializer=TRUNC_NORMAL)
        # Persistable, as in the official weights (which carry it); its values never change.
        self.register_buffer("relative_position_index", paddle.to_tensor(_relative_position_index(window)))
        self.qkv = nn.Linear(dim, dim * 3, bias_attr=None if qkv_bias else False)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def relative_position_bias(self):
        """[1, heads, window^2, window^2] bias gathered from the table."""
        tokens = self.window * self.window
        bias = paddle.index_select(self.relative_position_bias_table, self.relative_position_index.reshape([-1]))
        return bias.reshape([tokens, tokens, -1]).transpose([2, 0, 1]).unsqueeze(0)

    def forward(self, x, mask=None):
        tokens, channels = x.shape[1], x.shape[2]
        qkv = self.qkv(x).reshape([-1, tokens, 3, self.num_heads, channels // self.num_heads])
        qkv = qkv.transpose([2, 0, 3, 1, 4])
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = paddle.matmul(q * self.scale, k.transpose([0, 1, 3, 2])) + self.relative_position_bias()
        if mask is not None:
            num_windows = mask.shape[0]
            attn = attn.reshape([-1, num_windows, self.num_heads, tokens, tokens])
            attn = attn + mask.astype(attn.dtype).unsqueeze(1).unsqueeze(0)
            attn = attn.reshape([-1, self.num_heads, tokens, tokens])
        attn = self.attn_drop(F.softmax(attn, axis=-1))
        x = paddle.matmul(attn, v).transpose([0, 2, 1, 3]).reshape([-1, tokens, channels])
        return self.proj_drop(self.proj(x))


class SwinBlock(nn.Layer):
    """LayerNorm -> (shifted) window attention -> residual; LayerNorm -> MLP -> residual.

    Odd blocks shift the windows by half a window. Unlike the original Swin code, the reference keeps the shift
    (and its mask) even when a stage is no larger than one window (the 7x7 last stage at 224), and so do we.
    """

    def __init__(self, dim: int, num_heads: int, window: int, shift: int, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = make_drop_path(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def _attention(self, x, height: int, width: int):
        """Window attention on a [B, H, W, C] map (padded to whole windows, rolled when shifted)."""
        channels = x.shape[-1]
        pad_h, pad_w = pad_amounts(height, width, self.window)
        x = _pad_bottom_right(x, pad_h, pad_w)
        padded_h, padded_w = height + pad_h, width + pad_w
        mask = None
        if self.shift > 0:
            x = paddle.roll(x, shifts=(-self.shift, -self.shift), axis=(1, 2))
            mask = paddle.to_tensor(_shift_mask(padded_h, padded_w, self.window, self.shift))
        x = self.attn(window_partition(x, self.window), mask)
        x = window_reverse(x, self.window, padded_h, padded_w)
        if self.shift > 0:
            x = paddle.roll(x, shifts=(self.shift, self.shift), axis=(1, 2))
        if pad_h or pad_w:
            x = x[:, :height, :width, :]
        return x.reshape([-1, height * width, channels])

    def forward(self, x, size: Tuple[int, int]):
        height, width = size
        channels = x.shape[-1]
        x = x + self.drop_path(self._attention(self.norm1(x).reshape([-1, height, width, channels]), height, width))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Layer):
    """2x2 neighbourhood -> concat (4C) -> LayerNorm -> Linear to 2C; halves the resolution (odd maps padded)."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias_attr=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x, size: Tuple[int, int]):
        height, width = size
        channels = x.shape[-1]
        x = x.reshape([-1, height, width, channels])
        x = _pad_bottom_right(x, height % 2, width % 2)
        # Order of the reference: (even row, even col), (odd, even), (even, odd), (odd, odd).
        x = paddle.concat([x[:, 0::2, 0::2, :], x[:, 1::2, 0::2, :], x[:, 0::2, 1::2, :], x[:, 1::2, 1::2, :]], -1)
        x = x.reshape([-1, ((height + 1) // 2) * ((width + 1) // 2), 4 * channels])
        return self.reduction(self.norm(x))


class SwinStage(nn.Layer):
    """``depth`` blocks alternating plain and shifted windows, optionally followed by patch merging."""

    def __init__(self, dim: int, depth: int, num_heads: int, window: int, drop_path: Sequence[float],
                 downsample: bool, **block_kwargs):
        super().__init__()
        self.blocks = nn.LayerList([
            SwinBlock(dim, num_heads, window, shift=0 if i % 2 == 0 else window // 2, drop_path=drop_path[i],
                      **block_kwargs) for i in range(depth)])
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x, size: Tuple[int, int]):
        for block in self.blocks:
            x = block(x, size)
        if self.downsample is not None:
            x = self.downsample(x, size)
            size = ((size[0] + 1) // 2, (size[1] + 1) // 2)
        return x, size


class PatchEmbed(nn.Layer):
    """4x4/4 conv to ``embed_dim`` tokens, then LayerNorm; inputs not a multiple of 4 are zero-padded first."""

    def __init__(self, embed_dim: int, patch_size: int = PATCH_SIZE, in_channels: int = 3):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2D(in_channels, embed_dim, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x):
        x = self.proj(pad_to_multiple(x, self.patch_size))
        size = (x.shape[2], x.shape[3])
        return self.norm(x.flatten(2).transpose([0, 2, 1])), size


class SwinTransformer(nn.Layer):
    """Swin Transformer classifier.

    Args:
        embed_dim: channels of the first stage (doubled by each patch merging).
        depths: blocks per stage.
        num_heads: attention heads per stage.
        window: window side in tokens.
        num_classes: classifier outputs.
        mlp_ratio: hidden width of the MLPs relative to the stage width.
        qkv_bias: learn a bias for the query/key/value projection.
        drop_rate: dropout after the patch embedding, in the MLPs and after the attention projection.
        attn_drop_rate: dropout of the attention weights.
        drop_path_rate: stochastic-depth rate of the last block (linearly increasing from 0).
        in_channels: image channels.
    """

    def __init__(self, embed_dim: int, depths: Sequence[int], num_heads: Sequence[int], window: int,
                 num_classes: int = 1000, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.1, in_channels: int = 3):
        super().__init__()
        self.window = window
        self.num_features = embed_dim * 2 ** (len(depths) - 1)

        self.patch_embed = PatchEmbed(embed_dim, in_channels=in_channels)
        self.pos_drop = nn.Dropout(drop_rate)
        rates = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.layers = nn.LayerList()
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            start = sum(depths[:i])
            self.layers.append(SwinStage(embed_dim * 2 ** i, depth, heads, window, rates[start:start + depth],
                                         downsample=i < len(depths) - 1, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                                         drop=drop_rate, attn_drop=attn_drop_rate))
        self.norm = nn.LayerNorm(self.num_features)
        self.avgpool = nn.AdaptiveAvgPool1D(1)
        self.head = nn.Linear(self.num_features, num_classes)
        trunc_normal_init(self.sublayers(), (nn.Linear,))

    def no_weight_decay(self) -> Set[str]:
        """Names of multi-dimensional parameters the recipe exempts from weight decay (the bias tables)."""
        return {name for name, _ in self.named_parameters() if name.endswith("relative_position_bias_table")}

    def forward_features(self, x):
        check_static_size(x, "SwinTransformer")
        x, size = self.patch_embed(x)
        x = self.pos_drop(x)
        for stage in self.layers:
            x, size = stage(x, size)
        x = self.norm(x)
        return self.avgpool(x.transpose([0, 2, 1])).flatten(1)

    def forward(self, x):
        return self.head(self.forward_features(x))


@dataclass(frozen=True)
class SwinArch:
    """The arguments of :class:`SwinTransformer` that tell its variants apart."""

    embed_dim: int
    depths: Tuple[int, int, int, int]
    num_heads: Tuple[int, int, int, int]
    window: int
    drop_path_rate: float


def _preprocess(size: int, resize_short: int) -> Preprocess:
    return Preprocess(input_size=size, resize_short=resize_short, interpolation="bicubic", min_size=MIN_SIZE)


# PaddleX's Swin configs: AdamW wd 0.05 without decay on 1-D params, biases, norms and the relative-position bias
# tables (``no_weight_decay()``); CE with label smoothing 0.1; timm RandAugment (rand-m9-mstd0.5-inc1), random
# erasing 0.25, mixup 0.8 / cutmix 1.0; no EMA, no gradient clipping. Batch size and lr per model. The drop-path
# rates are PaddleClas' builder values (PaddleX passes none): 0.2 / 0.3 / 0.5, and the class default 0.1 for large.
RECIPE = Recipe(batch_size=64, learning_rate=0.003, optimizer="adamw", weight_decay=0.05, no_decay_norm_bias=True,
                label_smoothing=0.1, augment=("timm_autoaugment", "random_erasing", "mixup", "cutmix"))
BASE_RECIPE = replace(RECIPE, batch_size=32, learning_rate=0.0015)
LARGE_RECIPE = replace(RECIPE, batch_size=8, learning_rate=0.0015)
DEEP = (2, 2, 18, 2)

VARIANTS = (
    Variant("SwinTransformer_tiny_patch4_window7_224",
            SwinArch(96, (2, 2, 6, 2), (3, 6, 12, 24), window=7, drop_path_rate=0.2),
            _preprocess(224, 256), RECIPE, top1=0.8110),
    Variant("SwinTransformer_small_patch4_window7_224",
            SwinArch(96, DEEP, (3, 6, 12, 24), window=7, drop_path_rate=0.3),
            _preprocess(224, 256), RECIPE, top1=0.8321),
    Variant("SwinTransformer_base_patch4_window7_224",
            SwinArch(128, DEEP, (4, 8, 16, 32), window=7, drop_path_rate=0.5),
            _preprocess(224, 256), BASE_RECIPE, top1=0.8337),
    Variant("SwinTransformer_base_patch4_window12_384",
            SwinArch(128, DEEP, (4, 8, 16, 32), window=12, drop_path_rate=0.5),
            _preprocess(384, 438), replace(BASE_RECIPE, batch_size=8), top1=0.8417),
    Variant("SwinTransformer_large_patch4_window7_224",
            SwinArch(192, DEEP, (6, 12, 24, 48), window=7, drop_path_rate=0.1),
            _preprocess(224, 256), LARGE_RECIPE, top1=0.8619),
    Variant("SwinTransformer_large_patch4_window12_384",
            SwinArch(192, DEEP, (6, 12, 24, 48), window=12, drop_path_rate=0.1),
            _preprocess(384, 438), LARGE_RECIPE, top1=0.8706),
)

register_family(FAMILY, VARIANTS, SwinTransformer, head="head")
