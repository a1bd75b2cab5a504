"""Python API: ``create_model(...).predict(...)`` as in PaddleX.

PaddleX's call shapes are accepted: ``create_model(model_name=..., model_dir=..., device=..., use_hpip=...,
hpi_config=..., batch_size=..., topk=...)``, ``engine``/``engine_config`` (``run_mode``, ``cpu_threads``), and
``model.predict(x, batch_size=..., topk=...)``. Options that have no meaning here are named in a warning, never
dropped silently.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Iterator, Optional

from .errors import ConfigError
from .inference.model_dir import read_inference_yml
from .inference.predictor import Predictor
from .log import logger
from .results import ClsResult

# PaddleX engine -> (our run mode, use_hpip); engines that do not exist here keep the default, with a warning
_ENGINES = {"paddle": (None, False), "paddle_static": (None, False), "onnxruntime": ("onnxruntime", False),
            "hpi": (None, True)}
_ENGINE_CONFIG_KEYS = ("run_mode", "cpu_threads")


class ClsModel:
    """An exported classifier ready to predict.

    Example:
        >>> model = create_model(model_name="PP-LCNet_x1_0", model_dir="output/best_model/inference", device="cpu")
        >>> for res in model.predict("cat.jpg"):
        ...     res.print()
    """

    def __init__(self, model_name: Optional[str], model_dir: str, device: str = "cpu", run_mode: Optional[str] = None,
                 batch_size: int = 1, topk: Optional[int] = None, num_threads: Optional[int] = None,
                 use_hpip: bool = False, hpi_config: Optional[Dict[str, Any]] = None):
        self.predictor = Predictor(model_dir, device=device, run_mode=run_mode, batch_size=batch_size, topk=topk,
                                   num_threads=num_threads, use_hpip=use_hpip, hpi_config=hpi_config)
        exported = self.predictor.info.model_name
        if model_name and exported and model_name != exported:
            logger.warning("model_name=%s but %s was exported from %s", model_name, model_dir, exported)
        self.model_name = exported or model_name  # the folder's own record wins
        self.model_dir = model_dir

    def predict(self, input: Any, batch_size: Optional[int] = None, topk: Optional[int] = None,  # noqa: A002
                **kwargs: Any) -> Iterator[ClsResult]:
        """Yield one result per image of ``input`` (path, folder, URL, numpy array, bytes, or a list of them).

        As in PaddleX, a ``batch_size`` given here stays for later calls.
        """
        if kwargs:
            logger.warning("predict() option(s) %s do not apply to image classification and are ignored",
                           ", ".join(sorted(kwargs)))
        if batch_size:
            self.predictor.batch_size = batch_size
        return self.predictor.predict(input, topk=topk)

    def __call__(self, input: Any, batch_size: Optional[int] = None, topk: Optional[int] = None,  # noqa: A002
                 **kwargs: Any) -> Iterator[ClsResult]:
        return self.predict(input, batch_size, topk, **kwargs)


def _engine_options(engine: Optional[str], engine_config: Optional[Dict[str, Any]], kwargs: Dict[str, Any]) -> None:
    """Fold PaddleX's ``engine`` and ``engine_config`` into our ``run_mode``/``num_threads``/``use_hpip``."""
    if engine is not None:
        if engine not in _ENGINES:
            logger.warning("engine=%r does not exist here and is ignored (engines: %s)", engine, ", ".join(_ENGINES))
        else:
            mode, hpip = _ENGINES[engine]
            kwargs.setdefault("run_mode", mode)
            kwargs["use_hpip"] = kwargs.get("use_hpip") or hpip
    config = dict(engine_config or {})
    for bucket in ("paddle_static", "paddle", "onnxruntime"):  # PaddleX's per-engine form: {"paddle_static": {...}}
        if isinstance(config.get(bucket), dict):
            config.update(config.pop(bucket))
    if config.get("run_mode") is not None:
        kwargs["run_mode"] = config.pop("run_mode")
    if config.get("cpu_threads") is not None:
        kwargs["num_threads"] = config.pop("cpu_threads")
    if config:
        logger.warning("engine_config key(s) %s are ignored here (used: %s)", ", ".join(sorted(config)),
                       ", ".join(_ENGINE_CONFIG_KEYS))


def create_model(model_name: Optional[str] = None, model_dir: Optional[str] = None, device: Optional[str] = None,
                 **kwargs: Any) -> ClsModel:
    """Load an exported classifier folder (``inference.yml`` + model files).

    Args:
        model_name: registry name; optional when ``model_dir`` is given (it is read from inference.yml).
        model_dir: an exported inference folder (e.g. output/best_model/inference); None = the official ImageNet
            model of ``model_name``, downloaded and exported once into the cache (``PADDLEX_CLS_HOME``).
        device: ``cpu`` (default) or ``gpu:0`` etc.
        **kwargs: ``run_mode`` (None = fastest safe default; see ``inference.backends.RUN_MODES``),
            ``num_threads``, ``batch_size``, ``topk``, ``use_hpip``, ``hpi_config``; PaddleX's ``engine`` and
            ``engine_config`` (``run_mode``, ``cpu_threads``). ``pp_option`` and other PaddleX options that do not
            apply here are ignored with a warning.

    Example:
        >>> model = create_model("PP-LCNet_x1_0", model_dir="output/best_model/inference", use_hpip=True)
    """
    if not model_dir:
        if not model_name:
            raise ConfigError("create_model() needs a model_name or a model_dir",
                              "e.g. create_model('PP-LCNet_x1_0') for the official model, or model_dir='output/"
                              "best_model/inference' for your export")
        from .official_models import official_model_dir

        model_dir = official_model_dir(model_name)
    _engine_options(kwargs.pop("engine", None), kwargs.pop("engine_config", None), kwargs)
    known = {"run_mode", "num_threads", "batch_size", "topk", "use_hpip", "hpi_config"}
    ignored = sorted(set(kwargs) - known)
    if ignored:
        logger.warning("create_model option(s) %s do not apply here and are ignored (%s)", ", ".join(ignored),
                       "pp_option: use run_mode/num_threads or engine_config" if "pp_option" in ignored else
                       f"known: {', '.join(sorted(known))}")
    read_inference_yml(model_dir)  # clear error early for a folder that is not an export
    options = {k: v for k, v in kwargs.items() if k in known}
    options["batch_size"] = options.get("batch_size") or 1
    return ClsModel(model_name, os.fspath(model_dir), device=device or "cpu", **options)
