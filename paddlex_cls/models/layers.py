"""Building blocks shared by several model families: conv + BN units, squeeze-excite, stochastic depth, the
transformer MLP, padding to whole patches, weight initialisation, the pooled classifier head, re-parameterization.

Sub-layer attribute names (``conv``, ``bn``, ``fc1``, ``last_conv``, ...) follow PaddleClas so that official
``.pdparams`` keys line up.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional, Tuple, Type, Union

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.nn.initializer import Constant, KaimingNormal, TruncatedNormal
from paddle.regularizer import L2Decay

from ..errors import ModelError


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
    """Conv2D -> BatchNorm2D -> optional activation, with PaddleClas' ``conv``/``bn`` names.

    Args:
        padding: ``(kernel_size - 1) // 2 * dilation`` when None; otherwise an int or ``"SAME"``.
        bias: give the conv a bias (StarNet); PaddleClas' conv + BN units have none.
        norm: False leaves the BatchNorm out (``bn`` is then an Identity).
        lr_mult: learning-rate multiplier of the conv and BN parameters (PP-HGNetV2's per-stage multipliers).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, act: Optional[str] = None, padding: Union[int, str, None] = None, dilation: int = 1,
                 bias: bool = False, norm: bool = True, lr_mult: float = 1.0):
        super().__init__()
        padding = (kernel_size - 1) // 2 * dilation if padding is None else padding

        def attr() -> Optional[paddle.ParamAttr]:
            return paddle.ParamAttr(learning_rate=lr_mult) if lr_mult != 1.0 else None

        self.conv = nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                              groups=groups, dilation=dilation, weight_attr=attr(), bias_attr=None if bias else False)
        self.bn = nn.BatchNorm2D(out_channels, weight_attr=attr(), bias_attr=attr()) if norm else nn.Identity()
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
        # and static programs (``paddle.rand``'s is not), so both training engines drop the same samples. The
        # [N, 1, ...] shape comes from a slice, not from ``x.shape[0]``: static programs leave the batch size open.
        ones = paddle.ones_like(x[(slice(None),) + (slice(0, 1),) * (x.ndim - 1)])
        return x * F.dropout(ones, self.drop_prob, training=True)


def make_drop_path(rate: float) -> nn.Layer:
    """DropPath for a positive rate, else Identity (no random draws at all for rate 0)."""
    return DropPath(rate) if rate > 0 else nn.Identity()


class Mlp(nn.Layer):
    """The transformer MLP: Linear -> GELU (exact) -> dropout -> Linear -> dropout, named ``fc1``/``fc2``."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def concat_chain(x: paddle.Tensor, layers: Iterable[nn.Layer]) -> paddle.Tensor:
    """Run ``layers`` one after another and concatenate the input with every output along the channels (the dense
    aggregation of the PP-HGNet blocks)."""
    outputs = [x]
    for layer in layers:
        x = layer(x)
        outputs.append(x)
    return paddle.concat(outputs, axis=1)


def check_static_size(x: paddle.Tensor, network: str) -> None:
    """Raise ModelError when ``x`` is traced with a dynamic height or width.

    For networks whose paddings, masks or position tables are computed from the size in Python: a traced graph
    needs it fixed. Sizes themselves are checked by the registry before building (``ModelEntry.check_input_size``).
    """
    if x.shape[2] < 0 or x.shape[3] < 0:
        raise ModelError(f"{network} cannot be traced with a dynamic spatial input size",
                         "export with a fixed input shape, e.g. InputSpec([None, 3, 224, 224])")


def pad_amounts(height: int, width: int, multiple: int) -> Tuple[int, int]:
    """Bottom/right zero padding before cutting ``multiple``-sized patches or windows, as the references pad.

    Their rule: when either side is not a multiple, BOTH sides are padded by ``multiple - side % multiple``, so a
    side that already was a multiple gains one extra (all-zero) patch. Square inputs never hit that case; it is kept
    so that non-square inputs give the references' outputs too.
    """
    if height % multiple == 0 and width % multiple == 0:
        return 0, 0
    return multiple - height % multiple, multiple - width % multiple


def pad_to_multiple(x: paddle.Tensor, multiple: int) -> paddle.Tensor:
    """Zero-pad an NCHW tensor at the bottom/right by :func:`pad_amounts` (patch embeddings)."""
    pad_h, pad_w = pad_amounts(x.shape[2], x.shape[3], multiple)
    return F.pad(x, [0, pad_w, 0, pad_h]) if pad_h or pad_w else x


# ---- weight initialisation, as the reference networks initialise (the official weights replace it) --------------

ZEROS = Constant(0.0)
ONES = Constant(1.0)
TRUNC_NORMAL = TruncatedNormal(std=0.02)  # for parameters made with create_parameter (tables, tokens)


def trunc_normal_init(layers: Iterable[nn.Layer], layer_types: Tuple[Type[nn.Layer], ...] = (nn.Conv2D, nn.Linear),
                      std: float = 0.02) -> None:
    """Truncated-normal weights (ViT-style std 0.02) and zero biases for the ``layer_types`` among ``layers``.

    Layers are drawn in the given order; ``model.sublayers()`` gives the order of ``model.apply`` for these leaf
    layers, the order the references draw in.
    """
    weight_init = TruncatedNormal(std=std)
    for layer in layers:
        if isinstance(layer, layer_types):
            weight_init(layer.weight)
            if layer.bias is not None:
                ZEROS(layer.bias)


def kaiming_normal_init(layers: Iterable[nn.Layer], *, linear_weights: bool = False,
                        reset_norms_and_biases: bool = False) -> None:
    """Kaiming-normal (fan-in) conv weights among ``layers``, as PaddleClas' CNNs initialise them.

    Args:
        linear_weights: also draw the Linear weights this way (MobileNetV1).
        reset_norms_and_biases: BatchNorm weight 1 / bias 0 and zero Linear biases (PP-HGNet).
    """
    kaiming = KaimingNormal()
    for layer in layers:
        if isinstance(layer, nn.Conv2D) or (linear_weights and isinstance(layer, nn.Linear)):
            kaiming(layer.weight)
        elif reset_norms_and_biases and isinstance(layer, nn.BatchNorm2D):
            ONES(layer.weight)
            ZEROS(layer.bias)
        elif reset_norms_and_biases and isinstance(layer, nn.Linear):
            ZEROS(layer.bias)


class PooledClassifier(nn.Layer):
    """Base of the CNNs whose classifier is global average pool -> [1x1 ``last_conv`` (no bias) -> act [-> ``lab``]
    -> dropout] -> flatten -> Linear.

    The head's layers are attributes of the network itself, so the state-dict keys stay those of the official
    weights (``last_conv.weight``, ``fc.weight``, ...). Subclasses define ``forward_features`` and call
    :meth:`_add_classifier` after their body.
    """

    def _add_classifier(self, in_channels: int, num_classes: int, *, head_name: str = "fc",
                        expand: Optional[int] = None, act: str = "relu", lab: Optional[nn.Layer] = None,
                        dropout_prob: float = 0.0,
                        weight_attr: Union[paddle.ParamAttr, nn.initializer.Initializer, None] = None) -> None:
        """Add the head.

        Args:
            head_name: attribute (= state-dict prefix) of the classifier Linear.
            expand: width of ``last_conv`` (applied after the pool), or None for a Linear right after the pool.
            act: activation after ``last_conv``.
            lab: learnable affine block after that activation (PP-HGNetV2 B0-B3), or None.
            dropout_prob: dropout before the Linear when ``last_conv`` is used; PaddleClas' ``downscale_in_infer``
                mode, so eval outputs are scaled by ``1 - p``.
            weight_attr: the Linear's weight attribute or initializer; Paddle's default when None.
        """
        self.head_name = head_name
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.last_conv = None
        if expand:
            self.last_conv = nn.Conv2D(in_channels, expand, 1, bias_attr=False)
            self.act = make_act(act)
            self.lab = lab
            self.dropout = nn.Dropout(p=dropout_prob, mode="downscale_in_infer")
            in_channels = expand
        self.flatten = nn.Flatten()
        setattr(self, head_name, nn.Linear(in_channels, num_classes, weight_attr=weight_attr))

    def forward_head(self, x):
        x = self.avg_pool(x)
        if self.last_conv is not None:
            x = self.act(self.last_conv(x))
            if self.lab is not None:
                x = self.lab(x)
            x = self.dropout(x)
        return getattr(self, self.head_name)(self.flatten(x))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


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
