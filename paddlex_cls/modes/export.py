"""``Global.mode=export``: ``Export.weight_path`` -> ``<output>/inference/`` (model files + inference.yml).

``Export.format``: ``paddle`` (default) writes the Paddle files, ``onnx`` only ``inference.onnx``, ``all`` both;
the folder appears whole (``engine.exporter``).
"""
from __future__ import annotations

import os
from typing import Any, Dict

from ..models import get_entry
from .trained_run import class_names, inherit_training_settings

WEIGHTS_KEY = "Export.weight_path"


def resolve_export(cfg: Dict[str, Any], overridden: frozenset) -> None:
    """Inherit the training run's settings and check the model and input size."""
    from ..engine.checkpoint import fetch

    g = cfg["Global"]
    if cfg["Export"]["format"] != "paddle":
        from ..inference.to_onnx import require_paddle2onnx

        require_paddle2onnx(f"Export.format={cfg['Export']['format']}")  # before any download or export work
    inherit_training_settings(cfg, overridden, fetch(cfg["Export"]["weight_path"], WEIGHTS_KEY))
    entry = get_entry(g["model"])
    if g["input_size"] is not None:
        entry.check_input_size(g["input_size"])


def run_export(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Export; returns export_result.json's content."""
    from ..engine.checkpoint import fetch
    from ..engine.exporter import ExportSpec, export_model
    from ..runtime import setup_runtime

    g = cfg["Global"]
    setup_runtime(g, single_card=True)
    weights = fetch(cfg["Export"]["weight_path"], WEIGHTS_KEY)
    num_classes = cfg["Train"]["num_classes"]
    out_dir = os.path.join(g["output"], "inference")
    files = export_model(ExportSpec(model_name=g["model"], num_classes=num_classes, weights=weights, out_dir=out_dir,
                                    labels=class_names(weights, g["dataset_dir"], num_classes),
                                    input_size=g["input_size"], pir=g["export_with_pir"],
                                    format=cfg["Export"]["format"]))
    return {"done_flag": True, "inference_dir": out_dir, "files": files}
