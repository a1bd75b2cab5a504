"""CLIP image encoders (ViT, Radford et al. 2021) fine-tuned for classification, weight-compatible with PaddleClas
``CLIP_vit_*`` (``ppcls/arch/backbone/model_zoo/foundation_vit.py``, paddleclas 2.6 as PaddleX 3 builds it).

Layout of the official weights: the network's own ``pos_embed`` [1, 1 + grid^2, C], ``cls_token`` [1, 1, C] and
``proj`` [C, 512] (the CLIP image projection, used only with ``return_embed=True``), then ``patch_embed.proj``
(patch conv without bias), ``ln_pre`` (LayerNorm before the encoder), ``blocks.{i}`` (``norm1``, ``attn.qkv`` with
bias, ``attn.proj``, ``norm2``, ``mlp.fc1``/``mlp.fc2`` with exact GELU, as the reference uses for CLIP), the final
``norm`` and ``head.fc_head``.

Facts of the reference kept here: the classifier reads ``norm`` of ONE token. For the large model that is the class
token; for the base model the reference drops the class token after the encoder and then reads the first remaining
token, i.e. the first patch token (``pool_token=1``). Attention scales the logits after ``q @ k^T``.

Input sizes: the position embedding is learned for a 224 input. Other sizes get it resized (bicubic, class-token
entry kept) to the token grid in ``forward``; inputs that are not a multiple of the patch size are zero-padded at the
bottom/right first, as the reference does. The registry declares one patch as the smallest size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Set, Tuple

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.nn.initializer import Normal

from .layers import TRUNC_NORMAL, Mlp, check_static_size, make_drop_path, pad_to_multiple, trunc_normal_init
from .registry import Preprocess, Recipe, Variant, register_family

FAMILY = "CLIP"
NATIVE_SIZE = 224


def resize_pos_embed(pos_embed, src_grid: Tuple[int, int], dst_grid: Tuple[int, int]):
    """Bicubically resize the patch part of a [1, 1 + H*W, C] position embedding to ``dst_grid``; the class-token
    entry is kept as is."""
    if tuple(src_grid) == tuple(dst_grid):
        return pos_embed
    channels = pos_embed.shape[-1]
    cls_part, grid_part = pos_embed[:, :1], pos_embed[:, 1:]
    grid_part = grid_part.reshape([1, src_grid[0], src_grid[1], channels]).transpose([0, 3, 1, 2])
    grid_part = F.interpolate(grid_part.astype("float32"), size=list(dst_grid), mode="bicubic", align_corners=False)
    grid_part = grid_part.flatten(2).transpose([0, 2, 1]).astype(pos_embed.dtype)
    return paddle.concat([cls_part, grid_part], axis=1)


class Attention(nn.Layer):
    """Multi-head self-attention over all tokens."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias_attr=None if qkv_bias else False)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        tokens, channels = x.shape[1], x.shape[2]
        qkv = self.qkv(x).reshape([-1, tokens, 3, self.num_heads, channels // self.num_heads])
        qkv = qkv.transpose([2, 0, 3, 1, 4])
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = F.softmax(q.matmul(k.transpose([0, 1, 3, 2])) * self.scale, axis=-1)
        x = self.attn_drop(attn).matmul(v).transpose([0, 2, 1, 3]).reshape([-1, tokens, channels])
        return self.proj_drop(self.proj(x))


class Block(nn.Layer):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop: float = 0.0,
                 attn_drop: float = 0.0, drop_path: float = 0.0, epsilon: float = 1e-5):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, epsilon=epsilon)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = make_drop_path(drop_path)
        self.norm2 = nn.LayerNorm(dim, epsilon=epsilon)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Layer):
    """Non-overlapping patch conv (no bias) to tokens; returns the tokens and the token grid."""

    def __init__(self, patch_size: int, embed_dim: int, in_channels: int = 3):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2D(in_channels, embed_dim, patch_size, stride=patch_size, bias_attr=False)

    def forward(self, x):
        x = self.proj(pad_to_multiple(x, self.patch_size))
        return x.flatten(2).transpose([0, 2, 1]), (x.shape[2], x.shape[3])


class ClassifierHead(nn.Layer):
    """The reference's head wrapper: just the ``fc_head`` linear on the pooled, normalised token."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.fc_head = nn.Linear(dim, num_classes)

    def forward(self, x):
        return self.fc_head(x)


class CLIPVisionTransformer(nn.Layer):
    """CLIP ViT image encoder with a linear classifier.

    Layer-wise learning-rate decay (the recipe's ``layer_decay``): ``layer_id_of(name)`` gives a parameter's depth
    as PaddleClas' AdamWDL assigns it -- 0 for the embeddings (``pos_embed``, ``cls_token``, ``patch_embed.*``,
    ``ln_pre.*``), ``i + 1`` for ``blocks.i.*`` and ``num_layers_for_decay + 1`` for everything after the encoder
    (``norm``, ``head``, ``proj``); the optimizer scales each learning rate by
    ``decay ** (num_layers_for_decay + 1 - layer_id)``. ``no_weight_decay()`` names the multi-dimensional parameters
    the recipe exempts from weight decay (besides 1-D parameters and biases).

    Args:
        patch_size: side of the square patches.
        embed_dim: token width.
        depth: number of transformer blocks.
        num_heads: attention heads.
        num_classes: classifier outputs.
        pool_token: index of the token the classifier reads after the encoder (see the module docstring).
        drop_class_token: drop the class token after the encoder (before pooling), as the reference does for base.
        mlp_ratio: MLP hidden width relative to ``embed_dim``.
        qkv_bias: learn a bias for the query/key/value projection.
        output_dim: width of the CLIP image projection ``proj``.
        drop_rate: dropout after the embeddings, in the MLPs and after the attention projection.
        attn_drop_rate: dropout of the attention weights.
        drop_path_rate: stochastic-depth rate of the last block (linearly increasing from 0).
        return_embed: return ``norm(tokens) @ proj`` ([B, N, output_dim]) instead of class logits (no head).
        head_init_scale: factor on the initial classifier weights.
        in_channels: image channels.
    """

    def __init__(self, patch_size: int, embed_dim: int, depth: int, num_heads: int, num_classes: int = 1000,
                 pool_token: int = 0, drop_class_token: bool = False, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, output_dim: int = 512, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0, return_embed: bool = False, head_init_scale: float = 0.001,
                 in_channels: int = 3):
        super().__init__()
        self.patch_size = patch_size
        self.grid = (NATIVE_SIZE // patch_size, NATIVE_SIZE // patch_size)
        self.pool_token = pool_token
        self.drop_class_token = drop_class_token
        self.return_embed = return_embed
        self.num_layers_for_decay = depth

        # Parameter order of the official weights: pos_embed, cls_token, proj, then the sub-layers.
        self.pos_embed = self.create_parameter([1, self.grid[0] * self.grid[1] + 1, embed_dim],
                                               default_initializer=TRUNC_NORMAL)
        self.cls_token = self.create_parameter([1, 1, embed_dim], default_initializer=TRUNC_NORMAL)
        self.proj = self.create_parameter([embed_dim, output_dim], default_initializer=Normal(std=embed_dim ** -0.5))
        self.patch_embed = PatchEmbed(patch_size, embed_dim, in_channels)
        self.pos_drop = nn.Dropout(drop_rate)
        self.ln_pre = nn.LayerNorm(embed_dim)
        rates = np.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.LayerList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop=drop_rate, attn_drop=attn_drop_rate,
                  drop_path=rates[i]) for i in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, epsilon=1e-5)
        self.head = nn.Identity() if return_embed else ClassifierHead(embed_dim, num_classes)
        trunc_normal_init(self.sublayers(), (nn.Linear,))
        if not return_embed:
            trunc_normal_init([self.head.fc_head], std=0.02 * head_init_scale)

    def layer_id_of(self, param_name: str) -> int:
        """Depth of a parameter for layer-wise LR decay (0 = embeddings, 1..depth = blocks, depth + 1 = after)."""
        if param_name.startswith("blocks."):
            return int(param_name.split(".")[1]) + 1
        if param_name.startswith(("pos_embed", "cls_token", "patch_embed.", "ln_pre.")):
            return 0
        return self.num_layers_for_decay + 1

    def no_weight_decay(self) -> Set[str]:
        """Multi-dimensional parameters without weight decay in the recipe."""
        return {"pos_embed", "cls_token"}

    def forward_features(self, x):
        check_static_size(x, "CLIPVisionTransformer")
        x, grid = self.patch_embed(x)
        cls_token = paddle.zeros_like(x[:, :1]) + self.cls_token  # broadcast over a batch that may be dynamic
        x = paddle.concat([cls_token, x], axis=1) + resize_pos_embed(self.pos_embed, self.grid, grid)
        x = self.pos_drop(self.ln_pre(x))
        for block in self.blocks:
            x = block(x)
        if self.drop_class_token:
            x = x[:, 1:]
        return self.norm(x if self.return_embed else x[:, self.pool_token])

    def forward(self, x):
        x = self.forward_features(x)
        if self.return_embed:
            return x.matmul(self.proj)
        return self.head(x)


@dataclass(frozen=True)
class CLIPArch:
    """The arguments of :class:`CLIPVisionTransformer` that tell its variants apart."""

    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int
    pool_token: int
    drop_class_token: bool


def _preprocess(patch_size: int) -> Preprocess:
    """PaddleX's inference pipeline for CLIP: resize short side 256, center-crop 224, ImageNet mean/std. Any size
    from one patch runs (the position embedding is resized)."""
    return Preprocess(input_size=NATIVE_SIZE, resize_short=256, interpolation="bicubic", min_size=patch_size)


# PaddleX's CLIP configs: AdamWDL (wd 0.05 except 1-D params, biases, pos_embed and cls_token, see
# ``no_weight_decay()``; layer-wise LR decay 0.6), CE with label smoothing 0.1, timm RandAugment
# (rand-m9-mstd0.5-inc1) and random erasing 0.25; no mixup/cutmix, no EMA, no gradient clipping.
RECIPE = Recipe(batch_size=32, learning_rate=3e-4, optimizer="adamw", weight_decay=0.05, no_decay_norm_bias=True,
                label_smoothing=0.1, layer_decay=0.6, augment=("timm_autoaugment", "random_erasing"))

VARIANTS = (
    # PaddleClas removes the class token of vit_base_patch16_224 after the encoder, then reads token 0 of the rest.
    Variant("CLIP_vit_base_patch16_224",
            CLIPArch(patch_size=16, embed_dim=768, depth=12, num_heads=12, pool_token=0, drop_class_token=True),
            _preprocess(16), RECIPE, top1=0.8536),
    Variant("CLIP_vit_large_patch14_224",
            CLIPArch(patch_size=14, embed_dim=1024, depth=24, num_heads=16, pool_token=0, drop_class_token=False),
            _preprocess(14), RECIPE, top1=0.881),
)

register_family(FAMILY, VARIANTS, CLIPVisionTransformer, head="head.fc_head")
