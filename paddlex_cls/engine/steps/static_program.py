"""Static programs from a dygraph ``nn.Layer``: parameter binding, the optimizer step, scope variables in and out.

The Layer is built once, in dygraph mode, by the registry's own builder. Its tensors are then re-bound to static
parameters of the same names in each program (``bind_static``), so every program of one engine (the training
programs, the evaluation program) shares one set of scope variables, and the names equal the
dygraph names: optimizer accumulators come out named ``<param.name>_velocity_0`` as in dygraph checkpoints.
Building in dygraph keeps builders that use eager tensors at construction time (``linspace().numpy()``,
``register_buffer``) working.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Collection, Dict, List, Optional, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn as nn

from .base import LazyArray

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


def bind_static(slots: List[TensorSlot], frozen: Collection[str] = ()) -> Dict[str, paddle.pir.Value]:
    """Put a static variable of the slot's name in every slot, for the program being built; returns them by name.

    Parameters keep the dygraph attributes the optimizer reads (trainable, own regularizer, LR multiplier,
    gradient clipping); buffers become non-trainable parameters (persistable, never updated), and so do the
    variables named in ``frozen`` (a frozen backbone). Initial values are zeros: the engine writes the real values
    into its scope.
    """
    made: Dict[str, paddle.pir.Value] = {}
    for s in slots:
        if s.name not in made:
            made[s.name] = persistable_var(s.name, s.shape, s.dtype, paddle.ParamAttr(
                name=s.name, trainable=s.trainable and s.name not in frozen, regularizer=s.regularizer,
                learning_rate=s.learning_rate, need_clip=s.need_clip))
        table = s.owner._parameters if s.is_param else s.owner._buffers
        table[s.attr] = made[s.name]
    return made


def persistable_var(name: str, shape: Tuple[int, ...], dtype: str,
                    attr: Optional[paddle.ParamAttr] = None) -> paddle.pir.Value:
    """A zero-initialised persistable variable of the program being built (a parameter, non-trainable unless
    ``attr`` says otherwise; ``create_global_var`` does not work under PIR)."""
    attr = attr or paddle.ParamAttr(name=name, trainable=False)
    return paddle.create_parameter(list(shape), dtype, attr=attr, default_initializer=nn.initializer.Constant(0.0))


def persistable_names(program: paddle.static.Program) -> List[str]:
    """Names of the persistable variables a program uses: parameters, optimizer state, the learning rate."""
    names = [op.attrs().get("parameter_name") or op.attrs()["name"] for op in program.global_block().ops
             if op.name() in ("builtin.parameter", "pd_op.data") and op.result(0).persistable]
    return names + ([program.lr_name] if getattr(program, "lr_name", None) else [])


def read_vars(scope, names, lazy: bool = False) -> StateDict:
    """Copies of the named scope variables as numpy arrays, or with ``lazy`` as LazyArrays copied when used."""
    if lazy:
        return {n: LazyArray(functools.partial(_read_var, scope, n)) for n in names}
    return {n: _read_var(scope, n) for n in names}


def _read_var(scope, name: str) -> np.ndarray:
    return np.array(scope.find_var(name).get_tensor())


def write_vars(scope, arrays: StateDict, place) -> None:
    """Set the named scope variables (created when missing) to the given arrays."""
    for n, a in arrays.items():
        scope.var(n).get_tensor().set(np.ascontiguousarray(a), place)


def trainable_params(optimizer: paddle.optimizer.Optimizer) -> List[paddle.pir.Value]:
    """The parameters ``optimizer`` updates (over all its groups), in its order, without frozen ones."""
    groups = optimizer._param_groups
    grouped = bool(groups) and isinstance(groups[0], dict)
    params = [p for g in groups for p in g["params"]] if grouped else list(groups)
    return [p for p in params if not p.stop_gradient]


def gradients(loss: paddle.pir.Value, params: Sequence[paddle.pir.Value],
              also: Sequence[paddle.pir.Value] = ()) -> List[Tuple[paddle.pir.Value, Any]]:
    """Append the backward pass of ``loss`` to the program being built: (parameter, gradient) pairs, as the static
    ``optimizer.backward`` makes them (pairs without a gradient dropped).

    Args:
        also: values whose gradients are computed as well and dropped (see ``StaticStep._building``).
    """
    grads = paddle.autograd.ir_backward.grad(loss, list(params) + list(also))
    return [(p, g) for p, g in zip(params, grads) if g is not None]


def append_optimizer_step(optimizer: paddle.optimizer.Optimizer, loss: paddle.pir.Value,
                          startup: paddle.static.Program, also: Sequence[paddle.pir.Value] = ()) -> None:
    """Append backward and update ops to the program being built, the way the dygraph ``optimizer.step()`` does
    (``also``: see :func:`gradients`)."""
    apply_gradients(optimizer, gradients(loss, trainable_params(optimizer), also), startup)


def apply_gradients(optimizer: paddle.optimizer.Optimizer, params_grads: List[Tuple[paddle.pir.Value, Any]],
                    startup: paddle.static.Program) -> None:
    """Append the update ops of ``optimizer`` for the given gradients to the program being built.

    ``minimize`` does not take parameter groups in static mode. Dygraph ``step()`` updates each group on its own
    (gradient clipping per group, the group's weight decay and LR multiplier), so this walks the groups the same
    way, keeping the meaning of a ``build_optimizer`` optimizer identical on both engines.
    """
    groups = optimizer._param_groups
    grouped = bool(groups) and isinstance(groups[0], dict)
    if optimizer._grad_clip is not None:
        # oneDNN's multiply fails on a blocked-layout gradient times the clip scale: clip plain copies
        params_grads = [(p, paddle.assign(g) if g is not None else None) for p, g in params_grads]
    if not grouped:
        optimizer._apply_optimize(None, startup, params_grads)
        return
    grad_of = {p.name: g for p, g in params_grads}
    for idx, group in enumerate(groups):
        step = {k: v for k, v in group.items() if k != "params"}
        step["params"] = [(p, grad_of[p.name]) for p in group["params"] if grad_of.get(p.name) is not None]
        if step["params"]:
            optimizer._apply_optimize(None, startup, step, param_group_idx=idx)
