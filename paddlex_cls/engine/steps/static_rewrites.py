"""Build-time rewrites of a Layer that make its static training program fast and correct under oneDNN.

Each is a context manager: it changes how the Layer's forward is traced (hooks, or sublayers swapped for
equivalent ones) while a program is being built, and restores the Layer on exit, so nothing outlives the build
and parameter names never change. Measured on Paddle 3.3 (2-core AVX-512 CPU); each docstring says why.
"""
from __future__ import annotations

import contextlib
import hashlib
from typing import Dict, Iterator, Optional, Tuple

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.static.nn import static_pylayer


@contextlib.contextmanager
def training_rewrites(layer: nn.Layer, onednn: bool) -> Iterator[None]:
    """All rewrites a training program needs (``onednn``: the program will run with oneDNN kernels)."""
    with contextlib.ExitStack() as stack:
        if onednn:  # first: conv_io_copies hooks the layers it makes
            stack.enter_context(convs_without_padding_only_taps(layer))
        stack.enter_context(conv_io_copies(layer))
        stack.enter_context(max_pools_with_index(layer))
        stack.enter_context(linears_on_rows(layer))
        stack.enter_context(global_pools_1d_as_means(layer))
        if onednn:
            stack.enter_context(bn_running_stats(layer))
        yield


def _plain_gradients(layer: nn.Layer, inputs: tuple) -> tuple:
    return tuple(static_pylayer(_same, [t], backward_fn=paddle.assign) for t in inputs)


def _plain_output(layer: nn.Layer, inputs: tuple, output):
    return static_pylayer(paddle.assign, [output], backward_fn=_same)


def _same(t):
    return t


@contextlib.contextmanager
def conv_io_copies(layer: nn.Layer) -> Iterator[None]:
    """While building, give every Conv2D a plain-layout copy of its output and of its input's gradient.

    ``assign`` has no oneDNN kernel, so the executor reorders to plain NCHW where it runs: the ops between convs
    (BN, activations and their grads) then see one layout and get oneDNN's JIT kernels instead of its reference
    kernels (the measured 2-4x of the recipe). Only the two directions that need it are copied (a custom-gradient
    ``static_pylayer`` each): the conv's output in the forward pass, the gradient of its input in the backward
    pass; a plain ``assign`` on both sides also copied the conv's input and its output gradient, which are plain
    already (PP-LCNet_x1_0 at 224 px: 25-30% of a step less). The hooks are removed on exit.
    """
    handles = []
    for sub in layer.sublayers(include_self=True):
        if isinstance(sub, (nn.Conv2D, TapCroppedConv)):
            handles.append(sub.register_forward_pre_hook(_plain_gradients))
            handles.append(sub.register_forward_post_hook(_plain_output))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class _RunningStats:
    """A post-hook per BatchNorm: ``running = lerp(running, batch, 1 - momentum)`` from the batch mean and (biased)
    variance that oneDNN outputs (its inputs still hold the old running values).

    Two ops per statistic with the weight tensor shared (these hooks add hundreds of small ops to a program, each
    with its overhead). The running value is lerp's first input on purpose: with the batch statistic there, the
    executor's in-place reuse overwrote it before the BatchNorm gradient read it (the BN weights stopped learning).
    """

    def __init__(self):
        self.weights: Dict[float, paddle.pir.Value] = {}

    def __call__(self, layer: nn.Layer, inputs: tuple, output):
        op = output.get_defining_op()
        if op.name() not in ("pd_op.batch_norm_", "pd_op.batch_norm") or op.attrs().get("use_global_stats"):
            return output
        rest = 1.0 - float(layer._momentum)
        if rest not in self.weights:
            self.weights[rest] = paddle.full([1], rest, "float32")
        weight = self.weights[rest]
        for batch, running in ((op.result(3), layer._mean), (op.result(4), layer._variance)):
            paddle.assign(paddle.lerp(running, batch, weight), output=running)
        return output


@contextlib.contextmanager
def bn_running_stats(layer: nn.Layer) -> Iterator[None]:
    """While building a oneDNN training program, write BatchNorm running mean/variance with explicit ops.

    oneDNN's training batch-norm kernel (Paddle 3.3) updates the running statistics in its mean/variance outputs
    as if they aliased the inputs, which PIR does not do: the variables keep their old values and the outputs hold
    arithmetic on uninitialised memory. Its batch mean and variance outputs are right, so the update is redone
    from them. Only for oneDNN: the native kernel updates in place and outputs the inverse std instead. Hooks are
    removed on exit.
    """
    update = _RunningStats()
    handles = [sub.register_forward_post_hook(update) for sub in layer.sublayers(include_self=True)
               if isinstance(sub, nn.layer.norm._BatchNormBase) and sub.training]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def cropped_taps(size: int, kernel: int, stride: int, before: int, after: int) -> Optional[Tuple[int, int, int, int]]:
    """Along one axis of a convolution over ``size`` inputs: ``(first tap, taps, pad before, pad after)`` of the
    same convolution without the kernel taps that only ever read zero padding, or None when every tap reads input
    (or the cut cannot keep the output size). The output and the gradients are unchanged: a cut tap only ever
    multiplied zeros, so its weight's gradient is 0 either way."""
    outputs = (size + before + after - kernel) // stride + 1
    used = [t for t in range(kernel) if any(0 <= o * stride - before + t < size for o in range(outputs))]
    if not used or (used[0] == 0 and used[-1] == kernel - 1):
        return None
    first, taps = used[0], used[-1] - used[0] + 1
    new_before = before - first
    new_after = max(0, (outputs - 1) * stride + taps - size - new_before)
    if new_before < 0 or (size + new_before + new_after - taps) // stride + 1 != outputs:
        return None
    return first, taps, new_before, new_after


class TapCroppedConv(nn.Layer):
    """An ``nn.Conv2D`` run without the kernel taps that only read padding at the input size it meets.

    At small inputs the last stages are 1x1 or 2x2 pixels: a 5x5 depthwise kernel padded by 2 there reads one real
    pixel per output, and oneDNN's depthwise weight gradient for such a shape falls back to its GEMM kernel:
    PP-LCNet_x1_0 at 32 px, batch 16, 43 of the 94 ms a step spends in oneDNN went to 7 such gradients (a 512-group
    1x1-pixel one alone 14.7 ms; the 3x3 ones take 0.01-0.03 ms each in jit_dw). Cut to the taps that read input
    (1x1 or 2x2), they run in the fast kernels; ResNet's 3x3 convolutions on 1x1 pixels become 1x1 ones
    (``bench/tap_crop_ab.py``). Only under oneDNN: with native kernels the programs stay bit-identical to dygraph.
    The original layer is held outside the sublayer tree (parameter names stay); at inputs where every tap reads
    pixels (224 px for the registry's models) it runs unchanged.
    """

    def __init__(self, conv: nn.Conv2D):
        super().__init__()
        self.__dict__["_conv"] = conv

    def forward(self, x):
        conv = self.__dict__["_conv"]
        pad = list(conv._updated_padding)
        pads = [(pad[0], pad[0]), (pad[1], pad[1])] if len(pad) == 2 else [(pad[0], pad[1]), (pad[2], pad[3])]
        cuts = [cropped_taps(x.shape[2 + axis], conv._kernel_size[axis], conv._stride[axis], *pads[axis])
                if x.shape[2 + axis] > 0 else None for axis in (0, 1)]
        if cuts == [None, None]:
            return conv(x)
        kernel = [(0, k, *p) if cut is None else cut for cut, k, p in zip(cuts, conv._kernel_size, pads)]
        (y0, kh, top, bottom), (x0, kw, left, right) = kernel
        weight = conv.weight[:, :, y0:y0 + kh, x0:x0 + kw]
        return F.conv2d(x, weight, conv.bias, conv._stride, [top, bottom, left, right], 1, conv._groups)


def _taps_can_be_cut(conv: nn.Conv2D) -> bool:
    """Zero-padded NCHW convolutions without dilation whose kernel can reach into the padding."""
    pad = list(conv._updated_padding) if isinstance(conv._updated_padding, (list, tuple)) else []
    return conv._padding_mode == "zeros" and conv._data_format == "NCHW" and conv._padding_algorithm == "EXPLICIT" \
        and list(conv._dilation) == [1, 1] and len(pad) in (2, 4) and any(pad) and max(conv._kernel_size) > 1


@contextlib.contextmanager
def convs_without_padding_only_taps(layer: nn.Layer) -> Iterator[None]:
    """While building, run every ``nn.Conv2D`` that may reach into its padding as :class:`TapCroppedConv`."""
    with _swapped(layer, nn.Conv2D, TapCroppedConv, when=_taps_can_be_cut):
        yield


class MaxPoolWithIndex(nn.Layer):
    """Max pooling through the with-index kernel, equal to the ``nn.MaxPool2D`` it replaces.

    oneDNN's max-pool gradient fails in PIR training programs; the with-index kernel has no oneDNN version.
    It takes only symmetric explicit padding, so "SAME" padding is applied here by an explicit pad with the
    lowest float (never the maximum of a window that holds a real value). Pools returning their mask or in NHWC
    run as they are.
    """

    def __init__(self, pool: nn.MaxPool2D):
        super().__init__()
        self.__dict__["_pool"] = pool
        self.kernel_size = _pair(pool.ksize)
        self.stride = _pair(pool.stride if pool.stride is not None else pool.ksize)
        self.padding = pool.padding
        self.ceil_mode = pool.ceil_mode

    def forward(self, x):
        pool = self.__dict__["_pool"]
        if pool.return_mask or pool.data_format != "NCHW":
            return pool(x)
        padding = self.padding
        if isinstance(padding, str):
            if padding.upper() == "SAME":
                x = self._pad_same(x)
            padding = 0
        return F.max_pool2d(x, self.kernel_size, self.stride, padding, ceil_mode=self.ceil_mode,
                            return_mask=True)[0]

    def _pad_same(self, x):
        # by concatenation: oneDNN's pad kernel corrupts memory here, and a 4-entry F.pad adds a squeeze whose
        # oneDNN gradient fails
        for axis in (2, 3):
            size, k, s = x.shape[axis], self.kernel_size[axis - 2], self.stride[axis - 2]
            total = max((-(-size // s) - 1) * s + k - size, 0)
            parts = [x]
            for count, at_end in ((total // 2, False), (total - total // 2, True)):
                if count:
                    edge = paddle.slice(x, [axis], [0], [count])
                    fill = paddle.full_like(edge, float(np.finfo(np.float32).min))
                    parts = parts + [fill] if at_end else [fill] + parts
            x = paddle.concat(parts, axis=axis) if len(parts) > 1 else x
        return x


def _pair(v) -> Tuple[int, int]:
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


@contextlib.contextmanager
def max_pools_with_index(layer: nn.Layer) -> Iterator[None]:
    """While building, run every ``nn.MaxPool2D`` sublayer as :class:`MaxPoolWithIndex`; restored on exit."""
    with _swapped(layer, nn.MaxPool2D, MaxPoolWithIndex):
        yield


class RowsLinear(nn.Layer):
    """``nn.Linear`` on an N-D input computed as one 2-D matmul over the flattened leading dims.

    On a [B, ..., C] input the weight gradient of Paddle's batched matmul is a per-batch product summed by a
    oneDNN reduction that falls back to its reference kernel: seconds per step for ConvNeXt and transformers.
    Flattening makes it a single GEMM. The original layer is held outside the sublayer tree (parameter names stay).
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.__dict__["_linear"] = linear

    def forward(self, x):
        lin = self.__dict__["_linear"]
        if x.ndim <= 2 or list(x.shape[:-1]).count(-1) > 1:
            return lin(x)
        rows = F.linear(x.reshape([-1, x.shape[-1]]), lin.weight, lin.bias)
        return rows.reshape(list(x.shape[:-1]) + [rows.shape[-1]])


@contextlib.contextmanager
def linears_on_rows(layer: nn.Layer) -> Iterator[None]:
    """While building, run every ``nn.Linear`` sublayer as :class:`RowsLinear`; restored on exit."""
    with _swapped(layer, nn.Linear, RowsLinear):
        yield


@contextlib.contextmanager
def _swapped(layer: nn.Layer, kind: type, make, when=lambda child: True) -> Iterator[int]:
    """Sublayers of exactly ``kind`` (for which ``when(child)`` holds) replaced by ``make(child)``; restored on
    exit. Yields how many were swapped."""
    swapped = []
    for _, sub in layer.named_sublayers(include_self=True):
        for attr, child in list(sub._sub_layers.items()):
            if type(child) is kind and when(child):
                sub._sub_layers[attr] = make(child)
                swapped.append((sub, attr, child))
    try:
        yield len(swapped)
    finally:
        for sub, attr, child in swapped:
            sub._sub_layers[attr] = child


@contextlib.contextmanager
def constants_as_variables(values: Dict[str, np.ndarray]) -> Iterator[None]:
    """While building, ``paddle.to_tensor(array)`` in a model's forward (Swin's shifted-window mask) makes a
    persistable variable named after the array's content, and puts the array in ``values`` for the engine to write
    into its scope, instead of a constant op. Under oneDNN an ``add`` that reads such a constant fails
    (``dnnl::error``, Paddle 3.3: every SwinTransformer's first static step); the same add reading a variable runs.
    Programs that make the same array share its variable.
    """
    from .static_program import persistable_var

    real = paddle.to_tensor
    made: Dict[str, paddle.pir.Value] = {}  # this program's variable per name (blocks repeat the same mask)

    def to_variable(data, dtype=None, place=None, stop_gradient=True):
        if paddle.in_dynamic_mode() or dtype is not None or not isinstance(data, np.ndarray):
            return real(data, dtype=dtype, place=place, stop_gradient=stop_gradient)
        array = np.ascontiguousarray(data)
        digest = hashlib.sha1(array.tobytes() + str((array.shape, array.dtype)).encode()).hexdigest()[:16]
        name = f"constant@{digest}"
        values[name] = array
        if name not in made:
            made[name] = persistable_var(name, array.shape, str(array.dtype))
        return made[name]

    paddle.to_tensor = to_variable
    try:
        yield
    finally:
        paddle.to_tensor = real


class MeanPool1D(nn.Layer):
    """``nn.AdaptiveAvgPool1D(1)`` as a mean over the last axis: Paddle runs that pool as unsqueeze, pool2d and
    squeeze, and under oneDNN the squeeze's gradient fails (``dnnl::error``, Paddle 3.3: SwinTransformer's head)."""

    def forward(self, x):
        return x.mean(axis=-1, keepdim=True)


@contextlib.contextmanager
def global_pools_1d_as_means(layer: nn.Layer) -> Iterator[None]:
    """While building, run every ``nn.AdaptiveAvgPool1D`` to one output as :class:`MeanPool1D`; restored on exit."""
    with _swapped(layer, nn.AdaptiveAvgPool1D, lambda child: MeanPool1D(),
                  when=lambda child: child.output_size in (1, [1], (1,))):
        yield
