"""PP-HGNetV2 (PaddleClas, 2023): PP-HGNet with a two-path stem, light (1x1 + depthwise) units and LAB.

Layout and names follow PaddleClas ``legendary_models/pp_hgnet_v2.py`` so that the official weights load:
``stem.{stem1,stem2a,stem2b,stem3,stem4}``, ``stages.<s>.{downsample,blocks.<b>}`` and the head
``last_conv`` (1x1 to 2048, no bias) -> ReLU -> [``lab``] -> dropout -> ``fc``.

Facts of the reference kept exactly:
- Stem: stem1 3x3 s2; then two paths from its output: stem2a/stem2b are 2x2 stride-1 convs with ``"SAME"``
  padding (0 before, 1 after) and a 2x2 stride-1 max-pool, also ``"SAME"`` with ``ceil_mode=True``; the two are
  concatenated (pool first) and go through stem3 (3x3 s2) and stem4 (1x1).
- Every conv+BN unit with an activation is conv -> BN -> ReLU -> [LAB]; LAB (learnable affine block,
  ``scale * x + bias`` with two scalars, learning rate x0.01) is used by B0-B3 (``use_lab``), never on units
  without an activation (the 1x1 of a light unit, the stage downsampling conv).
- An HG block concatenates its input with the outputs of ``layer_num`` chained units (3x3 conv units in stages 1-2,
  light units 1x1 conv+BN -> kxk depthwise conv+BN+ReLU in stages 3-4), then squeezes with a 1x1 to
  ``out/2`` and expands with a 1x1 to ``out`` (both with ReLU [+LAB]); blocks after the first add their input.
- Head dropout is ``downscale_in_infer`` (eval scales by ``1 - p``); PaddleX builds these models with p=0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Tuple

import paddle
import paddle.nn as nn

from .layers import ConvBN, PooledClassifier, concat_chain, kaiming_normal_init
from .registry import Preprocess, Recipe, Variant, register_family

FAMILY = "PP-HGNetV2"


class LearnableAffineBlock(nn.Layer):
    """``scale * x + bias`` with two learnable scalars, trained at ``lr_mult * lab_lr`` times the base LR."""

    def __init__(self, scale_value: float = 1.0, bias_value: float = 0.0, lr_mult: float = 1.0,
                 lab_lr: float = 0.01):
        super().__init__()
        attr = paddle.ParamAttr(learning_rate=lr_mult * lab_lr)
        self.scale = self.create_parameter([1], attr=attr, default_initializer=nn.initializer.Constant(scale_value))
        attr = paddle.ParamAttr(learning_rate=lr_mult * lab_lr)
        self.bias = self.create_parameter([1], attr=attr, default_initializer=nn.initializer.Constant(bias_value))

    def forward(self, x):
        return self.scale * x + self.bias


class ConvBNAct(ConvBN):
    """Conv (no bias) -> BN -> [ReLU -> [LAB]], names ``conv``/``bn``/``lab``.

    Args:
        use_act: ReLU after the BN; LAB (``use_lab``) only ever follows it.
        same_padding: ``"SAME"`` padding (asymmetric for even kernels) instead of ``(k - 1) // 2``.
        lr_mult: learning-rate multiplier of the conv, BN and LAB parameters.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, use_act: bool = True, use_lab: bool = False, same_padding: bool = False,
                 lr_mult: float = 1.0):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, groups=groups,
                         act="relu" if use_act else None, padding="SAME" if same_padding else None, lr_mult=lr_mult)
        self.lab = LearnableAffineBlock(lr_mult=lr_mult) if use_act and use_lab else None

    def forward(self, x):
        x = super().forward(x)
        return x if self.lab is None else self.lab(x)


class LightConvBNAct(nn.Layer):
    """1x1 conv+BN (no activation) then k x k depthwise conv+BN+ReLU[+LAB]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, use_lab: bool = False,
                 lr_mult: float = 1.0):
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, 1, use_act=False, use_lab=use_lab, lr_mult=lr_mult)
        self.conv2 = ConvBNAct(out_channels, out_channels, kernel_size, groups=out_channels, use_lab=use_lab,
                               lr_mult=lr_mult)

    def forward(self, x):
        return self.conv2(self.conv1(x))


class StemBlock(nn.Layer):
    """stem1 (3x3 s2) -> [maxpool 2x2 | stem2a -> stem2b (2x2 convs)] -> concat -> stem3 (3x3 s2) -> stem4 (1x1)."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, use_lab: bool = False,
                 lr_mult: float = 1.0):
        super().__init__()
        opts = dict(use_lab=use_lab, lr_mult=lr_mult)
        self.stem1 = ConvBNAct(in_channels, mid_channels, 3, stride=2, **opts)
        self.stem2a = ConvBNAct(mid_channels, mid_channels // 2, 2, same_padding=True, **opts)
        self.stem2b = ConvBNAct(mid_channels // 2, mid_channels, 2, same_padding=True, **opts)
        self.stem3 = ConvBNAct(mid_channels * 2, mid_channels, 3, stride=2, **opts)
        self.stem4 = ConvBNAct(mid_channels, out_channels, 1, **opts)
        self.pool = nn.MaxPool2D(kernel_size=2, stride=1, padding="SAME", ceil_mode=True)

    def forward(self, x):
        x = self.stem1(x)
        x2 = self.stem2b(self.stem2a(x))
        x1 = self.pool(x)
        x = paddle.concat([x1, x2], axis=1)
        return self.stem4(self.stem3(x))


class HGV2Block(nn.Layer):
    """Chained units, concatenation with the input, 1x1 squeeze to out/2 and 1x1 excitation to out, residual."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, kernel_size: int = 3,
                 layer_num: int = 6, identity: bool = False, light_block: bool = True, use_lab: bool = False,
                 lr_mult: float = 1.0):
        super().__init__()
        self.identity = identity
        opts = dict(use_lab=use_lab, lr_mult=lr_mult)
        unit = LightConvBNAct if light_block else ConvBNAct
        self.layers = nn.LayerList([
            unit(in_channels if i == 0 else mid_channels, mid_channels, kernel_size=kernel_size, **opts)
            for i in range(layer_num)
        ])
        total = in_channels + layer_num * mid_channels
        self.aggregation_squeeze_conv = ConvBNAct(total, out_channels // 2, 1, **opts)
        self.aggregation_excitation_conv = ConvBNAct(out_channels // 2, out_channels, 1, **opts)

    def forward(self, x):
        y = self.aggregation_excitation_conv(self.aggregation_squeeze_conv(concat_chain(x, self.layers)))
        return y + x if self.identity else y


class StageSpec(NamedTuple):
    in_channels: int
    mid_channels: int
    out_channels: int
    block_num: int
    is_downsample: bool
    light_block: bool
    kernel_size: int
    layer_num: int


class HGV2Stage(nn.Layer):
    """Optional depthwise 3x3 stride-2 conv+BN (no activation) then ``block_num`` HGV2 blocks."""

    def __init__(self, spec: StageSpec, use_lab: bool = False, lr_mult: float = 1.0):
        super().__init__()
        self.is_downsample = spec.is_downsample
        if spec.is_downsample:
            self.downsample = ConvBNAct(spec.in_channels, spec.in_channels, 3, stride=2, groups=spec.in_channels,
                                        use_act=False, use_lab=use_lab, lr_mult=lr_mult)
        self.blocks = nn.Sequential(*[
            HGV2Block(spec.in_channels if i == 0 else spec.out_channels, spec.mid_channels, spec.out_channels,
                      kernel_size=spec.kernel_size, layer_num=spec.layer_num, identity=i > 0,
                      light_block=spec.light_block, use_lab=use_lab, lr_mult=lr_mult)
            for i in range(spec.block_num)
        ])

    def forward(self, x):
        if self.is_downsample:
            x = self.downsample(x)
        return self.blocks(x)


class PPHGNetV2(PooledClassifier):
    """PP-HGNetV2 classifier.

    Args:
        stem_channels: (input, middle, output) widths of the stem.
        stages: the four stage specifications.
        use_lab: learnable affine blocks after the activations (B0-B3).
        num_classes: size of the classifier output.
        use_last_conv: put the 1x1 expansion conv + ReLU [+ LAB] + dropout before the classifier.
        class_expand: width of that expansion conv.
        dropout_prob: dropout before the classifier (``downscale_in_infer``: eval scales by ``1 - p``).
        lr_mult_list: learning-rate multipliers of the stem and of each stage.
    """

    def __init__(self, stem_channels: Tuple[int, int, int], stages: Tuple[StageSpec, ...], use_lab: bool = False,
                 num_classes: int = 1000, use_last_conv: bool = True, class_expand: int = 2048,
                 dropout_prob: float = 0.0, lr_mult_list: Tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)):
        super().__init__()
        self.stem = StemBlock(*stem_channels, use_lab=use_lab, lr_mult=lr_mult_list[0])
        self.stages = nn.Sequential(*[
            HGV2Stage(spec, use_lab=use_lab, lr_mult=lr_mult_list[i + 1]) for i, spec in enumerate(stages)
        ])
        self._add_classifier(stages[-1].out_channels, num_classes, expand=class_expand if use_last_conv else None,
                             lab=LearnableAffineBlock() if use_lab else None, dropout_prob=dropout_prob)
        kaiming_normal_init(self.sublayers(), reset_norms_and_biases=True)  # as PaddleClas

    def forward_features(self, x):
        return self.stages(self.stem(x))


@dataclass(frozen=True)
class PPHGNetV2Arch:
    """The arguments of :class:`PPHGNetV2` that tell its variants apart."""

    stem_channels: Tuple[int, int, int]
    stages: Tuple[StageSpec, StageSpec, StageSpec, StageSpec]
    use_lab: bool


# PaddleX inference.yml: resize short side 232 (bicubic), center crop 224. Any input size runs.
PREPROCESS = Preprocess(input_size=224, resize_short=232, interpolation="bicubic", min_size=1)
# PaddleX/PaddleClas PPHGNetV2 (fine-tune) configs: Momentum 0.9, L2 2e-5 (BN excluded via L2Decay(0) in the
# reference), CE with label smoothing 0.1, no EMA; bicubic crop + flip, RandAugment (timm, m7) and random erasing.
RECIPE = Recipe(batch_size=64, learning_rate=0.05, optimizer="momentum", weight_decay=2e-5, no_decay_norm_bias=True,
                label_smoothing=0.1, augment=("timm_autoaugment", "random_erasing"))

# StageSpec columns: in, mid, out, blocks, downsample, light block, kernel, layers per block.
VARIANTS = (
    Variant("PP-HGNetV2-B0", PPHGNetV2Arch((3, 16, 16), use_lab=True, stages=(
        StageSpec(16, 16, 64, 1, False, False, 3, 3), StageSpec(64, 32, 256, 1, True, False, 3, 3),
        StageSpec(256, 64, 512, 2, True, True, 5, 3), StageSpec(512, 128, 1024, 1, True, True, 5, 3))),
        PREPROCESS, RECIPE, top1=0.7777),
    Variant("PP-HGNetV2-B1", PPHGNetV2Arch((3, 24, 32), use_lab=True, stages=(
        StageSpec(32, 32, 64, 1, False, False, 3, 3), StageSpec(64, 48, 256, 1, True, False, 3, 3),
        StageSpec(256, 96, 512, 2, True, True, 5, 3), StageSpec(512, 192, 1024, 1, True, True, 5, 3))),
        PREPROCESS, RECIPE, top1=0.7918),
    Variant("PP-HGNetV2-B2", PPHGNetV2Arch((3, 24, 32), use_lab=True, stages=(
        StageSpec(32, 32, 96, 1, False, False, 3, 4), StageSpec(96, 64, 384, 1, True, False, 3, 4),
        StageSpec(384, 128, 768, 3, True, True, 5, 4), StageSpec(768, 256, 1536, 1, True, True, 5, 4))),
        PREPROCESS, RECIPE, top1=0.8174),
    Variant("PP-HGNetV2-B3", PPHGNetV2Arch((3, 24, 32), use_lab=True, stages=(
        StageSpec(32, 32, 128, 1, False, False, 3, 5), StageSpec(128, 64, 512, 1, True, False, 3, 5),
        StageSpec(512, 128, 1024, 3, True, True, 5, 5), StageSpec(1024, 256, 2048, 1, True, True, 5, 5))),
        PREPROCESS, RECIPE, top1=0.8298),
    Variant("PP-HGNetV2-B4", PPHGNetV2Arch((3, 32, 48), use_lab=False, stages=(
        StageSpec(48, 48, 128, 1, False, False, 3, 6), StageSpec(128, 96, 512, 1, True, False, 3, 6),
        StageSpec(512, 192, 1024, 3, True, True, 5, 6), StageSpec(1024, 384, 2048, 1, True, True, 5, 6))),
        PREPROCESS, RECIPE, top1=0.8357),
    Variant("PP-HGNetV2-B5", PPHGNetV2Arch((3, 32, 64), use_lab=False, stages=(
        StageSpec(64, 64, 128, 1, False, False, 3, 6), StageSpec(128, 128, 512, 2, True, False, 3, 6),
        StageSpec(512, 256, 1024, 5, True, True, 5, 6), StageSpec(1024, 512, 2048, 2, True, True, 5, 6))),
        PREPROCESS, RECIPE, top1=0.8475),
    Variant("PP-HGNetV2-B6", PPHGNetV2Arch((3, 48, 96), use_lab=False, stages=(
        StageSpec(96, 96, 192, 2, False, False, 3, 6), StageSpec(192, 192, 512, 3, True, False, 3, 6),
        StageSpec(512, 384, 1024, 6, True, True, 5, 6), StageSpec(1024, 768, 2048, 3, True, True, 5, 6))),
        PREPROCESS, RECIPE, top1=0.8630),
)

register_family(FAMILY, VARIANTS, PPHGNetV2, head="fc")
