"""Engine state in and out of a static engine's scope, in the formats dygraph checkpoints use.

Model weights use the Layer's ``state_dict()`` keys. Optimizer state uses dygraph ``optimizer.state_dict()``
names: each accumulator under its variable name (``<param.name>_velocity_0``, ``..._moment1_0``,
``..._beta1_pow_acc_0``), which the static optimizer creates with the same names because parameters keep their
dygraph names, plus ``LR_Scheduler``. EMA weights use the state-dict keys as well (``.pdema``).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from ...errors import WeightsError
from .base import EngineState, StateDict
from .static_program import read_vars, write_vars

logger = logging.getLogger("paddlex_cls")
LR_KEY = "LR_Scheduler"


def state_from_scope(scope, names: Mapping[str, str], opt_names: List[str], scheduler,
                     ema_names: Optional[Mapping[str, str]], lazy: bool = False) -> EngineState:
    """Read weights, optimizer state and EMA weights out of ``scope`` (as LazyArrays with ``lazy``).

    Args:
        names: state-dict key -> variable name.
        opt_names: the optimizer's accumulator variable names.
        ema_names: variable name -> its EMA variable name (float entries), or None without EMA.
    """
    weights = read_vars(scope, names.values(), lazy)
    model = {k: weights[n] for k, n in names.items()}
    optimizer: Dict[str, Any] = read_vars(scope, opt_names, lazy)
    optimizer[LR_KEY] = scheduler.state_dict()
    ema = None
    if ema_names is not None:
        averaged = read_vars(scope, ema_names.values(), lazy)
        ema = {k: averaged[ema_names[n]] if n in ema_names else model[k] for k, n in names.items()}
    return EngineState(model=model, optimizer=optimizer, ema=ema)


def load_into_scope(scope, place, state: EngineState, names: Mapping[str, str], opt_names: List[str], scheduler,
                    ema_names: Optional[Mapping[str, str]]) -> None:
    """Write a checkpoint of either engine into ``scope``; see :func:`state_from_scope` for the arguments.

    Without EMA weights in ``state`` the EMA restarts from the loaded weights. Accumulators the state lacks
    (parameters dygraph never updated) keep their current values.
    """
    model = _checked_weights(state.model, scope, names, "weights")
    write_vars(scope, {names[k]: v for k, v in model.items()}, place)
    if state.optimizer is not None:
        opt = {n: _numpy(state.optimizer[n]) for n in opt_names if n in state.optimizer}
        missing = [n for n in opt_names if n not in state.optimizer]
        if missing:
            logger.info("optimizer state has no value for %d accumulator(s) (kept at their start value): %s",
                        len(missing), ", ".join(missing[:5]))
        for n, a in opt.items():
            _check_shape(scope, n, a, "optimizer state", n)
        write_vars(scope, opt, place)
        if LR_KEY in state.optimizer:
            scheduler.set_state_dict(state.optimizer[LR_KEY])
    if ema_names is not None:
        source = state.ema if state.ema is not None else state.model
        ema = _checked_weights(source, scope, names, "EMA weights")
        write_vars(scope, {ema_names[names[k]]: v for k, v in ema.items() if names[k] in ema_names}, place)


def _numpy(value) -> np.ndarray:
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _checked_weights(state: Mapping[str, Any], scope, names: Mapping[str, str], what: str) -> StateDict:
    """The entries of ``state`` that the model has (by state-dict key), shape-checked; the rest is logged."""
    arrays = {k: _numpy(v) for k, v in state.items() if k in names}
    unexpected = [k for k in state if k not in names]
    missing = [k for k in names if k not in state]
    if not arrays:
        raise WeightsError(f"the {what} share no key with the model", "check that the checkpoint belongs to "
                           "Global.model")
    if missing or unexpected:
        logger.warning("%s: %d key(s) of the model missing (kept), %d unknown key(s) ignored: %s", what,
                       len(missing), len(unexpected), ", ".join((missing + unexpected)[:10]))
    for k, a in arrays.items():
        _check_shape(scope, names[k], a, what, k)
    return arrays


def _check_shape(scope, name: str, array: np.ndarray, what: str, label: str) -> None:
    have = tuple(scope.find_var(name).get_tensor().shape())
    if tuple(array.shape) != have:
        raise WeightsError(f"{what}: {label} has shape {list(array.shape)}, the model needs {list(have)}",
                           "load a checkpoint of the same model and number of classes")
