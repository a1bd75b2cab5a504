"""PP-LCNetV2 (PaddleClas, 2022): a CPU-oriented network of depthwise-separable blocks, some re-parameterizable.

Layout and names follow PaddleClas ``legendary_models/pp_lcnet_v2.py`` so that the official weights load:
``stem.0`` (3x3 s2 conv), ``stem.1`` (a plain depthwise-separable block), ``stages.<s>.<i>`` and the head
``last_conv`` (1x1, no bias) -> ReLU -> dropout -> ``fc``.

Stages 3 and 4 use *re-parameterizable* depthwise convs: during training the depthwise step is the sum of several
parallel conv+BN branches (kernel k, k-2, ..., 1; the 1x1 branch is dropped when the block strides), followed by
ReLU. ``re_parameterize()`` folds the branches into the single biased conv ``dw_conv`` that the official weights
also carry. Until it is called, the block computes with the branches, in train and in eval mode alike (PaddleClas
2.6 does the same), so a model loaded from the official weights gives the reference outputs whatever values the
stored ``dw_conv`` holds.

Other facts of the reference kept here: channels are ``make_divisible(c * scale)``; stage 3 splits the pointwise
conv into two (to half the output width, then to the full width) and has SE (ReLU, then sigmoid) between the
depthwise and pointwise steps; only stage 4 has residual shortcuts (stride-1 blocks with equal widths); the head
dropout is PaddlePaddle's ``downscale_in_infer`` mode, which scales the activations by ``1 - p`` in eval mode.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple, Tuple

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .layers import ConvBN, PooledClassifier, SqueezeExcite, fuse_conv_bn, kaiming_normal_init, make_divisible
from .registry import Preprocess, Recipe, Variant, register_family

FAMILY = "PP-LCNetV2"


class StageSpec(NamedTuple):
    """One stage at scale 1.0; the first block strides by 2 and widens ``in_channels`` to ``2 * in_channels``."""

    in_channels: int
    kernel_size: int
    split_pw: bool
    use_rep: bool
    use_se: bool
    use_shortcut: bool


STAGES: Tuple[StageSpec, ...] = (
    StageSpec(64, 3, split_pw=False, use_rep=False, use_se=False, use_shortcut=False),
    StageSpec(128, 3, split_pw=False, use_rep=False, use_se=False, use_shortcut=False),
    StageSpec(256, 5, split_pw=True, use_rep=True, use_se=True, use_shortcut=False),
    StageSpec(512, 5, split_pw=False, use_rep=True, use_se=False, use_shortcut=True),
)


def _se(channels: int) -> SqueezeExcite:
    """SE over C // 4 with a sigmoid gate (PaddleClas names it hardsigmoid, but computes a sigmoid)."""
    return SqueezeExcite(channels, 4, F.sigmoid)


class DepthwiseSeparable(nn.Layer):
    """Depthwise k x k conv (carries the stride) -> optional SE -> pointwise conv(s), optional shortcut.

    Args:
        in_channels: input width (the depthwise conv keeps it).
        out_channels: output width.
        stride: stride of the depthwise conv.
        dw_size: depthwise kernel size.
        split_pw: two pointwise convs (to ``out_channels // 2``, then to ``out_channels``) instead of one.
        use_se: squeeze-and-excitation after the depthwise step.
        use_shortcut: add the input to the output (only when stride 1 and the widths agree).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, dw_size: int = 3, split_pw: bool = False,
                 use_se: bool = False, use_shortcut: bool = False):
        super().__init__()
        self.split_pw = split_pw
        self.use_se = use_se
        self.use_shortcut = use_shortcut and stride == 1 and in_channels == out_channels
        self._build_depthwise(in_channels, stride, dw_size)
        if use_se:
            self.se = _se(in_channels)
        if split_pw:
            mid = int(out_channels * 0.5)
            self.pw_conv_1 = ConvBN(in_channels, mid, 1, act="relu")
            self.pw_conv_2 = ConvBN(mid, out_channels, 1, act="relu")
        else:
            self.pw_conv = ConvBN(in_channels, out_channels, 1, act="relu")

    def _build_depthwise(self, channels: int, stride: int, dw_size: int) -> None:
        self.dw_conv = ConvBN(channels, channels, dw_size, stride=stride, groups=channels, act="relu")

    def depthwise(self, x):
        return self.dw_conv(x)

    def forward(self, x):
        y = self.depthwise(x)
        if self.use_se:
            y = self.se(y)
        if self.split_pw:
            y = self.pw_conv_2(self.pw_conv_1(y))
        else:
            y = self.pw_conv(y)
        if self.use_shortcut:
            y = y + x
        return y


class RepDepthwiseSeparable(DepthwiseSeparable):
    """DepthwiseSeparable whose depthwise step is a sum of conv+BN branches, foldable into one conv.

    Branch kernels are ``dw_size, dw_size - 2, ..., 1`` (no 1x1 branch when strided); ReLU follows the sum.
    ``dw_conv`` is the folded conv (with bias); it is used only after ``re_parameterize()``.
    """

    def _build_depthwise(self, channels: int, stride: int, dw_size: int) -> None:
        self.dw_size = dw_size
        self.is_repped = False
        kernels = [k for k in range(dw_size, 0, -2) if not (k == 1 and stride != 1)]
        self.dw_conv_list = nn.LayerList([
            ConvBN(channels, channels, k, stride=stride, groups=channels) for k in kernels
        ])
        self.dw_conv = nn.Conv2D(channels, channels, dw_size, stride=stride, padding=(dw_size - 1) // 2,
                                 groups=channels)
        self.act = nn.ReLU()

    def depthwise(self, x):
        if self.is_repped:
            return self.act(self.dw_conv(x))
        y = self.dw_conv_list[0](x)
        for branch in self.dw_conv_list[1:]:
            y = y + branch(x)
        return self.act(y)

    @paddle.no_grad()
    def re_parameterize(self) -> None:
        """Fold the branches (eval-mode BN statistics) into ``dw_conv`` and compute with it from now on."""
        kernel_sum, bias_sum = 0, 0
        for branch in self.dw_conv_list:
            kernel, bias = fuse_conv_bn(branch.conv, branch.bn)
            pad = (self.dw_size - kernel.shape[-1]) // 2
            if pad:
                kernel = F.pad(kernel, [pad, pad, pad, pad])
            kernel_sum = kernel_sum + kernel
            bias_sum = bias_sum + bias
        self.dw_conv.weight.set_value(kernel_sum)
        self.dw_conv.bias.set_value(bias_sum)
        self.is_repped = True


class PPLCNetV2(PooledClassifier):
    """PP-LCNetV2 classifier.

    Args:
        scale: width multiplier (channels are ``make_divisible(c * scale)``).
        depths: number of blocks of each of the four stages.
        num_classes: size of the classifier output.
        dropout_prob: dropout before the classifier (``downscale_in_infer``: eval scales by ``1 - p``).
        use_last_conv: put the 1x1 expansion conv + ReLU + dropout before the classifier.
        class_expand: width of that expansion conv.
    """

    def __init__(self, scale: float, depths: Tuple[int, int, int, int], num_classes: int = 1000,
                 dropout_prob: float = 0.0, use_last_conv: bool = True, class_expand: int = 1280):
        super().__init__()
        stem_out = make_divisible(32 * scale)
        self.stem = nn.Sequential(
            ConvBN(3, stem_out, 3, stride=2, act="relu"),
            DepthwiseSeparable(stem_out, make_divisible(64 * scale), stride=1, dw_size=3),
        )
        self.stages = nn.Sequential(*[self._make_stage(spec, depth, scale) for spec, depth in zip(STAGES, depths)])
        self._add_classifier(make_divisible(STAGES[-1].in_channels * 2 * scale), num_classes,
                             expand=class_expand if use_last_conv else None, dropout_prob=dropout_prob)
        # PaddleClas initialises the convs of its conv+BN units with Kaiming-normal (fan-in), the others not.
        kaiming_normal_init(layer.conv for layer in self.sublayers() if isinstance(layer, ConvBN))

    @staticmethod
    def _make_stage(spec: StageSpec, depth: int, scale: float) -> nn.Sequential:
        block = RepDepthwiseSeparable if spec.use_rep else DepthwiseSeparable
        out_channels = make_divisible(spec.in_channels * 2 * scale)
        return nn.Sequential(*[
            block(make_divisible(spec.in_channels * scale) if i == 0 else out_channels, out_channels,
                  stride=2 if i == 0 else 1, dw_size=spec.kernel_size, split_pw=spec.split_pw,
                  use_se=spec.use_se, use_shortcut=spec.use_shortcut)
            for i in range(depth)
        ])

    def forward_features(self, x):
        return self.stages(self.stem(x))


@dataclass(frozen=True)
class PPLCNetV2Arch:
    """The arguments of :class:`PPLCNetV2` that tell its variants apart."""

    scale: float
    depths: Tuple[int, int, int, int]
    dropout_prob: float


# PaddleX inference.yml: resize short side 256 (cv2 default, bilinear), center crop 224. Any input size runs.
PREPROCESS = Preprocess(input_size=224, resize_short=256, interpolation="bilinear", min_size=1)


# PaddleClas ImageNet/PPLCNetV2 configs: Momentum 0.9, no decay on BN (L2Decay(0) in the reference's BN ParamAttr),
# CE with label smoothing 0.1, no EMA; multi-scale crop + flip only. PaddleX's per-card batch size and lr.
RECIPE = Recipe(batch_size=500, learning_rate=0.8, optimizer="momentum", weight_decay=4e-5, no_decay_norm_bias=True,
                label_smoothing=0.1)

# Head dropout 0.2, as PaddleClas' builders pass it.
VARIANTS = (
    Variant("PP-LCNetV2_small", PPLCNetV2Arch(scale=0.75, depths=(2, 2, 4, 2), dropout_prob=0.2), PREPROCESS,
            replace(RECIPE, weight_decay=2e-5), top1=0.7397),
    Variant("PP-LCNetV2_base", PPLCNetV2Arch(scale=1.0, depths=(2, 2, 6, 2), dropout_prob=0.2), PREPROCESS,
            RECIPE, top1=0.7705),
    Variant("PP-LCNetV2_large", PPLCNetV2Arch(scale=1.25, depths=(2, 2, 8, 2), dropout_prob=0.2), PREPROCESS,
            replace(RECIPE, batch_size=250, learning_rate=0.4), top1=0.7851),
)

register_family(FAMILY, VARIANTS, PPLCNetV2, head="fc", rep=True)
