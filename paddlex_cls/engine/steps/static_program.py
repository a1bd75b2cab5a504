"""Pieces that turn a dygraph ``nn.Layer`` into static PIR programs fast under oneDNN, and move state in and out.

The Layer is built once, in dygraph mode, by the registry's own builder. Its tensors are then re-bound to static
parameters of the same names in each program (``bind_static``), so every program of one engine (the training
program per batch shape, the evaluation program) shares one set of scope variables, and the names equal the
dygraph names: optimizer accumulators come out named ``<param.name>_velocity_0`` as in dygraph checkpoints.
Building in dygraph keeps builders that use eager tensors at construction time (``linspace().numpy()``,
``register_buffer``) working.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

StateDict = Dict[str, np.ndarray]


@dataclass(frozen=True)
class TensorSlot:
    """Where one parameter or buffer lives in the Layer tree, and what its static variable needs.

    Attributes:
        owner: the sublayer holding it.
        attr: its key in ``owner._parameters`` or ``owner._buffers``.
        key: its ``state_dict()`` key, or "" for a non-persistable buffer.
        name: the variable name (the dygraph tensor's ``name``).
        is_param: a parameter (trainable or not, e.g. BN running stats), else a buffer.
    """

    owner: nn.Layer
    attr: str
    key: str
    name: str
    shape: Tuple[int, ...]
    dtype: str
    is_param: bool
    trainable: bool
    regularizer: Optional[object]
    learning_rate: float
    need_clip: bool


def capture_slots(layer: nn.Layer) -> Tuple[List[TensorSlot], StateDict]:
    """The tensor slots of a dygraph Layer and the current value of each variable (by variable name)."""
    keys = {id(v): k for k, v in layer.state_dict().items()}
    slots: List[TensorSlot] = []
    values: StateDict = {}
    for _, sub in layer.named_sublayers(include_self=True):
        for attr, t in list(sub._parameters.items()) + list(sub._buffers.items()):
            if t is None:
                continue
            is_param = attr in sub._parameters
            slots.append(TensorSlot(
                owner=sub, attr=attr, key=keys.get(id(t), ""), name=t.name, shape=tuple(t.shape),
                dtype=str(t.dtype).replace("paddle.", ""), is_param=is_param,
                trainable=is_param and not t.stop_gradient, regularizer=getattr(t, "regularizer", None),
                learning_rate=float(getattr(t, "optimize_attr", {}).get("learning_rate", 1.0)),
                need_clip=bool(getattr(t, "need_clip", True))))
            values[t.name] = t.numpy()
    return slots, values


def bind_static(slots: List[TensorSlot]) -> Dict[str, paddle.pir.Value]:
    """Put a static variable of the slot's name in every slot, for the program being built; returns them by name.

    Parameters keep the dygraph attributes the optimizer reads (trainable, own regularizer, LR multiplier,
    gradient clipping); buffers become non-trainable parameters (persistable, never updated). Initial values are
    zeros: the engine writes the real values into its scope.
    """
    made: Dict[str, paddle.pir.Value] = {}
    for s in slots:
        if s.name not in made:
            made[s.name] = persistable_var(s.name, s.shape, s.dtype, paddle.ParamAttr(
                name=s.name, trainable=s.trainable, regularizer=s.regularizer, learning_rate=s.learning_rate,
                need_clip=s.need_clip))
        table = s.owner._parameters if s.is_param else s.owner._buffers
        table[s.attr] = made[s.name]
    return made


def persistable_var(name: str, shape: Tuple[int, ...], dtype: str,
                    attr: Optional[paddle.ParamAttr] = None) -> paddle.pir.Value:
    """A zero-initialised persistable variable of the program being built (a parameter, non-trainable unless
    ``attr`` says otherwise; ``create_global_var`` does not work under PIR)."""
    attr = attr or paddle.ParamAttr(name=name, trainable=False)
    return paddle.create_parameter(list(shape), dtype, attr=attr, default_initializer=nn.initializer.Constant(0.0))


def _copy_inputs(layer: nn.Layer, inputs: tuple) -> tuple:
    return tuple(paddle.assign(t) for t in inputs)


def _copy_output(layer: nn.Layer, inputs: tuple, output):
    return paddle.assign(output)


@contextlib.contextmanager
def conv_io_copies(layer: nn.Layer) -> Iterator[None]:
    """While building, pass every Conv2D's input and output through ``assign``.

    ``assign`` has no oneDNN kernel, so the executor reorders to plain NCHW around each conv: the ops between
    convs (BN, activations and their grads) then see one layout and get oneDNN's JIT kernels instead of its
    reference kernels (the measured 2-4x of the recipe). The hooks are removed on exit.
    """
    handles = []
    for sub in layer.sublayers(include_self=True):
        if isinstance(sub, nn.Conv2D):
            handles.append(sub.register_forward_pre_hook(_copy_inputs))
            handles.append(sub.register_forward_post_hook(_copy_output))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _update_running_stats(layer: nn.Layer, inputs: tuple, output):
    op = output.get_defining_op()
    if op.name() not in ("pd_op.batch_norm_", "pd_op.batch_norm") or op.attrs().get("use_global_stats"):
        return output
    # the native kernel's update, running * momentum + batch * (1 - momentum), from the batch mean and (biased)
    # variance that oneDNN outputs; its inputs still hold the old running values
    momentum = float(np.float32(layer._momentum))
    rest = float(np.float32(1.0) - np.float32(layer._momentum))
    paddle.assign(layer._mean * momentum + op.result(3) * rest, output=layer._mean)
    paddle.assign(layer._variance * momentum + op.result(4) * rest, output=layer._variance)
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
    handles = [sub.register_forward_post_hook(_update_running_stats) for sub in layer.sublayers(include_self=True)
               if isinstance(sub, nn.layer.norm._BatchNormBase) and sub.training]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


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
def _swapped(layer: nn.Layer, kind: type, make) -> Iterator[int]:
    swapped = []
    for _, sub in layer.named_sublayers(include_self=True):
        for attr, child in list(sub._sub_layers.items()):
            if type(child) is kind:
                sub._sub_layers[attr] = make(child)
                swapped.append((sub, attr, child))
    try:
        yield len(swapped)
    finally:
        for sub, attr, child in swapped:
            sub._sub_layers[attr] = child


def read_vars(scope, names) -> StateDict:
    """Copies of the named scope variables as numpy arrays."""
    return {n: np.array(scope.find_var(n).get_tensor()) for n in names}


def write_vars(scope, arrays: StateDict, place) -> None:
    """Set the named scope variables (which must exist) to the given arrays."""
    for n, a in arrays.items():
        var = scope.find_var(n)
        assert var is not None, f"no variable {n} in the scope"
        var.get_tensor().set(np.ascontiguousarray(a), place)


def append_optimizer_step(optimizer: paddle.optimizer.Optimizer, loss: paddle.pir.Value,
                          startup: paddle.static.Program) -> None:
    """Append backward and update ops to the program being built, the way the dygraph ``optimizer.step()`` does.

    ``minimize`` does not take parameter groups in static mode. Dygraph ``step()`` updates each group on its own
    (gradient clipping per group, the group's weight decay), so this walks the groups the same way over one
    backward pass, keeping the meaning of a ``build_optimizer`` optimizer identical on both engines.
    """
    groups = optimizer._param_groups
    grouped = bool(groups) and isinstance(groups[0], dict)
    params = [p for g in groups for p in g["params"]] if grouped else list(groups)
    params_grads = optimizer.backward(loss, startup, parameters=[p for p in params if not p.stop_gradient])
    if optimizer._grad_clip is not None:
        # oneDNN's multiply fails on a blocked-layout gradient times the clip scale: clip plain copies
        params_grads = [(p, paddle.assign(g) if g is not None else None) for p, g in params_grads]
    if not grouped:
        optimizer._apply_optimize(loss, startup, params_grads)
        return
    grad_of = {p.name: g for p, g in params_grads}
    for idx, group in enumerate(groups):
        step = {k: v for k, v in group.items() if k != "params"}
        step["params"] = [(p, grad_of[p.name]) for p in group["params"] if grad_of.get(p.name) is not None]
        optimizer._apply_optimize(loss, startup, step, param_group_idx=idx)
