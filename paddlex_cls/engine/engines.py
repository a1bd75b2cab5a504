"""The table of training engines, chosen by ``Train.engine``: plain data (no paddle import), so the config schema
can name the choices. ``steps.build_step`` imports an engine's class only when that engine is built."""
from __future__ import annotations

# engine name -> "module:class" of its ``steps.base.TrainStep``
ENGINES = {
    "dygraph": "paddlex_cls.engine.steps.dygraph:DygraphStep",
    "static": "paddlex_cls.engine.steps.static:StaticStep",
}

#: the values of ``Train.engine``: ``auto`` decides between the engines per run (``steps/choose.py``)
ENGINE_CHOICES = ("auto",) + tuple(ENGINES)
