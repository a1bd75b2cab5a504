"""An exported inference folder: its model files and its ``inference.yml``, read and checked before use."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import yaml

from ..errors import WeightsError
from ..preprocess.ops import OpError, Transform, build_transform

MODEL_FILES = ("inference.json", "inference.pdmodel")  # PIR (Paddle 3 default), then the legacy program
PARAMS_FILE = "inference.pdiparams"


def model_files(model_dir: str) -> Tuple[str, str]:
    """(model file, params file) of an exported folder, PIR or legacy; clear errors when something is missing."""
    if not os.path.isdir(model_dir):
        raise WeightsError(f"inference model folder {model_dir} does not exist",
                           "export one first (-o Global.mode=export) or point Predict.model_dir at it")
    params = os.path.join(model_dir, PARAMS_FILE)
    for name in MODEL_FILES:
        if os.path.isfile(os.path.join(model_dir, name)) and os.path.isfile(params):
            return os.path.join(model_dir, name), params
    raise WeightsError(f"{model_dir} holds no exported model ({' or '.join(MODEL_FILES)}, plus {PARAMS_FILE})",
                       "export with -o Global.mode=export, then predict from its folder")


@dataclass(frozen=True)
class ExportInfo:
    """What ``inference.yml`` says: the model name, the preprocessing, the top-k and the class names."""

    model_name: Optional[str]
    transform_ops: List[Dict[str, Any]]
    topk: int
    labels: List[str]

    def transform(self) -> Transform:
        return build_transform(self.transform_ops)


def _malformed(path: str, what: str) -> WeightsError:
    return WeightsError(f"{path} is malformed: {what}", "re-export the model (-o Global.mode=export)")


def read_inference_yml(model_dir: str) -> ExportInfo:
    """Read and check ``<model_dir>/inference.yml``; every op is built once here so a bad one fails early."""
    path = os.path.join(model_dir, "inference.yml")
    if not os.path.isfile(path):
        raise WeightsError(f"{path} does not exist", "a model folder from -o Global.mode=export has it")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise _malformed(path, f"not valid YAML ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise _malformed(path, "not a mapping")
    ops = (data.get("PreProcess") or {}).get("transform_ops") if isinstance(data.get("PreProcess"), dict) else None
    if not isinstance(ops, list) or not ops:
        raise _malformed(path, "PreProcess.transform_ops is missing or not a list")
    try:
        build_transform(ops)
    except OpError as e:
        raise _malformed(path, str(e)) from None
    post = data.get("PostProcess") if isinstance(data.get("PostProcess"), dict) else {}
    topk_cfg = post.get("Topk") if isinstance(post.get("Topk"), dict) else {}
    labels = topk_cfg.get("label_list") or []
    if isinstance(labels, str) or not isinstance(labels, list):  # a string would be split into characters
        raise _malformed(path, f"PostProcess.Topk.label_list must be a list of names, got {type(labels).__name__}")
    topk = topk_cfg.get("topk", 5)
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise _malformed(path, f"PostProcess.Topk.topk must be a positive int, got {topk!r}")
    model_name = (data.get("Global") or {}).get("model_name") if isinstance(data.get("Global"), dict) else None
    return ExportInfo(model_name, ops, topk, [str(n) for n in labels])
