"""An exported inference folder: its model files and its ``inference.yml``, read and checked before use.

Besides our own exports this reads what PaddleX and PaddleClas write: ``inference.json`` (PIR) or the legacy
``inference.pdmodel``, ``inference.onnx``, an ``inference.yml`` without ``Global`` or ``label_list`` (class names are
then the ids as text), extra keys (ignored) and the op spellings ``preprocess.ops`` accepts.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import yaml

from ..errors import WeightsError
from ..preprocess.ops import OpError, Transform, build_transform

MODEL_FILES = ("inference.json", "inference.pdmodel")  # PIR (Paddle 3 default), then the legacy program
PARAMS_FILE = "inference.pdiparams"
ONNX_FILE = "inference.onnx"
DEFAULT_TOPK = 5
MAX_YML_BYTES = 64 << 20  # a label list of a million names fits; a larger file is not an inference.yml


def _check_folder(model_dir: str) -> None:
    if not os.path.isdir(model_dir):
        raise WeightsError(f"inference model folder {model_dir} does not exist",
                           "export one first (-o Global.mode=export) or point Predict.model_dir at it")


def has_paddle_model(model_dir: str) -> bool:
    """Whether the folder holds a Paddle inference model (either format) with its parameters."""
    return os.path.isfile(os.path.join(model_dir, PARAMS_FILE)) and \
        any(os.path.isfile(os.path.join(model_dir, n)) for n in MODEL_FILES)


def model_files(model_dir: str) -> Tuple[str, str]:
    """(model file, params file) of an exported folder, PIR or legacy; clear errors when something is missing."""
    _check_folder(model_dir)
    params = os.path.join(model_dir, PARAMS_FILE)
    for name in MODEL_FILES:
        if os.path.isfile(os.path.join(model_dir, name)) and os.path.isfile(params):
            return os.path.join(model_dir, name), params
    hint = "export with -o Global.mode=export (Export.format=paddle or all), then predict from its folder"
    if os.path.isfile(os.path.join(model_dir, ONNX_FILE)):
        hint = "this folder holds only ONNX: use -o Predict.kernel_option.run_mode=onnxruntime (or openvino)"
    raise WeightsError(f"{model_dir} holds no Paddle model ({' or '.join(MODEL_FILES)}, plus {PARAMS_FILE})", hint)


def onnx_file(model_dir: str) -> str:
    """The folder's ``inference.onnx``; a clear error saying how to make it when it is missing."""
    _check_folder(model_dir)
    path = os.path.join(model_dir, ONNX_FILE)
    if not os.path.isfile(path):
        raise WeightsError(f"{model_dir} has no {ONNX_FILE}, which the ONNX Runtime and OpenVINO run modes run",
                           "export with -o Export.format=all (or onnx), or convert this folder in place with "
                           f"`python -m paddlex_cls.inference.to_onnx {model_dir}` (needs pip install "
                           "\"paddlex_cls[onnx]\")")
    return path


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


def _section(data: Dict[str, Any], key: str) -> Dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _load_yaml(path: str) -> Dict[str, Any]:
    if not os.path.isfile(path):
        raise WeightsError(f"{path} does not exist", "a model folder from -o Global.mode=export has it")
    if os.path.getsize(path) > MAX_YML_BYTES:
        raise _malformed(path, f"larger than {MAX_YML_BYTES >> 20} MiB")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)  # safe_load: a YAML file never builds objects or runs code
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise _malformed(path, f"not valid YAML ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise _malformed(path, "not a mapping")
    return data


def _export_below(folder: str) -> Optional[str]:
    """The export a user most likely meant when naming a training output (``output/``) or a checkpoint folder
    (``output/best_model/``) instead of the export inside it."""
    for candidate in (os.path.join(folder, "inference"), os.path.join(folder, "best_model", "inference")):
        if os.path.isfile(os.path.join(candidate, "inference.yml")):
            return candidate
    return None


def read_inference_yml(model_dir: str) -> ExportInfo:
    """Read and check ``<model_dir>/inference.yml``; every op is built once here so a bad one fails early."""
    _check_folder(model_dir)
    path = os.path.join(model_dir, "inference.yml")
    meant = None if os.path.isfile(path) else _export_below(model_dir)
    if meant is not None:
        raise WeightsError(f"{model_dir} is not an exported model folder (it has no inference.yml)",
                           f"name the export folder inside it instead: {meant}")
    data = _load_yaml(path)
    ops = _section(data, "PreProcess").get("transform_ops")
    if not isinstance(ops, list) or not ops:
        raise _malformed(path, "PreProcess.transform_ops is missing or not a list")
    try:
        build_transform(ops)
    except OpError as e:
        raise _malformed(path, str(e)) from None
    topk_cfg = _section(_section(data, "PostProcess"), "Topk")
    labels = topk_cfg.get("label_list") or []
    if isinstance(labels, str) or not isinstance(labels, list):  # a string would be split into characters
        raise _malformed(path, f"PostProcess.Topk.label_list must be a list of names, got {type(labels).__name__}")
    topk = topk_cfg.get("topk", DEFAULT_TOPK)
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise _malformed(path, f"PostProcess.Topk.topk must be a positive int, got {topk!r}")
    model_name = _section(data, "Global").get("model_name")
    return ExportInfo(str(model_name) if model_name else None, ops, topk, [str(n) for n in labels])
