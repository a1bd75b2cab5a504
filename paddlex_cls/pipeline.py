"""The "General Image Classification" pipeline: a pipeline config file around one exported classifier.

Same entry points as PaddleX: ``paddlex-cls --pipeline image_classification --input ...``,
``paddlex-cls --get_pipeline_config image_classification --save_path DIR`` and ``create_pipeline(...)``.
"""
from __future__ import annotations

import copy
import os
from typing import Any, Dict, Iterator, Optional

import yaml

from .config import read_yaml
from .errors import ConfigError
from .fileio import atomic_write_text
from .log import logger
from .results import ClsResult

PIPELINE_NAME = "image_classification"
MODULE_KEY = "ImageClassification"
DEFAULT_CONFIG: Dict[str, Any] = {
    "pipeline_name": PIPELINE_NAME,
    "SubModules": {
        MODULE_KEY: {
            "module_name": "image_classification",
            "model_name": "PP-LCNet_x0_5",
            "model_dir": None,  # null: the official ImageNet model of model_name
            "batch_size": 4,
            "topk": 5,
        },
    },
}
# PaddleX also lets a sub-module set use_hpip and hpi_config (merged over the pipeline's own)
_MODULE_KEYS = set(DEFAULT_CONFIG["SubModules"][MODULE_KEY]) | {"use_hpip", "hpi_config"}


def _check_name(name: str) -> None:
    if name != PIPELINE_NAME:
        raise ConfigError(f"unknown pipeline {name!r}", f"the available pipeline is {PIPELINE_NAME!r} (or a path to "
                          f"its YAML file, from --get_pipeline_config {PIPELINE_NAME})")


def write_pipeline_config(name: str, save_path: str) -> str:
    """Write ``<save_path>/<name>.yaml`` (a folder) or ``save_path`` itself (a .yaml path); returns the path."""
    _check_name(name)
    path = save_path if save_path.endswith((".yaml", ".yml")) else os.path.join(save_path, f"{name}.yaml")
    text = ("# General Image Classification pipeline (paddlex_cls). SubModules.ImageClassification.model_dir: an\n"
            "# exported inference folder (e.g. output/best_model/inference), or null for the official model_name.\n")
    serving = ("# paddlex-cls --serve reads an optional section (PaddleX uses visualize, ignores the rest); defaults:\n"
               "# Serving:\n"
               "#   visualize: true        # return the labelled image unless a request says otherwise\n"
               "#   max_body_mb: 20        # largest request body\n"
               "#   max_pixels: 50000000   # largest image (width x height)\n"
               "#   max_queue: 32          # requests inside the service at once; more get 503\n"
               "#   max_batch: 8           # waiting requests inferred together\n"
               "#   url_timeout: 10        # seconds to download an image URL\n"
               "#   url_max_mb: 15         # largest image URL download\n")
    atomic_write_text(path, text + yaml.safe_dump(DEFAULT_CONFIG, sort_keys=False) + serving)
    return path


def load_pipeline_config(pipeline: str, config: Optional[Dict[str, Any]] = None, **overrides: Any) -> Dict[str, Any]:
    """The pipeline config from a dict, a name (defaults) or a YAML path, with module-key overrides applied."""
    if config is not None:
        if not isinstance(config, dict):
            raise ConfigError(f"create_pipeline(config=...) must be a mapping, got {type(config).__name__}",
                              f"pass the content of --get_pipeline_config {PIPELINE_NAME}'s YAML as a dict")
        data, source = copy.deepcopy(config), "the pipeline config"
    elif pipeline.endswith((".yaml", ".yml")) or os.path.sep in pipeline:
        data = read_yaml(pipeline)
        source = pipeline
    else:
        _check_name(pipeline)
        data, source = copy.deepcopy(DEFAULT_CONFIG), f"pipeline {pipeline}"
    _check_name(data.get("pipeline_name", ""))
    module = (data.get("SubModules") or {}).get(MODULE_KEY)
    if not isinstance(module, dict):
        raise ConfigError(f"{source}: SubModules.{MODULE_KEY} is missing or not a mapping",
                          f"regenerate it with --get_pipeline_config {PIPELINE_NAME}")
    unknown = set(module) - _MODULE_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) SubModules.{MODULE_KEY}.{', '.join(sorted(unknown))}",
                          f"valid keys: {', '.join(sorted(_MODULE_KEYS))}")
    if overrides.get("model_dir") and not overrides.get("model_name"):
        module["model_name"] = None  # a folder given on the command line names its own model (inference.yml)
    module.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("batch_size", "topk"):
        if not isinstance(module.get(key), int) or module[key] < 1:
            raise ConfigError(f"{source}: SubModules.{MODULE_KEY}.{key} must be a positive int, got "
                              f"{module.get(key)!r}", f"e.g. {key}: 1")
    return data


def resolve_model_dir(config: Dict[str, Any]) -> str:
    """Set and return the module's model folder: its ``model_dir``, or for null the cached export of the official
    ``model_name`` (downloaded and exported on first use, as ``create_model`` does)."""
    module = config["SubModules"][MODULE_KEY]
    if not module.get("model_dir"):
        if not module.get("model_name"):
            raise ConfigError(f"SubModules.{MODULE_KEY} has neither model_dir nor model_name",
                              "set model_dir to an exported folder, or model_name for the official model")
        from .official_models import official_model_dir

        module["model_dir"] = official_model_dir(module["model_name"])
    return module["model_dir"]


def _hpi_options(config: Dict[str, Any], use_hpip: Optional[bool],
                 hpi_config: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """PaddleX's precedence: the call's value, else the module's, else the pipeline's; hpi_config dicts merge."""
    module = config["SubModules"][MODULE_KEY]
    merged = {**(config.get("hpi_config") or {}), **(module.get("hpi_config") or {}), **(hpi_config or {})}
    hpip = use_hpip if use_hpip is not None else module.get("use_hpip", config.get("use_hpip", False))
    return {"use_hpip": bool(hpip), "hpi_config": merged or None}


class ClsPipeline:
    """A loaded image-classification pipeline; ``predict`` yields the same results as ``create_model``."""

    def __init__(self, config: Dict[str, Any], device: Optional[str] = None, use_hpip: Optional[bool] = None,
                 hpi_config: Optional[Dict[str, Any]] = None, **model_options: Any):
        from .api import create_model

        self.config = config
        m = config["SubModules"][MODULE_KEY]
        self.model = create_model(model_name=m.get("model_name"), model_dir=m["model_dir"], device=device or "cpu",
                                  batch_size=m["batch_size"], topk=m["topk"],
                                  **_hpi_options(config, use_hpip, hpi_config), **model_options)
        logger.info("pipeline %s: model %s from %s", PIPELINE_NAME, self.model.model_name, self.model.model_dir)

    def predict(self, input: Any, topk: Optional[int] = None, batch_size: Optional[int] = None,  # noqa: A002
                **kwargs: Any) -> Iterator[ClsResult]:
        """Yield one result per image; ``topk`` overrides the config's for this call."""
        return self.model.predict(input, batch_size=batch_size, topk=topk, **kwargs)

    def __call__(self, input: Any, **kwargs: Any) -> Iterator[ClsResult]:  # noqa: A002
        return self.predict(input, **kwargs)


def create_pipeline(pipeline: str = PIPELINE_NAME, device: Optional[str] = None, *,
                    config: Optional[Dict[str, Any]] = None, use_hpip: Optional[bool] = None,
                    hpi_config: Optional[Dict[str, Any]] = None, **overrides: Any) -> ClsPipeline:
    """Create the pipeline from its name, its YAML file or a config dict.

    Example:
        >>> pipe = create_pipeline(pipeline="my_path/image_classification.yaml", use_hpip=True)
        >>> for res in pipe.predict("cat.jpg", topk=3):
        ...     res.print()

    Args:
        pipeline: ``"image_classification"`` or a path to its YAML (from ``--get_pipeline_config``).
        device: ``cpu`` or ``gpu:0`` etc.
        config: the pipeline config as a dict (wins over ``pipeline``, as in PaddleX).
        use_hpip: None = the config's (module, then pipeline level), default False.
        hpi_config: merged over the config's (see ``inference.hpi``).
        **overrides: module keys (``model_dir``, ``model_name``, ``batch_size``, ``topk``), and PaddleX's
            ``engine``/``engine_config``/``pp_option`` (see ``create_model``).
    """
    model_options = {k: overrides.pop(k) for k in ("engine", "engine_config", "pp_option") if k in overrides}
    return ClsPipeline(load_pipeline_config(pipeline, config, **overrides), device=device, use_hpip=use_hpip,
                       hpi_config=hpi_config, **model_options)
