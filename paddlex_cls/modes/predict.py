"""``Global.mode=predict``: classify ``Predict.input`` with the export in ``Predict.model_dir``.

Prints each result as PaddleX does and saves ``<stem>_res.json`` and ``<stem>_res.<ext>`` under ``Global.output``.
Uses the inference package only: no model zoo, no trainer.
"""
from __future__ import annotations

from typing import Any, Dict

from ..errors import ConfigError


def resolve_predict(cfg: Dict[str, Any], overridden: frozenset) -> None:
    """Predict needs an input; ``Predict.model_dir=null`` means the official model of ``Global.model`` (made once
    into the cache; the resolved config records its folder). The folder is checked when the predictor opens it."""
    if not cfg["Predict"]["input"]:
        raise ConfigError("Predict.input is not set", "e.g. -o Predict.input=./images/cat.jpg (a file, folder, "
                          "URL or list)")
    if cfg["Predict"]["model_dir"] is None:
        from ..official_models import official_model_dir

        cfg["Predict"]["model_dir"] = official_model_dir(cfg["Global"]["model"])


def run_predict(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Predict; returns predict_result.json's content."""
    from ..inference.predictor import Predictor
    from ..runtime import setup_runtime

    g, p = cfg["Global"], cfg["Predict"]
    rt = setup_runtime(g, single_card=True)
    predictor = Predictor(p["model_dir"], device=str(rt.device), run_mode=p["kernel_option"]["run_mode"],
                          batch_size=p["batch_size"], topk=p["topk"], num_threads=rt.num_threads)
    results = []
    for res in predictor.predict(p["input"]):
        res.print()
        res.save_to_json(g["output"])
        res.save_to_img(g["output"])
        results.append(res.to_dict())
    return {"done_flag": True, "results": results}
