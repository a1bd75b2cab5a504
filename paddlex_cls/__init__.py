"""paddlex_cls: PaddleX-compatible, config-driven image classification on PaddlePaddle.

``import paddlex_cls`` is cheap; paddle is imported only when a model, the trainer or the predictor is used.
"""
from .quiet import silence_import_warnings

silence_import_warnings()  # before anything imports paddle

from .config import load_config  # noqa: E402
from .errors import ConfigError, DatasetError, ModelError, PaddlexClsError, WeightsError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["load_config", "create_model", "create_pipeline", "list_models", "build_model", "PaddlexClsError",
           "ConfigError", "DatasetError", "ModelError", "WeightsError"]


def __getattr__(name: str):
    if name == "create_model":
        from .api import create_model

        return create_model
    if name == "create_pipeline":
        from .pipeline import create_pipeline

        return create_pipeline
    if name in ("list_models", "build_model"):
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module 'paddlex_cls' has no attribute {name!r}")
