"""Training engines behind one interface (``base.TrainStep``), chosen by name from ``ENGINES``."""
from __future__ import annotations

import importlib

from ..engines import ENGINES  # Train.engine value -> "module:class" (imported when built)
from .base import EngineState, StepResult, TrainStep
from .spec import StepSpec


def build_step(name: str, spec: StepSpec) -> TrainStep:
    """Build the engine called ``name`` (a key of ENGINES) from ``spec``."""
    module, cls = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), cls)(spec)


__all__ = ["ENGINES", "EngineState", "StepResult", "StepSpec", "TrainStep", "build_step"]
