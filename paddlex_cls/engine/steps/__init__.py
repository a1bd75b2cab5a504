"""Training engines behind one interface (``base.TrainStep``), chosen by name from ``ENGINES``."""
from __future__ import annotations

import importlib

from .base import EngineState, StepResult, TrainStep
from .spec import StepSpec

# Train.engine value -> "module:class" (imported when chosen, so paddle's static machinery loads only if used).
# The schema spells the choices out (config/ imports no engine code); test_architecture keeps them equal.
ENGINES = {
    "dygraph": "paddlex_cls.engine.steps.dygraph:DygraphStep",
    "static": "paddlex_cls.engine.steps.static:StaticStep",
}

#: the values of ``Train.engine``: ``auto`` decides between the engines per run (``choose.py``)
ENGINE_CHOICES = ("auto",) + tuple(ENGINES)


def build_step(name: str, spec: StepSpec) -> TrainStep:
    """Build the engine called ``name`` (a key of ENGINES) from ``spec``."""
    module, cls = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), cls)(spec)


__all__ = ["ENGINES", "ENGINE_CHOICES", "EngineState", "StepResult", "StepSpec", "TrainStep", "build_step"]
