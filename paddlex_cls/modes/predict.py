"""``Global.mode=predict``: classify ``Predict.input`` with the export in ``Predict.model_dir``.

Prints each result as PaddleX does and saves ``<name>_res.json`` and ``<name>_res.<ext>`` under ``Global.output``
(names unique per input: ``inference.result_names``); the saved files are made durable once, at the end. Uses the
inference package only: no model zoo, no trainer.
"""
from __future__ import annotations

from typing import Any, Dict

from ..errors import ConfigError


def resolve_predict(cfg: Dict[str, Any], overridden: frozenset) -> None:
    """Predict needs an input; ``Predict.model_dir=null`` means the official model of ``Global.model`` (made once
    into the cache; the resolved config records its folder). The folder is checked when the predictor opens it."""
    p = cfg["Predict"]
    if not p["input"]:
        raise ConfigError("Predict.input is not set", "e.g. -o Predict.input=./images/cat.jpg (a file, folder, "
                          "URL or list)")
    if p["hpi_config"] is not None and not isinstance(p["hpi_config"], dict):
        raise ConfigError(f"Predict.hpi_config must be a mapping, got {p['hpi_config']!r}",
                          "e.g. -o 'Predict.hpi_config={backend: openvino}'")
    if p["model_dir"] is None:
        from ..official_models import official_model_dir

        p["model_dir"] = official_model_dir(cfg["Global"]["model"])


def run_predict(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Predict; returns predict_result.json's content."""
    from ..inference.predictor import Predictor
    from ..results import sync_saved
    from ..runtime import setup_runtime

    g, p = cfg["Global"], cfg["Predict"]
    rt = setup_runtime(g, single_card=True)
    kernel = p["kernel_option"]
    predictor = Predictor(p["model_dir"], device=str(rt.device), run_mode=kernel["run_mode"],
                          batch_size=p["batch_size"], topk=p["topk"],
                          num_threads=kernel["cpu_threads"] or g["num_threads"], use_hpip=p["use_hpip"],
                          hpi_config=p["hpi_config"])
    results = []
    try:
        for res in predictor.predict(p["input"]):
            res.print()
            res.save_to_json(g["output"])
            res.save_to_img(g["output"])
            results.append(res.to_dict())
    finally:
        sync_saved()  # one sync for the whole folder, also when a later image stops the run
    skipped = [{"input_path": path, "error": why} for path, why in predictor.skipped]
    return {"done_flag": True, "run_mode": predictor.run_mode, "results": results, "skipped": len(skipped),
            "skipped_inputs": skipped}
