"""``Global.mode=export``: ``Export.weight_path`` -> ``<output>/inference/`` (model files + inference.yml).

``Export.weight_path=null`` exports the official ImageNet-1k weights of ``Global.model`` (PaddleX's meaning).
``Export.format``: ``paddle`` (default) writes the Paddle files, ``onnx`` only ``inference.onnx``, ``all`` both;
the folder appears whole (``engine.exporter``).
"""
from __future__ import annotations

import os
from typing import Any, Dict

from ..models import get_entry
from .trained_run import class_names, local_weights, resolve_weights

SECTION = "Export"


def resolve_export(cfg: Dict[str, Any], overridden: frozenset) -> None:
    """Take classes and input size from the weights' training run or head; check the model and input size."""
    g = cfg["Global"]
    if cfg[SECTION]["format"] != "paddle":
        from ..inference.to_onnx import require_paddle2onnx

        require_paddle2onnx(f"Export.format={cfg[SECTION]['format']}")  # before any download or export work
    resolve_weights(cfg, overridden, SECTION)
    if g["input_size"] is not None:
        get_entry(g["model"]).check_input_size(g["input_size"])


def run_export(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Export; returns export_result.json's content."""
    from ..engine.exporter import ExportSpec, export_model
    from ..runtime import setup_runtime

    g, weights = cfg["Global"], cfg[SECTION]["weight_path"]
    setup_runtime(g, single_card=True)
    local = local_weights(weights, g["model"], f"{SECTION}.weight_path")
    num_classes = cfg["Train"]["num_classes"]
    out_dir = os.path.join(g["output"], "inference")
    files = export_model(ExportSpec(model_name=g["model"], num_classes=num_classes, weights=local, out_dir=out_dir,
                                    labels=class_names(weights, local, g["dataset_dir"], num_classes),
                                    input_size=g["input_size"], pir=g["export_with_pir"],
                                    format=cfg[SECTION]["format"], use_ema=cfg[SECTION]["use_ema"]))
    return {"done_flag": True, "inference_dir": out_dir, "files": files}
